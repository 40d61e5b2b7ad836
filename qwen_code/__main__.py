"""Process entry point (`qwen-code` and `python -m qwen_code`).

`--version` is answered here (`qwen_code.version`), before the command-line parser is
even imported. After a run the process exits without the interpreter's teardown (freeing
every loaded module costs time for nothing): output is flushed first, and nothing else is
pending.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    from qwen_code.version import answer_version

    args = sys.argv[1:] if argv is None else list(argv)
    if answer_version(args):
        return 0
    from qwen_code.cli import main as cli_main

    return cli_main(args)


def run() -> None:
    """Console-script entry: run, flush, and leave at once."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 1
    os._exit(code)


if __name__ == "__main__":
    run()
