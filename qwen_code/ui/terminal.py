"""Facts about the terminal, the one function that builds a Console, and the spinner line.

Everything the REPL's output side needs to know about where it writes (a TTY or a pipe,
its size, whether colour is allowed, whether it can show non-ASCII symbols) lives in the
small `Terminal` dataclass. Tests build one by hand; `Terminal.detect()` reads it from
the streams it is given (the front end's `Environment`) and the environment variables.
`make_console()` is the only place a rich `Console` is configured. `Thinking` is the
transient status line shown while the model or a tool works.
"""

from __future__ import annotations

import codecs
import locale
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

NARROW_WIDTH = 60
"""Below this many columns the renderers drop decorations (durations, long summaries)."""
MIN_WIDTH = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Symbols:
    """The glyphs the renderers draw; an ASCII set replaces them on non-UTF-8 terminals."""

    bullet: str = "●"
    elbow: str = "⎿"
    check: str = "✓"
    cross: str = "✗"
    pending: str = "○"
    active: str = "▶"
    ellipsis: str = "…"
    retry: str = "↻"
    dot: str = "·"
    spinner: str = "dots"
    """The name of the rich spinner for waiting lines."""


UNICODE_SYMBOLS = Symbols()
ASCII_SYMBOLS = Symbols(
    bullet="*",
    elbow="->",
    check="[x]",
    cross="x",
    pending="[ ]",
    active="[>]",
    ellipsis="...",
    retry="~",
    dot="-",
    spinner="line",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Terminal:
    """What the output side knows about its terminal. All fields can be set by tests."""

    is_tty: bool = False
    """Standard output is a terminal (not a pipe or a file)."""
    stdin_is_tty: bool = False
    width: int = 80
    height: int = 24
    color: bool = False
    """Colour is allowed: a TTY, `NO_COLOR` unset, `TERM` not `dumb`."""
    unicode: bool = True
    """The output encoding and the locale are UTF-8, so ●, ⎿ and ✓ can be shown."""
    dumb: bool = False
    """`TERM=dumb`: no cursor movement, so no live regions or spinners."""

    @property
    def narrow(self) -> bool:
        return self.width < NARROW_WIDTH

    @property
    def interactive(self) -> bool:
        """Both ends are terminals that understand cursor movement."""
        return self.is_tty and self.stdin_is_tty and not self.dumb

    @property
    def symbols(self) -> Symbols:
        return UNICODE_SYMBOLS if self.unicode else ASCII_SYMBOLS

    @classmethod
    def detect(
        cls,
        *,
        stdout: IO[str],
        stdin: IO[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Terminal:
        """Read the facts from `stdout` and `stdin` (None: no terminal for input) and the
        environment variables (`os.environ` unless given)."""
        out = stdout
        env = os.environ if environ is None else environ
        is_tty = _isatty(out)
        dumb = env.get("TERM", "").lower() == "dumb"
        width, height = _size(out, env)
        return cls(
            is_tty=is_tty,
            stdin_is_tty=_isatty(stdin),
            width=width,
            height=height,
            color=is_tty and not dumb and not env.get("NO_COLOR"),
            unicode=_is_utf8(getattr(out, "encoding", None)) and _locale_is_utf8(env),
            dumb=dumb,
        )


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _size(stream: IO[str], env: Mapping[str, str]) -> tuple[int, int]:
    """Columns and lines: `COLUMNS`/`LINES` first, then the stream's terminal, then 80x24."""
    try:
        size = os.get_terminal_size(stream.fileno())
        width, height = size.columns, size.lines
    except (AttributeError, ValueError, OSError):
        fallback = shutil.get_terminal_size((80, 24))
        width, height = fallback.columns, fallback.lines
    width = _int(env.get("COLUMNS"), width)
    height = _int(env.get("LINES"), height)
    return max(width or 80, MIN_WIDTH), max(height or 24, 5)


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default


def _is_utf8(encoding: str | None) -> bool:
    name = encoding or locale.getpreferredencoding(False)
    try:
        return codecs.lookup(name).name == "utf-8"
    except LookupError:
        return False


def _locale_is_utf8(env: Mapping[str, str]) -> bool:
    """False when the locale is set to something that is not UTF-8 (`LANG=C`,
    `en_US.ISO-8859-1`). Python may still write UTF-8 there (locale coercion), but the
    terminal behind it probably cannot show it. An unset locale says nothing."""
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = env.get(name)
        if value:
            return "utf-8" in value.lower() or "utf8" in value.lower()
    return True


def symbols_for(console: Console) -> Symbols:
    """The symbol set a console can print, judged by its encoding alone."""
    return UNICODE_SYMBOLS if _is_utf8(console.encoding) else ASCII_SYMBOLS


def make_console(terminal: Terminal, file: IO[str] | None = None) -> Console:
    """The one place a rich Console is built.

    No automatic highlighting, no emoji codes, no soft wrapping. Markup stays on for the
    REPL's own messages; model text and tool output go through `Text`, never markup. On a
    real TTY the width is left to rich so it follows resizes; elsewhere it is
    `terminal.width`.
    """
    follows_resizes = terminal.is_tty and (file is None or _isatty(file))
    return Console(
        file=file,
        force_terminal=terminal.is_tty,
        no_color=not terminal.color,
        color_system="auto" if terminal.is_tty else None,
        width=None if follows_resizes else terminal.width,
        height=None if follows_resizes else terminal.height,
        highlight=False,
        emoji=False,
        soft_wrap=False,
        safe_box=True,
    )


def _elapsed(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds}s" if seconds < 60 else f"{seconds // 60}m {seconds % 60:02d}s"


class Thinking:
    """A transient status line, `⠋ Thinking… 3s`, while the model has not answered yet.

    It lives in its own `Live` region (refreshed by rich's thread), shows nothing for its
    first `delay` seconds, and must be stopped before anything else is printed. A no-op
    when the console is not an interactive terminal."""

    def __init__(
        self,
        console: Console,
        *,
        label: str = "Thinking",
        hint: str = "",
        symbols: Symbols | None = None,
        delay: float = 0.0,
    ) -> None:
        self.console, self.label, self.hint, self.delay = console, label, hint, delay
        self.symbols = symbols or symbols_for(console)
        self._spinner = Spinner(self.symbols.spinner, style="cyan")
        self._live: Live | None = None
        self._started = 0.0
        self.details: Callable[[], list[Text]] | None = None
        """Lines shown under the spinner (running subagents)."""

    @property
    def running(self) -> bool:
        return self._live is not None

    def start(self, label: str | None = None, *, delay: float | None = None) -> None:
        self.stop()
        self.label = label or self.label
        self.delay = self.delay if delay is None else delay
        self._started = time.monotonic()
        if not self.console.is_interactive or self.console.record:
            return
        self._live = Live(
            self,
            console=self.console,
            refresh_per_second=8,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start(refresh=True)

    def stop(self) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()

    def __enter__(self) -> Thinking:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        elapsed = time.monotonic() - self._started
        if elapsed < self.delay:
            return
        line = Text.assemble(
            (f"{self.label}{self.symbols.ellipsis} ", "dim"), (_elapsed(elapsed), "dim")
        )
        if self.hint and options.max_width >= NARROW_WIDTH:
            line.append(f" {self.symbols.dot} {self.hint}", style="dim")
        self._spinner.update(text=line)
        yield self._spinner.render(time.monotonic())
        if self.details is not None:
            yield from self.details()
