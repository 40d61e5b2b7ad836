"""A few lines at the bottom of the terminal, redrawn in place with as few bytes as possible.

rich's `Live` erases and rewrites its whole region on every frame; over SSH and in tmux a
streamed answer then costs tens of times its size. `LiveRegion` keeps the rows it drew and
on each frame rewrites only the cells that changed: it moves the cursor to the first
changed cell of a changed row, writes up to the last changed cell (or to the end of the
line, erasing what is left), and erases the rows left over below. Styles are written as
changes of the terminal's pen, not as a full reset and set per piece of text.

Lines that are finished (`above`) are written in the same frame, in place of the region's
first rows: when they read the same as those rows (a code chunk that was already shown),
they cost nothing; then they stay in the scrollback and the region goes on below them.
Each frame is one write, wrapped in synchronized output (DEC mode 2026) where that is
allowed, so the terminal shows it all at once. Anything else printed to the console while
the region is shown goes above it (a render hook, as rich's `Live` does).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache

from rich.cells import cell_len
from rich.color import ColorSystem
from rich.console import Console, ConsoleOptions, RenderableType, RenderHook, RenderResult
from rich.control import Control
from rich.segment import ControlType, Segment
from rich.style import Style

SYNC_BEGIN, SYNC_END = "\x1b[?2026h", "\x1b[?2026l"
SYNC_ENV = "QWEN_CODE_SYNC_OUTPUT"
"""Set to 0 to never wrap frames in synchronized output."""
_NO_SYNC_TERMS = ("linux", "dumb")

Run = tuple[str, Style | None]
Row = tuple[Run, ...]
"""One row as drawn: runs of text in one style, without trailing blanks."""

_SYSTEMS = {
    "standard": ColorSystem.STANDARD,
    "256": ColorSystem.EIGHT_BIT,
    "truecolor": ColorSystem.TRUECOLOR,
    "windows": ColorSystem.WINDOWS,
}
_ATTRIBUTES = (
    ("bold", "1"),
    ("dim", "2"),
    ("italic", "3"),
    ("underline", "4"),
    ("blink", "5"),
    ("blink2", "6"),
    ("reverse", "7"),
    ("conceal", "8"),
    ("strike", "9"),
    ("underline2", "21"),
    ("frame", "51"),
    ("encircle", "52"),
    ("overline", "53"),
)
_VISIBLE_BLANK = ("bgcolor", "reverse", "underline", "underline2", "strike", "overline")
"""Attributes that make a space visible: trailing spaces without them are not written."""
_BLANK_CODES = frozenset({"4", "9", "21", "53"})
"""The SGR codes of the attributes (but reverse) that show on a space."""


def sync_output_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """Wrap frames in DEC mode 2026 unless `QWEN_CODE_SYNC_OUTPUT=0` or the terminal is
    the Linux console or dumb (terminals that do not know the mode ignore it)."""
    env = os.environ if environ is None else environ
    term = env.get("TERM", "").lower()
    return env.get(SYNC_ENV, "1").strip() != "0" and term not in _NO_SYNC_TERMS


class _Raw(Control):
    """Text written to the terminal as it is (escape sequences included)."""

    def __init__(self, text: str) -> None:
        self.segment = Segment(text, None, [(ControlType.BELL,)])


Pen = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
"""What a style sets on the terminal: foreground and background codes, attribute codes."""


@lru_cache(maxsize=1024)
def _pen(style: Style | None, system: ColorSystem | None) -> Pen:
    """The SGR parameters of `style` (colours as the colour system shows them, none
    without one): styles that differ only in ways the terminal cannot show are equal."""
    if style is None:
        return (), (), ()
    attributes = tuple(code for name, code in _ATTRIBUTES if getattr(style, name))
    if system is None:
        return (), (), attributes
    fg = style.color.downgrade(system).get_ansi_codes(True) if style.color else ()
    bg = style.bgcolor.downgrade(system).get_ansi_codes(False) if style.bgcolor else ()
    return tuple(fg), tuple(bg), attributes


@lru_cache(maxsize=1024)
def pen_change(old: Style | None, new: Style | None, system: ColorSystem | None) -> str:
    """The escape sequence that changes the pen from `old` to `new` (None: the default):
    only what is added or changed (a colour that goes back to the default included), or a
    reset and `new` where an attribute must go off."""
    (old_fg, old_bg, old_attrs), (fg, bg, attrs) = _pen(old, system), _pen(new, system)
    if (old_fg, old_bg, old_attrs) == (fg, bg, attrs):
        return ""
    if not (fg or bg or attrs):
        return "\x1b[0m"
    if not set(old_attrs) <= set(attrs):
        return f"\x1b[0;{';'.join((*attrs, *fg, *bg))}m"
    codes = [code for code in attrs if code not in old_attrs]
    codes += fg if fg != old_fg else ()
    codes += bg if bg != old_bg else ()
    codes += ["39"] if old_fg and not fg else []  # back to the default colours
    codes += ["49"] if old_bg and not bg else []
    return f"\x1b[{';'.join(codes)}m"


def _blank_alike(pen: Style | None, style: Style | None, system: ColorSystem | None) -> bool:
    """Spaces drawn with `pen` look as they would with `style`: the foreground colour,
    bold or italic do not show on a space (unless it is reversed)."""
    (_, old_bg, old_attrs), (_, bg, attrs) = _pen(pen, system), _pen(style, system)
    if "7" in old_attrs or "7" in attrs:
        return _pen(pen, system) == _pen(style, system)
    shown = _BLANK_CODES
    return old_bg == bg and shown.intersection(old_attrs) == shown.intersection(attrs)


def _invisible(style: Style | None) -> bool:
    return style is None or not any(getattr(style, name) for name in _VISIBLE_BLANK)


def to_row(segments: Sequence[Segment], *, no_color: bool = False) -> Row:
    """A rendered line as runs of one style each, control codes and trailing blanks
    that show nothing dropped (an erased cell looks the same)."""
    runs: list[tuple[str, Style | None]] = []
    for text, style, control in segments:
        if control or not text:
            continue
        if style is not None and no_color:
            style = style.without_color
        style = style or None  # a null style draws as the default
        if runs and runs[-1][1] == style:
            runs[-1] = (runs[-1][0] + text, style)
        else:
            runs.append((text, style))
    while runs and _invisible(runs[-1][1]):
        text, style = runs[-1]
        if text.rstrip(" "):
            runs[-1] = (text.rstrip(" "), style)
            break
        runs.pop()
    return tuple(runs)


def _pieces(row: Row, start: int, stop: int) -> Iterator[Run]:
    """The runs of `row` between two character offsets."""
    at = 0
    for text, style in row:
        end = at + len(text)
        if end > start and at < stop:
            yield text[max(start - at, 0) : stop - at], style
        at = end


def _width(row: Row) -> int:
    return sum(cell_len(text) for text, _ in row)


def _cells(row: Row) -> list[tuple[str, Style | None]]:
    return [(char, style) for text, style in row for char in text]


def _span(old: Row, new: Row) -> tuple[int, int]:
    """How many characters at the start and (when both rows take as many cells) at the
    end of `new` are already on screen as they are."""
    a, b = _cells(old), _cells(new)
    start, most = 0, min(len(a), len(b))
    while start < most and a[start] == b[start]:
        start += 1
    if _width(old) != _width(new):
        return start, 0
    end = 0
    while end < most - start and a[-1 - end] == b[-1 - end]:
        end += 1
    return start, end


class LiveRegion(RenderHook):
    """Rows redrawn in place at the bottom of the output. `update(rows, above=...)`
    draws a frame; `stop(above=...)` erases the rows (they are transient) and leaves
    `above` in the scrollback. Safe to update from one thread while others print."""

    def __init__(self, console: Console, *, sync: bool | None = None) -> None:
        self.console = console
        self.sync = sync_output_allowed() if sync is None else sync
        self._system = _SYSTEMS.get(console.color_system or "")
        self._rows: list[Row] = []
        self._whole: list[bool] = []  # each row was last written in one piece, from column 0
        self._row, self._col = 0, 0  # the cursor, from the region's first row; col None: unknown
        self._bottom = 1  # rows on screen from the region's first row (the cursor's is one)
        self._pen: Style | None = None
        self._width = console.width
        self._lock = threading.RLock()
        self._hooked = self._suspended = self._redraws = False

    def start(self) -> None:
        with self._lock:
            if not self._hooked:
                self._hooked = True
                self.console.push_render_hook(self)
                self.console.show_cursor(False)

    def update(
        self,
        rows: Sequence[Sequence[Segment]],
        above: Sequence[Sequence[Segment]] = (),
    ) -> None:
        """Show `rows` (the last ones that fit the screen), `above` finished lines first."""
        no_color = self.console.no_color
        shown = [to_row(line, no_color=no_color) for line in rows]
        height = max(1, self.console.height - 1)
        committed = [to_row(line, no_color=no_color) for line in above]
        with self._lock:
            if self._suspended:
                return
            self._write(self._frame(committed, shown[-height:]))

    def stop(self, above: Sequence[Sequence[Segment]] = ()) -> None:
        """Erase the rows, leave `above` in their place and the cursor on a new line."""
        committed = [to_row(line, no_color=self.console.no_color) for line in above]
        with self._lock:
            out = self._frame(committed, [], final=True)
            if self._col != 0 or self._row != 0:  # after the last line of `above`
                self._move(out, 0, 0)
            self._write(out)
            if self._hooked:
                self._hooked = False
                self.console.pop_render_hook()
                self.console.show_cursor(True)

    def _frame(self, above: list[Row], rows: list[Row], *, final: bool = False) -> list[str]:
        """The output that turns what is on screen into `above` + `rows`; afterwards the
        region starts after `above`. With `final`, rows of `above` that were written in
        pieces are written again whole, so that each line of the answer's end is in the
        output in one piece (a few rows once per answer; what reads the output as a
        stream, a log or a test, finds the text)."""
        out: list[str] = []
        self._redraws = False  # only adds text where the screen is blank (no sync needed)
        if self.console.width != self._width:  # resized: the old rows may have reflowed
            self._width = self.console.width
            self._move(out, 0, 0)
            out.append("\x1b[J")
            self._redraws = True
            self._rows, self._whole, self._bottom = [], [], self._row + 1
        target = above + rows
        self._make_room(out, target)
        whole = [*self._whole, *[True] * (len(target) - len(self._whole))][: len(target)]
        for index, row in enumerate(target):
            old = self._rows[index] if index < len(self._rows) else ()
            again = final and index < len(above) and (row != old or not whole[index])
            if row != old or again:
                whole[index] = self._draw(out, index, old, row, whole=again)
        if len(self._rows) > len(target):
            self._move(out, len(target), 0)
            self._set_pen(out, None)
            out.append("\x1b[J")
            self._redraws = True
        if final:
            self._set_pen(out, None)  # else the pen stays for the next frame, which goes on
        shift = len(above)
        self._rows, self._row, self._bottom = rows, self._row - shift, self._bottom - shift
        self._whole = whole[shift:]
        return out

    def _make_room(self, out: list[str], target: list[Row]) -> None:
        """Move rows that stay instead of writing them again: rows gone from the top (a
        tail taller than the region) are deleted (DL), rows added above rows that stay
        (the status line under a growing tail) are inserted (IL) as blank rows."""
        self._scroll_up(out, target)
        old, grow = self._rows, len(target) - len(self._rows)
        same = 0
        while grow > 0 and same < len(old) and old[-1 - same] == target[-1 - same]:
            same += 1
        if not same or sum(_width(row) for row in old[-same:]) < 8:
            return
        if len(target) > self.console.height - 1:  # the first rows would scroll off
            return
        at = len(old) - same
        self._move(out, len(old) - 1 + grow, 0)  # the new rows, at the bottom
        self._move(out, at, 0)
        self._set_pen(out, None)
        out.append(f"\x1b[{grow}L" if grow > 1 else "\x1b[L")
        self._col, self._redraws = None, True  # terminals differ on where IL leaves the cursor
        self._rows = [*old[:at], *[()] * grow, *old[at:]]
        self._whole = [*self._whole[:at], *[True] * grow, *self._whole[at:]]

    def _scroll_up(self, out: list[str], target: list[Row]) -> None:
        old, best, saved = self._rows, 0, 40  # worth it when it saves this many cells
        for gone in range(1, min(4, len(old))):
            kept = 0
            while kept < min(len(old) - gone, len(target)) and old[gone + kept] == target[kept]:
                kept += 1
            cells = sum(_width(row) for row in old[gone : gone + kept])
            if cells > saved:
                best, saved = gone, cells
        if best:
            self._move(out, 0, 0)
            self._set_pen(out, None)
            out.append(f"\x1b[{best}M" if best > 1 else "\x1b[M")
            self._col, self._redraws = None, True
            self._rows, self._whole = old[best:], self._whole[best:]

    def _draw(self, out: list[str], index: int, old: Row, new: Row, *, whole: bool) -> bool:
        """Rewrite row `index` from its first changed character to its last (`whole`:
        all of it); text that only fills blank cells (a tail that grows) needs no
        synchronized output. True when the row was written whole."""
        start, end = (0, 0) if whole else _span(old, new)
        stop = sum(len(text) for text, _ in new) - end
        replaced = "".join(text for text, _ in old)[start : -end or None]
        self._redraws = self._redraws or bool(replaced.strip(" "))
        self._move(out, index, sum(cell_len(text) for text, _ in _pieces(new, 0, start)))
        for text, style in _pieces(new, start, stop):
            if text.strip(" ") or not _blank_alike(self._pen, style, self._system):
                self._set_pen(out, style)
            out.append(text)
        written = sum(cell_len(text) for text, _ in _pieces(new, 0, stop))
        if end == 0 and written < _width(old):
            self._set_pen(out, None)
            out.append("\x1b[K")
            self._redraws = True
        self._col = written if written < self._width else None  # None: maybe pending wrap
        return start == 0 and end == 0

    def _move(self, out: list[str], row: int, col: int) -> None:
        """Move the cursor; rows below the last one on screen are made with newlines."""
        if row < self._row:
            up = self._row - row
            out.append(f"\x1b[{up}A" if up > 1 else "\x1b[A")
        elif row > self._row:
            last = self._bottom - 1
            down = min(row, last) - self._row
            if 0 < down <= 3 and col == 0:  # rows below exist: no scrolling
                out.append("\n" * down)  # ONLCR: to column 0
                self._col = 0
            elif down > 0:
                out.append(f"\x1b[{down}B" if down > 1 else "\x1b[B")
            if row > last:
                self._set_pen(out, None)
                out.append("\n" * (row - max(last, self._row)))  # ONLCR: to column 0
                self._col, self._bottom = 0, row + 1
        self._row = row
        if col != self._col:
            out.append("\r" if col == 0 else f"\x1b[{col + 1}G")
            self._col = col

    def _set_pen(self, out: list[str], style: Style | None) -> None:
        if style != self._pen:
            out.append(pen_change(self._pen, style, self._system))
            self._pen = style

    def _write(self, out: list[str]) -> None:
        if not out:
            return
        text = "".join(out)
        if self.sync and self._redraws:
            text = f"{SYNC_BEGIN}{text}{SYNC_END}"
        self.console.control(_Raw(text))

    # ---- anything else printed meanwhile goes above the region -------------------------

    def process_renderables(self, renderables: list[RenderableType]) -> list[RenderableType]:
        """Erase the rows, let the renderables print, draw the rows again under them."""
        with self._lock:
            shown = self._rows
            if not shown or self._suspended:
                return renderables
            out = self._frame([], [], final=True)
            self._move(out, 0, 0)
            self._suspended = True
        return [_Raw("".join(out)), *renderables, _Redraw(self, shown)]

    def _redraw(self, rows: list[Row]) -> str:
        """After something was printed above: the rows again, from a new first row."""
        with self._lock:
            self._suspended = False
            self._row, self._col, self._bottom, self._rows, self._whole = 0, 0, 1, [], []
            return "".join(self._frame([], rows))


class _Redraw:
    def __init__(self, region: LiveRegion, rows: list[Row]) -> None:
        self.region, self.rows = region, rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield _Raw(self.region._redraw(self.rows)).segment
