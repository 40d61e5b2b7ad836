"""Printing what MCP servers say in the REPL: one line, no control characters, never as
markup (names and descriptions may hold `[`), and errors in one line."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rich.text import Text

if TYPE_CHECKING:
    from qwen_code.mcp.connection import McpConnection
    from qwen_code.ui.repl import Repl

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def plain_line(text: str) -> str:
    """Server-provided text on one line: whitespace collapsed, control characters out."""
    return _CONTROL.sub("", " ".join(str(text).split()))


def first_sentence(text: str) -> str:
    line = plain_line(text.strip().split("\n\n")[0])
    if len(line) > 120:
        line = line[:119] + "…"
    return line


def count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def print_error(repl: Repl, message: str) -> None:
    repl.console.print(Text(message, style="red"))


def note_lost(connection: McpConnection, exc: BaseException) -> None:
    from qwen_code.mcp.tools import _connection_lost

    if _connection_lost(exc):
        connection.mark_dead(exc)


def error_line(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return plain_line((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:300]
