"""The headless text mode's stderr status line, and the answer as far as it went.

While `qwen-code -p` works, stdout stays the final answer only; when stderr is a terminal
it shows a transient line (`⠋ Working… 12s · ↓ 340 tokens`, or the tool being run) that
is erased before anything else is written. An interrupted run prints `AnswerSoFar`.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import unicodedata
from typing import IO

from qwen_code.agent.events import (
    AssistantMessage,
    Error,
    Event,
    SubagentEvent,
    TextDelta,
    ToolCallStarted,
    ToolResult,
)

CHARS_PER_TOKEN = 4
"""For the status line's count of a reply still streaming (its usage comes at the end)."""


class AnswerSoFar:
    """The main agent's answer as far as it went: the reply streaming now, else the last
    complete one. A retry that starts the reply over voids what had streamed."""

    __slots__ = ("_parts", "chars", "last")

    def __init__(self) -> None:
        self._parts: list[str] = []
        self.chars = 0
        """Characters of the reply streaming now."""
        self.last = ""

    def observe(self, event: Event) -> None:
        match event:
            case TextDelta(text=text):
                self._parts.append(text)
                self.chars += len(text)
            case AssistantMessage(text=text):
                self.last = text
                self._parts.clear()
                self.chars = 0
            case Error(retrying=True):
                self._parts.clear()
                self.chars = 0

    @property
    def text(self) -> str:
        return "".join(self._parts) if self._parts else self.last


GLYPHS = ("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏", "…", "·", "↓")
"""The spinner's frames, the ellipsis, the separator and the arrow of the status line."""
ASCII_GLYPHS = ("|/-\\", "...", "-", "v")
"""The same for a terminal that cannot show them (not UTF-8)."""
TICK_S = 0.1
"""How often the status line is redrawn (its spinner and seconds)."""
ERASE = "\r\x1b[2K"


class StatusLine:
    """A transient line at the bottom of a terminal stderr: `⠋ Working… 12s · ↓ 340 tokens`,
    or the tool being run (`⠋ run_shell_command pytest · 12s · ↓ 340 tokens`).

    Redrawn in place by a task on the event loop (every `TICK_S`), cut to the terminal's
    width so it never wraps, erased before any other line is written (`clear`) and for
    good by `stop`. The cursor is left at the start of the line, so that whatever else
    writes to the terminal (a log warning) writes over it rather than after it."""

    def __init__(self, err: IO[str], *, started: float) -> None:
        self.err, self.started = err, started
        self.tokens = 0
        """Output tokens of the replies that ended (the main agent's and subagents')."""
        self.streaming = 0
        """Estimated tokens of the reply streaming now."""
        self._running: dict[str, str] = {}
        """The tool calls running now (call id: label), in the order they started."""
        self._frame = 0
        self._shown = False
        self._task: asyncio.Task[None] | None = None
        encoding = (getattr(err, "encoding", None) or "utf-8").lower().replace("-", "")
        self._glyphs = GLYPHS if encoding.startswith("utf") else ASCII_GLYPHS

    def start(self) -> None:
        self.draw()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: drawn on events only
            return
        self._task = loop.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self._frame += 1
            self.draw()

    def observe(self, event: Event, answer: AnswerSoFar) -> None:
        """Follow the run: tokens as they stream, tools as they start and end."""
        self.streaming = -(-answer.chars // CHARS_PER_TOKEN)
        if isinstance(event, SubagentEvent):
            node, inner = event.innermost()
            prefix = f"{node.agent}: "
        else:
            inner, prefix = event, ""
        match inner:
            case AssistantMessage(usage=usage) if usage is not None:
                self.tokens += usage.completion_tokens
            case ToolCallStarted(call=call, summary=summary):
                self._running[call.id] = f"{prefix}{call.name} {summary}".strip()
                self.draw()
            case ToolResult(call=call):
                self._running.pop(call.id, None)
                self.draw()

    def text(self) -> str:
        frames, ellipsis, dot, arrow = self._glyphs
        tool = next(reversed(self._running.values()), None)
        label = f"Working{ellipsis}" if tool is None else f"{tool} {dot}"
        seconds = int(time.monotonic() - self.started)
        line = f"{frames[self._frame % len(frames)]} {label} {seconds}s"
        tokens = self.tokens + self.streaming
        return f"{line} {dot} {arrow} {tokens:,} tokens" if tokens else line

    def draw(self) -> None:
        line = fit(_CONTROL.sub(" ", self.text()), _width(self.err) - 1)
        self._write(f"{ERASE}{line}\r")
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self._write(ERASE)
            self._shown = False

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.clear()

    def _write(self, data: str) -> None:
        try:
            self.err.write(data)
            self.err.flush()
        except (OSError, ValueError):  # the terminal went away: the run goes on
            pass


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def fit(line: str, width: int) -> str:
    """`line` cut to `width` terminal cells (wide characters count two)."""
    cells = 0
    for index, char in enumerate(line):
        cells += 2 if unicodedata.east_asian_width(char) in "WF" else 1
        if cells > width:
            return line[:index]
    return line


def _width(stream: IO[str]) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):
        return 80
