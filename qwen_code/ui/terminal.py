"""Facts about the terminal, the one function that builds a Console, and the spinner line.

Everything the REPL's output side needs to know about where it writes (a TTY or a pipe,
its size, whether colour is allowed, whether it can show non-ASCII symbols) lives in the
small `Terminal` dataclass. Tests build one by hand; `Terminal.detect()` reads it from
the streams it is given (the front end's `Environment`) and the environment variables.
`make_console()` is the only place a rich `Console` is configured. `Thinking` is the
transient status line shown while the model or a tool works; `ResponseStatus` is the same
line under an answer while it streams.
"""

from __future__ import annotations

import codecs
import locale
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.spinner import Spinner
from rich.text import Text

from qwen_code.ui.live_region import LiveRegion

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
    down: str = "↓"
    """Marks the count of tokens received."""
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
    down="",
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


INTERRUPT_HINT = "ctrl+c to interrupt"
SPIN_PER_SECOND = 8
"""How often a waiting spinner line is redrawn."""


def _elapsed(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds}s" if seconds < 60 else f"{seconds // 60}m {seconds % 60:02d}s"


def _tokens(count: int) -> str:
    if count < 1000:
        return f"{count} token{'' if count == 1 else 's'}"
    return f"{count / 1000:.1f}k tokens" if count < 10_000 else f"{count // 1000}k tokens"


def spinner_glyph(spinner: Spinner, elapsed: float) -> str:
    """The spinner's frame `elapsed` seconds after it started."""
    frames = spinner.frames
    return str(frames[int(elapsed * 1000 / spinner.interval) % len(frames)])


def status_line(
    glyph: str,
    label: str,
    elapsed: float,
    *,
    symbols: Symbols,
    width: int,
    hint: str = "",
    tokens: int | None = None,
) -> Text:
    """`⠋ Responding… 12s · ↓ 1.2k tokens · ctrl+c to interrupt`; the hint only when the
    terminal is wide enough. One line: it is cut, never wrapped."""
    line = Text.assemble(
        (glyph, "cyan"),
        " ",
        (f"{label}{symbols.ellipsis} ", "dim"),
        (_elapsed(elapsed), "dim"),
        no_wrap=True,
        overflow="ellipsis",
    )
    if tokens is not None:
        mark = f"{symbols.down} " if symbols.down else ""
        line.append(f" {symbols.dot} {mark}{_tokens(tokens)}", "dim")
    if hint and width >= NARROW_WIDTH:
        line.append(f" {symbols.dot} {hint}", style="dim")
    return line


class Thinking:
    """A transient status line, `⠋ Thinking… 3s`, while the model has not answered yet.

    It lives in its own `LiveRegion` (redrawn by a thread, 8 times a second), shows nothing
    for its first `delay` seconds, and must be stopped before anything else is printed. A
    no-op when the console is not an interactive terminal."""

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
        self._region: LiveRegion | None = None
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._started = time.monotonic()
        self.details: Callable[[], list[Text]] | None = None
        """Lines shown under the spinner (running subagents)."""

    @property
    def running(self) -> bool:
        return self._region is not None

    @property
    def started(self) -> float:
        """When the current wait began (`time.monotonic()`)."""
        return self._started

    def start(self, label: str | None = None, *, delay: float | None = None) -> None:
        self.stop()
        self.label = label or self.label
        self.delay = self.delay if delay is None else delay
        self._started = time.monotonic()
        console = self.console
        if not console.is_interactive or console.record or console.legacy_windows:
            return
        self._region = LiveRegion(console)
        self._region.start()
        self._draw(self._region)
        self._stopping = threading.Event()
        self._ticker = threading.Thread(
            target=self._spin, args=(self._region, self._stopping), daemon=True
        )
        self._ticker.start()

    def _spin(self, region: LiveRegion, stopping: threading.Event) -> None:
        while not stopping.wait(1 / SPIN_PER_SECOND):
            self._draw(region)

    def _draw(self, region: LiveRegion) -> None:
        options = self.console.options.update(no_wrap=True)
        region.update(self.console.render_lines(self, options, pad=False))

    def stop(self) -> None:
        if self._region is not None:
            region, self._region = self._region, None
            self._stopping.set()
            if self._ticker is not None:
                self._ticker.join(timeout=1.0)
                self._ticker = None
            region.stop()

    def __enter__(self) -> Thinking:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        elapsed = time.monotonic() - self._started
        if elapsed < self.delay:
            return
        glyph = spinner_glyph(self._spinner, elapsed)
        yield status_line(
            glyph,
            self.label,
            elapsed,
            symbols=self.symbols,
            width=options.max_width,
            hint=self.hint,
        )
        if self.details is not None:
            yield from self.details()


class ResponseStatus:
    """The status line under an answer while it streams (`MarkdownStream`'s `status`):
    `⠋ Responding… 12s · ↓ 1.2k tokens · ctrl+c to interrupt`, counting from `started`.
    Tokens are estimated from the characters (4 to a token). The figures change once a
    second and the spinner turns only while no text comes (`spin`), so the line costs
    few bytes while text flows: the text itself shows that the answer is alive."""

    def __init__(
        self,
        console: Console,
        *,
        started: float,
        symbols: Symbols | None = None,
        label: str = "Responding",
        hint: str = INTERRUPT_HINT,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.console, self.started, self.label, self.hint = console, started, label, hint
        self.clock = clock or (lambda: time.monotonic())  # late lookup: benchmarks pace it
        self.symbols = symbols or symbols_for(console)
        self._spinner = Spinner(self.symbols.spinner)
        self._glyph = str(self._spinner.frames[0])
        self._second, self._tokens = -1, 0
        self._line: tuple[tuple[str, int, int], Text] | None = None

    def __call__(self, chars: int, spin: bool) -> Text:
        """The line; the same object as last time when nothing in it changed."""
        elapsed = max(0.0, self.clock() - self.started)
        if spin:
            self._glyph = spinner_glyph(self._spinner, elapsed)
        if int(elapsed) != self._second:
            self._second, self._tokens = int(elapsed), chars // 4
        key = (self._glyph, self._second, self._tokens)
        if self._line is None or self._line[0] != key:
            line = status_line(
                self._glyph,
                self.label,
                self._second,
                symbols=self.symbols,
                width=self.console.width,
                hint=self.hint,
                tokens=self._tokens,
            )
            self._line = (key, line)
        return self._line[1]
