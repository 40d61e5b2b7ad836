"""`qwen-code --version` (and `-v`): the one place it is answered.

`__main__` calls `answer_version` before the command-line parser is imported, so the
common `qwen-code --version` costs an interpreter start and nothing more; the parser's
own `--version` option (listed in `--help`, and taken with other flags) prints the
same line through `print_version`.
"""

from __future__ import annotations

from qwen_code import __version__

TYPE_CHECKING = False  # `typing` itself costs more than the rest of `--version`
if TYPE_CHECKING:
    from typing import TextIO

VERSION_FLAGS = ("--version", "-v")


def print_version(out: TextIO | None = None) -> None:
    """Write `qwen-code X.Y.Z` to `out` (standard output when None)."""
    print(f"qwen-code {__version__}", file=out)


def answer_version(args: list[str], out: TextIO | None = None) -> bool:
    """When `args` is just `--version` or `-v`, print the version and return True."""
    if len(args) == 1 and args[0] in VERSION_FLAGS:
        print_version(out)
        return True
    return False
