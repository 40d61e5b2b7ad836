"""The REPL's live region on a terminal: what it writes, replayed into a small terminal
emulator (`Screen`), must leave the same screen and scrollback as printing the whole
answer once; frames are wrapped in synchronized output and cost a few bytes each; an
interrupted table stays a table; the status line shows while the answer streams."""

from __future__ import annotations

import io
import re
import types
from collections.abc import Callable, Iterator

import pytest
from rich.cells import cell_len
from rich.color import ColorSystem
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from qwen_code.ui import markdown_stream
from qwen_code.ui.live_region import SYNC_BEGIN, SYNC_END, LiveRegion, pen_change
from qwen_code.ui.markdown_stream import MarkdownStream, render_markdown
from tests.fakeserver import FakeLLM, Turn
from tests.helpers import PtyRepl, StartRepl

_TOKEN = re.compile(
    r"\x1b\[([?<=>]?)([0-9;:]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.|.", re.S
)
Pen = tuple[str, str, frozenset[str]]
"""Foreground, background and attributes (SGR numbers), as the terminal would draw."""
DEFAULT: Pen = ("", "", frozenset())
_SHOW_ON_BLANK = frozenset({"4", "7", "9", "21", "53"})
_OFF = {"22": {"1", "2"}, "23": {"3"}, "24": {"4", "21"}, "25": {"5", "6"}, "27": {"7"}}
_OFF |= {"28": {"8"}, "29": {"9"}, "55": {"53"}, "54": {"51", "52"}}


def _sgr(pen: Pen, params: list[str]) -> Pen:
    fg, bg, attrs = pen[0], pen[1], set(pen[2])
    i = 0
    while i < len(params):
        code = params[i] or "0"
        if code in ("38", "48"):
            size = 3 if params[i + 1] == "5" else 5
            colour = ";".join(params[i : i + size])
            fg, bg = (colour, bg) if code == "38" else (fg, colour)
            i += size
            continue
        if code == "0":
            fg, bg, attrs = "", "", set()
        elif code in ("39", "49"):
            fg, bg = ("", bg) if code == "39" else (fg, "")
        elif code in _OFF:
            attrs -= _OFF[code]
        elif 30 <= int(code) <= 37 or 90 <= int(code) <= 97:
            fg = code
        elif 40 <= int(code) <= 47 or 100 <= int(code) <= 107:
            bg = code
        else:
            attrs.add(code)
        i += 1
    return fg, bg, frozenset(attrs)


class Screen:
    """A small VT100-style terminal: enough of one to replay what the REPL writes (text,
    CR and LF, relative cursor moves, line and screen erases, inserted and deleted lines,
    SGR colours). Rows scrolled off the top go to `scrollback`. With `onlcr`, LF also
    returns the carriage (as a pty's output processing does for a program's writes)."""

    def __init__(self, width: int, height: int, *, onlcr: bool = False) -> None:
        self.width, self.height, self.onlcr = width, height, onlcr
        self.cells = [self._blank() for _ in range(height)]
        self.scrollback: list[list[tuple[str, Pen]]] = []
        self.x = self.y = 0
        self.pen = DEFAULT
        self.pending = False  # the last column was written: the next character wraps
        self.autowrap = True
        self.clears = 0  # erases of the whole screen

    def _blank(self) -> list[tuple[str, Pen]]:
        return [(" ", DEFAULT)] * self.width

    def feed(self, data: str) -> Screen:
        for match in _TOKEN.finditer(data):
            if match.group(3) is not None:
                self._csi(match.group(1), match.group(2), match.group(3))
            elif not match.group().startswith("\x1b"):
                self._char(match.group())
        return self

    def lines(self) -> list[list[tuple[str, Pen]]]:
        """Scrollback and screen rows, trailing blank cells and rows dropped; a space
        keeps only what shows on it (background, reverse, lines)."""
        rows = []
        for row in [*self.scrollback, *self.cells]:
            cells = [(c, p if c != " " else ("", p[1], p[2] & _SHOW_ON_BLANK)) for c, p in row]
            while cells and cells[-1] == (" ", DEFAULT):
                cells.pop()
            rows.append([cell for cell in cells if cell[0]])
        while rows and not rows[-1]:
            rows.pop()
        return rows

    def text(self) -> str:
        """Scrollback and screen, each line without trailing blanks, no trailing blank lines."""
        return "\n".join("".join(c for c, _ in row) for row in self.lines())

    def _char(self, char: str) -> None:
        if char == "\r":
            self.x, self.pending = 0, False
        elif char == "\n":
            self._linefeed()
            self.x = 0 if self.onlcr else self.x
        elif char == "\b":
            self.x, self.pending = max(0, self.x - 1), False
        elif char >= " ":
            self._print(char)

    def _print(self, char: str) -> None:
        size = cell_len(char)
        if size == 0:
            return
        if self.pending or self.x + size > self.width:
            if self.autowrap:
                self.x = 0
                self._linefeed()
            self.pending = False
        row = self.cells[self.y]
        row[self.x] = (char, self.pen)
        if size == 2 and self.x + 1 < self.width:
            row[self.x + 1] = ("", self.pen)
        self.x += size
        if self.x >= self.width:
            self.x, self.pending = self.width - 1, True

    def _linefeed(self) -> None:
        self.pending = False
        if self.y < self.height - 1:
            self.y += 1
            return
        self.scrollback.append(self.cells.pop(0))
        self.cells.append(self._blank())

    def _csi(self, private: str, params: str, final: str) -> None:
        if private == "?":
            self.autowrap = self.autowrap if params != "7" else final == "h"
            return
        if final == "m":
            self.pen = _sgr(self.pen, params.replace(":", ";").split(";"))
            return
        args = [int(p) if p else 0 for p in params.split(";")] if params else []
        n = max(args[0], 1) if args else 1
        self.pending = False
        moves = {
            "A": lambda: (self.x, max(0, self.y - n)),
            "B": lambda: (self.x, min(self.height - 1, self.y + n)),
            "C": lambda: (min(self.width - 1, self.x + n), self.y),
            "D": lambda: (max(0, self.x - n), self.y),
            "G": lambda: (min(self.width - 1, n - 1), self.y),
            "H": lambda: (min(self.width, max(args[1:2] or [1])) - 1, min(self.height, n) - 1),
        }
        if final in moves:
            self.x, self.y = moves[final]()
        elif final == "K":
            self._erase_line(args[0] if args else 0)
        elif final == "J":
            self._erase_screen(args[0] if args else 0)
        elif final in "LM":
            self._shift_rows(n, insert=final == "L")

    def _shift_rows(self, n: int, *, insert: bool) -> None:
        """IL / DL: blank rows in at the cursor's row (the rest moves down), or rows out."""
        for _ in range(min(n, self.height - self.y)):
            if insert:
                self.cells.pop()
                self.cells.insert(self.y, self._blank())
            else:
                self.cells.pop(self.y)
                self.cells.append(self._blank())

    def _erase_line(self, mode: int) -> None:
        row = self.cells[self.y]
        start, end = {0: (self.x, self.width), 1: (0, self.x + 1)}.get(mode, (0, self.width))
        row[start:end] = [(" ", DEFAULT)] * (end - start)

    def _erase_screen(self, mode: int) -> None:
        if mode == 0:
            self._erase_line(0)
            for index in range(self.y + 1, self.height):
                self.cells[index] = self._blank()
        elif mode in (2, 3):
            self.clears += 1
            self.cells = [self._blank() for _ in range(self.height)]


WIDTH, HEIGHT = 70, 20

DOC = """# Title

Some *intro* paragraph with `code` and **bold** and a [link](https://example.com).
It continues on a second source line, long enough to wrap once or twice in a terminal of
seventy columns, so that the tail has more than one row to redraw as it grows.

- item one
- item two
  continued
  - nested item

| name | value |
|------|-------|
| a    | 1     |
| 宽字  | 2     |

```python
def f(x):
    # a comment

    return x
"""
DOC += "\n".join(f"    value_{i} = x * {i}  # line {i}" for i in range(30))
DOC += "\n```\n\n> a quote\n> on two lines\n\n" + "- point\n" * 14 + "\nFinal words 你好世界。\n"


def terminal(width: int = WIDTH, height: int = HEIGHT) -> tuple[Console, io.StringIO]:
    """A true-colour interactive terminal writing to a string."""
    out = io.StringIO()
    console = Console(
        file=out,
        force_terminal=True,
        force_interactive=True,
        color_system="truecolor",
        width=width,
        height=height,
    )
    return console, out


def replayed(raw: str, width: int = WIDTH, height: int = HEIGHT) -> Screen:
    return Screen(width, height, onlcr=True).feed(raw)


def whole(text: str, width: int = WIDTH) -> Screen:
    """The answer printed once, as a whole, by rich."""
    console, out = terminal(width)
    console.print(render_markdown(text))
    return replayed(out.getvalue(), width)


@pytest.fixture(autouse=True)
def xterm(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal that knows cursor movement, synchronized output allowed."""
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("QWEN_CODE_SYNC_OUTPUT", raising=False)


@pytest.fixture
def every_delta_a_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stream's clock moves a second per call: every delta draws a frame."""
    now = iter(range(10**9))
    clock = types.SimpleNamespace(monotonic=lambda: float(next(now)), perf_counter=lambda: 0.0)
    monkeypatch.setattr(markdown_stream, "time", clock)


def chunks(text: str, size: int) -> Iterator[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]


def status(chars: int, spin: bool) -> Text:
    return Text.assemble(("*", "cyan"), (f" Responding... {chars} chars", "dim"))


def stream(
    doc: str, size: int, *, status_line: Callable[[int, bool], Text] | None = status
) -> tuple[str, MarkdownStream]:
    console, out = terminal()
    md = MarkdownStream(console, status=status_line)
    for delta in chunks(doc, size):
        md.update(delta)
    md.finish()
    return out.getvalue(), md


@pytest.mark.usefixtures("every_delta_a_frame")
@pytest.mark.parametrize("size", [2, 7, 50])
def test_frames_replay_to_the_whole_rendering_colours_included(size: int) -> None:
    raw, md = stream(DOC, size)
    assert md.live_enabled
    screen = replayed(raw)
    assert screen.text() == whole(DOC).text()
    assert screen.lines() == whole(DOC).lines()  # the same colours in every cell
    assert "Responding" not in screen.text()  # the status line was transient
    assert screen.clears == 0 and "\x1b[2J" not in raw


ROWS = "\n".join(f"| k{i} | {'v' * (i % 9)} |" for i in range(30))
TALL = "\n\n".join(
    [
        "\n".join(f"- item {i} of a list that is taller than the live region" for i in range(30)),
        "| key | value |\n|---|---|\n" + ROWS,
        " ".join(f"word{i}" for i in range(500)),
        "```\n" + "\n".join(f"line {i}" for i in range(40)) + "\n```",
        "你好世界，这是一个很长的中文段落。" * 20,
    ]
)


@pytest.mark.usefixtures("every_delta_a_frame")
@pytest.mark.parametrize(("height", "size"), [(8, 9), (14, 17), (40, 5)])
def test_tails_taller_than_the_region_replay_to_the_whole_rendering(height: int, size: int) -> None:
    console, out = terminal(height=height)
    md = MarkdownStream(console, status=status)
    for delta in chunks(TALL, size):
        md.update(delta)
    md.finish()
    screen = replayed(out.getvalue(), height=height)
    assert screen.text() == whole(TALL).text()
    assert screen.lines() == whole(TALL).lines()


@pytest.mark.usefixtures("every_delta_a_frame")
def test_frames_that_redraw_are_synchronized_updates() -> None:
    """Every frame that moves up, erases or overwrites is one DEC 2026 update; a frame
    that only adds text where the screen is blank needs none."""
    raw, _ = stream(DOC, 5)
    assert raw.count(SYNC_BEGIN) == raw.count(SYNC_END) > 50
    outside = re.sub(r"\x1b\[\?2026h.*?\x1b\[\?2026l", "", raw, flags=re.S)
    assert not re.search(r"\x1b\[\d*[AKJLM]", outside)
    assert re.search(r"\x1b\[\d*[AKJLM]", raw)


@pytest.mark.usefixtures("every_delta_a_frame")
@pytest.mark.parametrize(("name", "value"), [("QWEN_CODE_SYNC_OUTPUT", "0"), ("TERM", "linux")])
def test_synchronized_output_can_be_turned_off(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    raw, _ = stream(DOC, 20)
    assert SYNC_BEGIN not in raw
    assert replayed(raw).text() == whole(DOC).text()


@pytest.mark.usefixtures("every_delta_a_frame")
def test_a_frame_writes_only_what_changed() -> None:
    """Text that grows at its end costs a small multiple of its size, however many frames
    (a word that wraps is written twice): rich's `Live` rewrote the whole tail (up to 12
    rows) on every frame, over 100 times the text here."""
    prose = " ".join(f"word{i}" for i in range(400)) + "\n"  # no sentence end: one block
    raw, _ = stream(prose, 2, status_line=None)
    assert raw.count("\x1b[?25l") == 1  # one region, ~1500 frames
    assert len(raw.encode()) < 3 * len(prose)
    assert replayed(raw).text() == whole(prose).text()


@pytest.mark.usefixtures("every_delta_a_frame")
def test_status_line_shows_under_the_tail_while_it_streams() -> None:
    console, out = terminal()
    md = MarkdownStream(console, status=status)
    answer = "First paragraph.\n\nSecond, still "
    for delta in chunks(answer, 3):
        md.update(delta)
    rows = replayed(out.getvalue()).text().split("\n")
    assert rows[-2:] == ["Second, still", f"* Responding... {len(answer)} chars"]
    md.finish()
    assert replayed(out.getvalue()).text() == whole("First paragraph.\n\nSecond, still").text()


def test_no_status_line_without_a_terminal() -> None:
    console = Console(record=True, width=WIDTH, file=io.StringIO())
    md = MarkdownStream(console, status=status)
    assert md.status is None
    md.update("Hello.\n\n")
    md.finish()
    assert "Responding" not in console.export_text()


@pytest.mark.usefixtures("every_delta_a_frame")
def test_abort_mid_table_leaves_the_table_as_it_was_shown() -> None:
    console, out = terminal()
    md = MarkdownStream(console, status=status)
    table = "Results:\n\n| name | count |\n|---|---:|\n| apples | 3 |\n| pears | 1"
    for delta in chunks(table, 2):
        md.update(delta)
    md.abort()
    screen = replayed(out.getvalue()).text()
    assert "|---" not in screen and "| apples" not in screen
    assert re.search(r"apples\s+3", screen) and re.search(r"pears\s+1", screen)
    assert "──" in screen  # the table's rule
    assert screen == whole(table).text()


@pytest.mark.usefixtures("every_delta_a_frame")
def test_something_printed_meanwhile_goes_above_the_region() -> None:
    console, out = terminal()
    md = MarkdownStream(console, status=status)
    for delta in chunks("Half a para", 2):
        md.update(delta)
    console.print("a note from elsewhere")
    screen = replayed(out.getvalue()).text()
    assert screen.startswith("a note from elsewhere\nHalf a para\n* Responding")  # at once
    md.update("graph.")
    md.finish()
    assert replayed(out.getvalue()).text() == "a note from elsewhere\nHalf a paragraph."


def rows(console: Console, *texts: str) -> list[list[Segment]]:
    return [console.render_lines(Text(text), pad=False)[0] for text in texts]


def test_region_redraws_rows_and_erases_what_is_left() -> None:
    console, out = terminal(width=20, height=10)
    region = LiveRegion(console, sync=False)
    region.start()
    region.update(rows(console, "one", "two 二", "three"))
    region.update(rows(console, "one", "twenty 二"))
    assert replayed(out.getvalue(), 20, 10).text() == "one\ntwenty 二"
    region.stop(above=rows(console, "three"))
    assert replayed(out.getvalue(), 20, 10).text() == "three"


def test_region_rows_that_fill_the_width_do_not_wrap_twice() -> None:
    console, out = terminal(width=10, height=6)
    region = LiveRegion(console, sync=False)
    region.start()
    full, short = "x" * 10, "y"
    region.update(rows(console, full, full))
    region.update(rows(console, full, short, full))
    region.update(rows(console, short))
    region.stop(above=rows(console, full, short))
    assert replayed(out.getvalue(), 10, 6).text() == f"{full}\n{short}"


def test_region_moves_rows_that_stay_instead_of_writing_them() -> None:
    """Rows added above the status line are inserted (IL); a tail taller than the region
    loses its top row (DL): the rows that stay are not written again."""
    console, out = terminal(width=60, height=10)
    one, two, three = (f"the {n} line of a tail that is long enough to matter" for n in "123")
    region = LiveRegion(console, sync=False)
    region.start()
    region.update(rows(console, one, "* Responding... 1s"))
    before = len(out.getvalue())
    region.update(rows(console, one, two, "* Responding... 1s"))
    assert "Responding" not in out.getvalue()[before:] and "\x1b[L" in out.getvalue()[before:]
    before = len(out.getvalue())
    region.update(rows(console, two, three, "* Responding... 1s"))
    assert two not in out.getvalue()[before:] and "\x1b[M" in out.getvalue()[before:]
    assert replayed(out.getvalue(), 60, 10).text() == f"{two}\n{three}\n* Responding... 1s"


def test_pen_changes_only_what_differs() -> None:
    code = Style(color="#f8f8f2", bgcolor="#272822")
    keyword = Style(color="#66d9ef", bgcolor="#272822")
    assert pen_change(code, keyword, ColorSystem.TRUECOLOR) == "\x1b[38;2;102;217;239m"
    assert pen_change(keyword, Style(bgcolor="#272822"), ColorSystem.TRUECOLOR) == "\x1b[39m"
    assert pen_change(Style(bold=True), Style(), ColorSystem.TRUECOLOR) == "\x1b[0m"
    assert pen_change(Style(bold=True, italic=True), Style(italic=True), None) == "\x1b[0;3m"
    assert pen_change(None, Style(color="red"), None) == ""  # no colour system: no colours


# ---- the REPL in a pseudo-terminal ---------------------------------------------------------

TABLE = "Here are the totals:\n\n| name | count |\n|---|---:|\n" + "".join(
    f"| row{i} | {i} |\n" for i in range(60)
)


def logged(repl: PtyRepl) -> PtyRepl:
    """Keep what the REPL writes to its terminal, for `shown`."""
    repl.child.logfile_read = io.StringIO()
    return repl


def shown(repl: PtyRepl) -> str:
    """What the REPL's terminal (120x40) shows, scrollback included."""
    log = repl.child.logfile_read
    assert isinstance(log, io.StringIO)
    return Screen(120, 40).feed(log.getvalue()).text()


def test_ctrl_c_mid_table_leaves_a_rendered_table(start_repl: StartRepl, fake_llm: FakeLLM) -> None:
    fake_llm.script(Turn(text=TABLE, chunk_delay_s=0.05, chunk_words=1))
    repl = logged(start_repl())
    repl.send("count them")
    repl.expect("row3")
    repl.child.sendintr()
    repl.expect("Interrupted")
    repl.prompt()
    screen = shown(repl)
    assert "|---" not in screen and "| row" not in screen
    assert re.search(r"row1\s+1", screen) and "────" in screen


def test_status_line_shows_while_the_answer_streams(
    start_repl: StartRepl, fake_llm: FakeLLM
) -> None:
    answer = " ".join(f"w{i}" for i in range(400))
    fake_llm.script(Turn(text=answer, chunk_delay_s=0.02, chunk_words=2))
    repl = logged(start_repl())
    repl.send("talk")
    repl.expect("Responding…")  # drawn once, with the first words; then only what changes
    repl.expect("w30 ")
    for _ in range(20):  # a read may end inside a frame: look again after the next one
        during = shown(repl).split("\n")
        line = r"\S Responding… \d+s · ↓ \d+ tokens? · ctrl\+c to interrupt"
        under = re.match(f"{line}$", during[-1]) and re.search(r"\bw\d+$", "".join(during[-3:-1]))
        if under:
            break
        repl.child.expect(r"w\d+ ")
    assert under, during[-3:]  # the status line, right under the answer's tail
    repl.expect("w399")
    repl.prompt()
    screen = shown(repl)
    assert "w0 w1 w2" in screen and "w399" in screen
    assert "Responding…" not in screen  # it went with the stream
    assert SYNC_BEGIN in repl.child.logfile_read.getvalue()  # type: ignore[union-attr]
