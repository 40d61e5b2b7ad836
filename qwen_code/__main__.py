"""Process entry point (`qwen-code` and `python -m qwen_code`).

`--version` is answered here, before the command-line parser is even imported.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args in (["--version"], ["-v"]):
        from qwen_code import __version__

        print(f"qwen-code {__version__}")
        return 0
    from qwen_code.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
