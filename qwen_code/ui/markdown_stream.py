"""Streaming markdown whose total cost is linear in the length of the answer.

Each top-level block (paragraph, heading, list, table, fenced code) is rendered with rich
`Markdown` and printed to the scrollback once, when it is complete. Only the unfinished
tail is shown, in a transient `LiveRegion` of a few lines (and a status line under them)
redrawn at most 15 times a second (less when rendering is slow, as in aider's mdstream.py);
a frame rewrites only the cells that changed, and a finished block that reads as the tail
showed it costs nothing more to print. Growing blocks are cut so the tail
stays small: an open fence prints finished lines in chunks, a long list its finished items,
a long paragraph everything up to a sentence end. Boundaries come from a small line
classifier (CommonMark's block rules, simplified) that cuts only where a block surely ends:
merging two real blocks is harmless, every piece goes through the same renderer.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from markdown_it import MarkdownIt
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markdown import CodeBlock, Heading, Markdown
from rich.segment import Segment, Segments
from rich.syntax import Syntax
from rich.text import Text

from qwen_code.ui.live_region import LiveRegion

CODE_THEME = "monokai"
MAX_LIVE_LINES = 12  # the most lines the live region takes (fewer on short terminals)
CODE_CHUNK_LINES = 6  # an open fence prints its finished lines once this many wait
LIST_FLUSH_LINES = 16  # a list prints its finished items once it has this many lines
PREVIEW_LINES = 24  # the most source lines of the tail that a frame renders
MIN_FRAME_S = 1 / 15  # the shortest time between two frames of the live region
TICK_S = 1 / 8  # the status line's spinner turns this often while no text comes

_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Control characters a model's text may not send to the terminal: an escape sequence in
an answer could set the clipboard (OSC 52), retitle or clear the screen. Tab and newline
stay."""
_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")
_FENCE_CLOSE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*$")
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)")
_HR = re.compile(r"^ {0,3}(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_SETEXT = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
_LIST_ITEM = re.compile(r"^( {0,3})([-+*]|\d{1,9}[.)])(?:[ \t]|$)")
_NOT_PLAIN = re.compile(r"^(?: {4}|\t| {0,3}(?:[|>#<]|[-+*](?:\s|$)|\d{1,9}[.)]|```|~~~)|\s*$)")
"""Lines that are not paragraph text: no cuts inside such a block."""
_LEFT = dict.fromkeys(("h1", "h2", "h3", "h4", "h5", "h6"), "left")
_INLINE = re.compile(r"`+|\*\*|~~|\[|\]|[.!?;:](?=[ \t]+[^\W\d_])|[。！？；](?=[^\W\d_])")

StatusLine = Callable[[int, bool], RenderableType | None]
"""The line under the tail: called with the characters streamed so far and whether the
spinner should turn (no text came for a while); None shows no line."""


class _CodeBlock(CodeBlock):
    """Fenced code rendered by `code_syntax`, so whole blocks and streamed chunks match."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield code_syntax(str(self.text).rstrip(), self.lexer_name)


class _Markdown(Markdown):
    elements = {**Markdown.elements, "fence": _CodeBlock, "code_block": _CodeBlock}  # noqa: RUF012
    # Headings flush left: a centred h1 reads oddly in a wide terminal transcript.
    elements["heading_open"] = type("_Heading", (Heading,), {"LEVEL_ALIGN": _LEFT})


def render_markdown(text: str) -> Markdown:
    """The whole-text rendering that streaming reproduces block by block. Links print as
    `text (url)`: OSC 8 hyperlinks get lost in many tmux/SSH setups. One shared parser:
    building a MarkdownIt per render costs more than parsing a paragraph."""
    markdown = copy.copy(_PROTOTYPE)
    markdown.markup, markdown.parsed = text, _PARSER.parse(text)
    return markdown


_PARSER = MarkdownIt().enable("strikethrough").enable("table")  # as rich's Markdown does
_PROTOTYPE = _Markdown("", code_theme=CODE_THEME, hyperlinks=False)


@lru_cache(maxsize=64)
def _lexer(name: str) -> Lexer | str:
    try:
        return get_lexer_by_name(name)
    except ClassNotFound:
        return "text"


def code_syntax(code: str, language: str, *, top: bool = True, bottom: bool = True) -> Syntax:
    """A highlighted code block; `top`/`bottom` drop the padding line where a chunk of a
    longer block continues, so chunks printed one after another look like one block."""
    padding = (1 if top else 0, 1, 1 if bottom else 0, 1)
    lexer = _lexer(language or "text")
    return Syntax(code, lexer, theme=CODE_THEME, word_wrap=True, padding=padding)


@dataclass(slots=True)
class _Fence:  # an open code fence; `started` once its first chunk is out
    marker: str
    indent: int
    lang: str
    code: list[str] = field(default_factory=list)
    started: bool = False


def safe_cut(text: str, hard_limit: int) -> int:
    """Where a long paragraph can be cut without breaking inline markup: after the last
    sentence end outside code spans, `**`, `~~` and `[...]` that a letter follows. Past
    `hard_limit` characters, at the last space (or anywhere). 0 means: do not cut yet."""
    ticks, strong, strike, depth, best = 0, False, False, 0, 0
    for m in _INLINE.finditer(text):
        token = m.group()
        if token[0] == "`":
            ticks = 0 if ticks == len(token) else (ticks or len(token))
        elif ticks:
            continue
        elif token == "**":
            strong = not strong
        elif token == "~~":
            strike = not strike
        elif token in "[]":
            depth = max(0, depth + (1 if token == "[" else -1))
        elif not (strong or strike or depth):
            best = m.end()
    if best or len(text) < hard_limit:
        return best
    space = text.rfind(" ", hard_limit // 2, hard_limit)
    return space + 1 if space > 0 else hard_limit


class MarkdownStream:
    """Finished blocks print once; the unfinished tail shows in a live region. `update()`
    with each delta, then `finish()` (or `abort()` when interrupted: the same, what came
    is rendered as the tail showed it). With no interactive terminal (a pipe, a file,
    `record=True`) blocks just print as they end, and there is no status line."""

    def __init__(self, console: Console, *, status: StatusLine | None = None) -> None:
        self.console = console
        self.live_enabled = (
            console.is_interactive and not console.record and not console.legacy_windows
        )
        self.status = status if self.live_enabled else None
        self._region: LiveRegion | None = None
        self._tail: list[list[Segment]] = []  # the tail's lines in the last frame
        self._chars = 0  # characters streamed, for the status line's token estimate
        self._status_rows: tuple[object, int, list[list[Segment]]] = (None, 0, [])
        self._min_delay, self._last_render = MIN_FRAME_S, 0.0
        self._partial: list[str] = []
        self._partial_len = 0
        self._block: list[str] = []
        self._kind: str | None = None  # None (between blocks), "text", "list" or "fence"
        self._fence: _Fence | None = None
        self._plain, self._blank_after = True, False
        self._continues = False  # the last piece printed belongs to a block that goes on
        self._gap = False  # the next block needs a blank line (not after a thematic break)
        self._next_cut_at = 0
        self._out: list[RenderableType] = []  # pieces for the next frame: one write each
        self._timer: asyncio.TimerHandle | None = None
        self._ticker: asyncio.TimerHandle | None = None
        self._closed = False

    def update(self, text_delta: str) -> None:
        if self._closed or not text_delta:
            return
        text_delta = _UNSAFE.sub("", text_delta.replace("\r", ""))
        self._chars += len(text_delta)
        if "\n" in text_delta:
            first, *lines, last = text_delta.split("\n")
            self._partial.append(first)
            self._feed_line("".join(self._partial))
            for line in lines:
                self._feed_line(line)
            self._partial, self._partial_len = [last], len(last)
        else:
            self._partial.append(text_delta)
            self._partial_len += len(text_delta)
        self._maybe_cut_paragraph()
        wait = self._min_delay - (time.monotonic() - self._last_render)
        if not self.live_enabled:
            self._flush_out()
        elif wait <= 0:
            self._refresh()
        elif self._timer is None:  # the model may go quiet (writing tool arguments): show
            with contextlib.suppress(RuntimeError):  # the tail then, if a loop is running
                self._timer = asyncio.get_running_loop().call_later(wait, self._deferred)

    def _deferred(self) -> None:
        self._timer = None
        if not self._closed:
            self._refresh()

    def finish(self) -> None:
        """Print everything that is left as markdown and close the live region."""
        if not self._closed:
            if self._partial_len:
                self._feed_line(self._partial_text(take=True))
            self._commit()
            self._close()

    def abort(self) -> None:
        """The answer was interrupted: print what came as the tail showed it (a half
        table as a table, an open fence as code), not as raw markdown, and close."""
        self.finish()

    def _feed_line(self, line: str) -> None:
        if self._fence is not None:
            self._fence_line(line, self._fence)
        elif self._kind is None:
            self._start_block(line)
        else:
            (self._list_line if self._kind == "list" else self._text_line)(line)

    def _start_block(self, line: str) -> None:
        if not line.strip():
            return
        self._block, self._blank_after, self._plain = [line], False, not _NOT_PLAIN.match(line)
        fence = _FENCE.match(line)
        if fence and not (fence.group(2)[0] == "`" and "`" in fence.group(3)):
            lang = fence.group(3).strip().partition(" ")[0]
            self._kind, self._fence = "fence", _Fence(fence.group(2), len(fence.group(1)), lang)
        elif _HEADING.match(line) or _HR.match(line):
            self._kind = "text"
            self._commit(hr=bool(_HR.match(line)))
        else:
            self._kind = "list" if _LIST_ITEM.match(line) else "text"

    def _text_line(self, line: str) -> None:
        """Paragraphs, tables and quotes end at a blank line; a fence, a heading or a list
        interrupts them; a setext underline closes a paragraph as a heading. Indented code
        goes on over blank lines, up to a line indented less."""
        code = bool(self._block) and self._block[0].startswith(("    ", "\t"))
        if code and (not line.strip() or line.startswith(("    ", "\t"))):
            self._block.append(line)
        elif not line.strip():
            self._commit()
        elif code or _interrupts(line, paragraph=True):
            self._commit()
            self._start_block(line)
        else:
            self._block.append(line)
            self._plain = self._plain and not _NOT_PLAIN.match(line)
            if _SETEXT.match(line):
                self._commit()

    def _list_line(self, line: str) -> None:
        """A list goes on with indented lines, its own items and (before any blank line)
        lazy paragraph text; a new item after many lines prints the finished items."""
        if not line.strip():
            self._blank_after = True
            self._block.append(line)
            return
        item = _LIST_ITEM.match(line)
        top_item = item is not None and not item.group(1) and not _HR.match(line)
        lazy = not (self._blank_after or _interrupts(line, paragraph=False))
        if top_item and len(self._block) >= LIST_FLUSH_LINES:
            self._commit(partial=True)
        elif not (top_item or lazy or line.startswith((" ", "\t"))):
            self._commit()
            self._start_block(line)
            return
        self._block.append(line)
        self._blank_after = False

    def _fence_line(self, line: str, fence: _Fence) -> None:
        close = _FENCE_CLOSE.match(line)
        marker = close.group(1) if close else ""
        if marker[:1] == fence.marker[0] and len(marker) >= len(fence.marker):
            self._commit()
            return
        fence.code.append(line[min(fence.indent, len(line) - len(line.lstrip(" "))) :])
        if len(fence.code) <= CODE_CHUNK_LINES:
            return
        # Keep the last non-blank line back: trailing blanks are dropped from a whole block.
        keep = next((i for i in range(len(fence.code) - 1, 0, -1) if fence.code[i].strip()), 0)
        if keep:
            chunk, fence.code = "\n".join(fence.code[:keep]), fence.code[keep:]
            top = not fence.started
            self._print(code_syntax(chunk, fence.lang, top=top, bottom=False), top, "open")
            fence.started = True

    def _commit(self, *, hr: bool = False, partial: bool = False) -> None:
        """Print the current block (or, with `partial`, the finished items of a list)."""
        if (fence := self._fence) is not None:
            code = "\n".join(fence.code).rstrip()
            self._print(code_syntax(code, fence.lang, top=not fence.started), not fence.started)
        elif any(line.strip() for line in self._block):
            end = "open" if partial else "hr" if hr else "block"
            self._print_markdown("\n".join(self._block).strip("\n"), not self._continues, end)
        elif self._continues and not partial:
            self._gap, self._continues = True, False
        self._block, self._next_cut_at = [], 0
        if not partial:
            self._kind, self._fence, self._plain = None, None, True

    def _maybe_cut_paragraph(self) -> None:
        """Keep a long paragraph from growing the tail without bound: print it up to its
        last safe cut once it passes a size (tried again only after it grows more)."""
        if self._kind not in (None, "text") or not self._plain:
            return
        limit = max(300, int((MAX_LIVE_LINES - 4) * self.console.width * 0.8))
        size = self._partial_len + sum(len(line) + 1 for line in self._block)
        if size < max(limit, self._next_cut_at):
            return
        partial = self._partial_text()
        if self._kind is None and _NOT_PLAIN.match(partial):
            return
        text = "\n".join([*self._block, partial])
        cut = safe_cut(text, 4 * limit)
        if cut <= 0:
            self._next_cut_at = size + limit // 2
            return
        self._print_markdown(text[:cut].rstrip(), not self._continues, "open")
        *self._block, last = text[cut:].lstrip().split("\n")
        self._partial, self._partial_len = [last], len(last)
        self._kind, self._plain, self._next_cut_at = "text", True, 0

    def _print_markdown(self, text: str, start: bool, end: str = "block") -> None:
        """Rich starts a container (list, quote, table) with the blank line that separates
        it from the block before, so printed alone, that line leads its output: it is the
        gap, or goes where the piece continues the previous one."""
        markdown = render_markdown(text)
        segments = list(self.console.render(markdown, self.console.options))
        lead = bool(segments) and segments[0].text == "\n"
        self._gap = self._gap or (lead and start)
        self._print(Segments(segments[1:] if lead else segments), start, end)

    def _print(self, piece: RenderableType, start: bool, end: str = "block") -> None:
        """Queue a piece that may `start` a block and `end` it ("block", "hr") or not."""
        if start and self._gap:
            self._out.append(Text())
        self._out.append(piece)
        self._continues = end == "open"
        self._gap = self._gap if self._continues else end == "block"

    def _flush_out(self) -> None:
        if self._out:
            out, self._out = self._out, []
            self.console.print(Group(*out))

    def _take_out(self) -> list[list[Segment]]:
        """The pieces waiting to be printed, as lines (what `_flush_out` would print)."""
        out, self._out = self._out, []
        return self.console.render_lines(Group(*out), pad=False) if out else []

    def _refresh(self) -> None:
        """One frame: finished pieces above, the tail and the status line in the region."""
        started = time.perf_counter()
        if self._region is None:
            self._region = LiveRegion(self.console)
            self._region.start()
            self._start_ticker()
        self._tail = self._preview()
        self._region.update([*self._tail, *self._status(spin=False)], above=self._take_out())
        self._min_delay = min(max((time.perf_counter() - started) * 10, MIN_FRAME_S), 2.0)
        self._last_render = time.monotonic()

    def _status(self, *, spin: bool) -> list[list[Segment]]:
        """The status line's rows (rendered again only when the line or the width changed)."""
        line = self.status(self._chars, spin) if self.status is not None else None
        if line is None:
            return []
        cached, width, rows = self._status_rows
        if cached is not line or width != self.console.width:
            options = self.console.options.update(no_wrap=True)
            rows = self.console.render_lines(line, options, pad=False)
            self._status_rows = (line, self.console.width, rows)
        return rows

    def _start_ticker(self) -> None:
        """Turn the spinner while the model is quiet (on the event loop, if one runs)."""
        if self.status is not None and self._ticker is None:
            with contextlib.suppress(RuntimeError):
                self._ticker = asyncio.get_running_loop().call_later(TICK_S, self._tick)

    def _tick(self) -> None:
        self._ticker = None
        if self._closed or self._region is None:
            return
        if time.monotonic() - self._last_render >= TICK_S * 0.9 and self._timer is None:
            self._region.update([*self._tail, *self._status(spin=True)])
            self._last_render = time.monotonic()
        self._start_ticker()

    def _preview(self) -> list[list[Segment]]:
        """The last few rendered lines of the tail; only a bounded slice of it is rendered
        (its first two and last lines: a table keeps its header), so a frame costs O(1)."""
        partial = self._partial_text()[-4000:]
        if self._fence is not None:
            code = "\n".join([*self._fence.code[-PREVIEW_LINES:], partial])
            top = not self._fence.started
            tail: RenderableType = code_syntax(code, self._fence.lang, top=top, bottom=False)
        else:
            lines = self._block
            if len(lines) > PREVIEW_LINES:
                lines = [*lines[:2], *lines[2 - PREVIEW_LINES :]]
            text = "\n".join([*lines, partial])
            if not text.strip():
                return []
            tail = render_markdown(text)
        rendered = self.console.render_lines(tail, pad=False)
        lead = bool(rendered) and not rendered[0]
        if lead and self._continues:
            del rendered[0]
        elif self._gap and not self._continues and not lead:
            rendered.insert(0, [])
        height = max(3, min(MAX_LIVE_LINES, self.console.height - 2 - bool(self.status)))
        return rendered[-height:]

    def _partial_text(self, *, take: bool = False) -> str:
        text = "".join(self._partial)
        self._partial, self._partial_len = ([], 0) if take or not text else ([text], len(text))
        return text

    def _close(self) -> None:
        self._closed, region, self._region = True, self._region, None
        for timer in (self._timer, self._ticker):
            if timer is not None:
                timer.cancel()
        if region is not None:
            region.stop(above=self._take_out())
        self._flush_out()


def _interrupts(line: str, *, paragraph: bool) -> bool:
    """A line that ends the block before it: a fence, a heading or a thematic break at the
    margin, and (after a paragraph) a list item that may start a list there."""
    if _FENCE.match(line) or _HEADING.match(line):
        return True
    if _HR.match(line):
        return not (paragraph and _SETEXT.match(line))
    item = _LIST_ITEM.match(line)
    if not paragraph or item is None or not line[item.end() :].strip():
        return False
    return item.group(2) in "-+*" or item.group(2)[:-1] == "1"
