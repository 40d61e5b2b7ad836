"""What a front end needs from the process, read once: streams, TTY flags, cwd, QWEN_HOME.

As httpie's `context.Environment`: the entry point (`cli.main`) builds one with
`Environment.detect()` and passes it down; nothing below reads `sys.stdin`/`stdout`/
`stderr`, `Path.cwd()` or `$QWEN_HOME` itself. Tests build one by hand (StringIO streams,
a temporary folder and home) and drive a front end with it.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO, TypeVar

from qwen_code.settings_files import qwen_home

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    """The process's standard streams, whether each is a terminal, the working directory
    and the qwen-code home (`$QWEN_HOME`, else `~/.qwen`)."""

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    stdin_isatty: bool
    """False when input is piped or redirected from a file: a prompt may come from it."""
    stdout_isatty: bool
    stderr_isatty: bool
    cwd: Path
    home: Path

    @classmethod
    def detect(cls, environ: Mapping[str, str] | None = None) -> Environment:
        """Read the facts from this process (`environ`: os.environ unless given).

        A closed standard stream (Python sets it to None) reads as an empty, non-terminal
        one. Raises OSError when the working directory no longer exists."""
        stdin, stdout, stderr = (
            _or_empty(sys.stdin),
            _or_empty(sys.stdout),
            _or_empty(sys.stderr),
        )
        return cls(
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            stdin_isatty=isatty(stdin),
            stdout_isatty=isatty(stdout),
            stderr_isatty=isatty(stderr),
            cwd=Path.cwd(),
            home=qwen_home(os.environ if environ is None else environ),
        )


def isatty(stream: object) -> bool:
    """`stream.isatty()`, False for anything that cannot say (closed, no file behind it)."""
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return False


def _or_empty(stream: TextIO | None) -> TextIO:
    return stream if stream is not None else io.StringIO()


class _Context(Protocol):
    def find_object(self, object_type: type[_T]) -> _T | None: ...


def from_context(ctx: _Context) -> Environment:
    """The Environment a command runs in: the one `cli.main` passed to the parser as its
    context object; detected here only when the command was invoked some other way (a
    test's own typer app, `python -m qwen_code.cli_serve`)."""
    return ctx.find_object(Environment) or Environment.detect()
