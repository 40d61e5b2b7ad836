"""Streaming markdown: tiny deltas end up exactly like rendering the whole text once, each
block printed once, long blocks cut so the unfinished tail stays small, and a real
terminal gets a transient live region (no full-screen redraws)."""

from __future__ import annotations

import asyncio
import io
import os
import random
import re
import threading
from collections.abc import Iterator

import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from qwen_code.ui.markdown_stream import (
    CODE_CHUNK_LINES,
    MarkdownStream,
    render_markdown,
    safe_cut,
)
from tests.helpers import drain, recording

DOC = """# Title

Some *intro* paragraph with `code` and **bold** and a [link](https://example.com).
It continues on a second source line.

## Section two

- item one
- item two
  continued
  - nested item
- item three

1. first

2. second

| name | value |
|------|-------|
| a    | 1     |
| 宽字  | 2     |

```python
def f(x):
    # a comment

    return x
```

---

> a quote
> on two lines

Final words 你好世界。
"""

EDGE_DOCS = [
    "- a\n\n- b\n\n  para in b\n\n- c\n\ntext after",
    "para\n- item\n- item2\n\n  - nested\n\nend",
    "Title\n=====\n\nsub\n---\ntext",
    "***\n\n___\n\npara\n***\nx",
    "> q1\n> q2\n\n> q3\n\nplain",
    "    indented code\n\n    more code\n\nnot code",
    "# H\n```js\nlet a\n\n\n```\n## H2\n| x | y |\n|--|--|\n|1|2|\n- after table",
    "```\nunclosed fence\n  keeps going",
    "~~~ruby\nputs 1\n~~~\n\n````md\n```\nnested fence\n```\n````\n",
    "1. x\n2. y\n\n```\ncode\n```\n",
    "text\n\n\n\n\nafter many blank lines\n",
    "",
]


WIDTH = 70


def whole(text: str, *, width: int = WIDTH, styles: bool = False) -> str:
    console = recording(width=width, terminal=styles)
    console.print(render_markdown(text))
    return console.export_text(styles=styles)


def deltas(text: str, sizes: Iterator[int]) -> Iterator[str]:
    i = 0
    while i < len(text):
        n = next(sizes)
        yield text[i : i + n]
        i += n


def streamed(
    text: str, sizes: Iterator[int], *, width: int = WIDTH, styles: bool = False
) -> tuple[str, MarkdownStream]:
    console = recording(width=width, terminal=styles)
    stream = MarkdownStream(console)
    for delta in deltas(text, sizes):
        stream.update(delta)
    stream.finish()
    return console.export_text(styles=styles), stream


def fixed(n: int) -> Iterator[int]:
    while True:
        yield n


def randomly(seed: int) -> Iterator[int]:
    rng = random.Random(seed)
    while True:
        yield rng.randint(1, 9)


@pytest.mark.parametrize("size", [1, 2, 4, 7, 1000])
def test_streamed_text_equals_whole_rendering(size: int) -> None:
    assert streamed(DOC, fixed(size))[0] == whole(DOC)


@pytest.mark.parametrize("doc", EDGE_DOCS)
def test_edge_cases_equal_whole_rendering_with_styles(doc: str) -> None:
    for seed in range(3):
        assert streamed(doc, randomly(seed), styles=True)[0] == whole(doc, styles=True)


def test_each_block_is_printed_once() -> None:
    text, stream = streamed(DOC, fixed(1))
    assert not stream.live_enabled
    for needle in ("Title", "Section two", "item three", "def f(x):", "a quote", "Final words"):
        assert text.count(needle) == 1, needle


def test_code_block_is_syntax_highlighted() -> None:
    text, _ = streamed("```python\ndef f():\n    return 1\n```\n", fixed(3), styles=True)
    line = next(line for line in text.splitlines() if "def" in line)
    assert re.search(r"\x1b\[[0-9;]*38;2;[0-9;]*m\s*def", line)  # a coloured keyword


def test_completed_blocks_print_before_the_stream_ends() -> None:
    console = recording(width=WIDTH)
    stream = MarkdownStream(console)
    for delta in deltas("# Heading\n\nFirst paragraph.\n\nSecond para", fixed(2)):
        stream.update(delta)
    so_far = console.export_text(clear=False)
    assert "Heading" in so_far and "First paragraph." in so_far
    assert "Second" not in so_far  # the unfinished tail is not printed yet
    stream.finish()
    assert "Second para" in console.export_text()


def test_open_code_fence_flushes_in_chunks_and_stays_small() -> None:
    code = "\n".join(f"value_{i} = {i}" for i in range(500))
    console = recording(width=WIDTH)
    stream = MarkdownStream(console)
    for delta in deltas("```python\n" + code + "\n", fixed(4)):
        stream.update(delta)
        assert stream._fence is None or len(stream._fence.code) <= CODE_CHUNK_LINES + 1
    assert stream._fence is not None  # still open
    assert "value_400 = 400" in console.export_text(clear=False)
    for delta in deltas("```\n\nafter\n", fixed(4)):
        stream.update(delta)
    stream.finish()
    text = console.export_text()
    assert text.count("value_123 = 123") == 1
    assert text == whole("```python\n" + code + "\n```\n\nafter\n")


def test_long_paragraph_is_cut_at_sentence_ends_and_keeps_its_words() -> None:
    paragraph = " ".join(
        f"Sentence number {i} has `code {i}` and **bold {i}**." for i in range(300)
    )
    console = recording(width=WIDTH)
    stream = MarkdownStream(console)
    for delta in deltas(paragraph, fixed(4)):
        stream.update(delta)
    assert "Sentence number 100 " in console.export_text(clear=False)  # printed already
    stream.finish()
    text = console.export_text()
    assert text.split() == whole(paragraph).split()
    assert "`" not in text and "**" not in text  # markup never broken by a cut


def test_long_line_without_sentence_ends_is_still_cut() -> None:
    words = " ".join(f"w{i}" for i in range(3000))
    text, _ = streamed(words, fixed(5))
    assert text.split() == words.split()


def test_long_list_prints_finished_items_early() -> None:
    items = "\n".join(f"- item {i}" for i in range(200))
    console = recording(width=WIDTH)
    stream = MarkdownStream(console)
    for delta in deltas(items, fixed(3)):
        stream.update(delta)
    assert "item 150" in console.export_text(clear=False)
    stream.finish()
    assert console.export_text() == whole(items)


def test_cjk_text_is_measured_in_cells() -> None:
    cjk = (
        "你好世界，这是一个很长的中文段落。" * 12 + "\n\n| 列 | 值 |\n|---|---|\n| 宽字符 | 二 |\n"
    )
    text, _ = streamed(cjk, fixed(2), width=30)
    assert text == whole(cjk, width=30)
    assert all(cell_len(line) <= 30 for line in text.splitlines())


def test_abort_renders_the_tail_as_it_was_shown() -> None:
    """Interrupted: the unfinished tail is rendered as the live region showed it (an open
    fence as code, a half-streamed table as a table), never left as raw markdown."""
    console = recording(width=WIDTH)
    stream = MarkdownStream(console)
    source = "Done with **bold**.\n\n```py\nx = 1"
    for delta in deltas(source, fixed(3)):
        stream.update(delta)
    stream.abort()
    text = console.export_text()
    assert "Done with bold." in text and "x = 1" in text
    assert "```" not in text and "**" not in text
    assert text == whole(source)
    stream.update("more")
    stream.finish()
    assert console.export_text() == ""


def test_abort_mid_table_prints_the_rows_so_far_as_a_table() -> None:
    console = recording(width=WIDTH)
    stream = MarkdownStream(console)
    source = "| name | count |\n|---|---:|\n| apples | 3 |\n| pea"
    for delta in deltas(source, fixed(2)):
        stream.update(delta)
    stream.abort()
    text = console.export_text()
    assert "|---" not in text and "| apples" not in text
    assert re.search(r"apples +│? *3", text) and "pea" in text
    assert text == whole(source)


def test_finish_is_idempotent_and_empty_stream_prints_nothing() -> None:
    console = recording(width=WIDTH)
    stream = MarkdownStream(console)
    stream.update("")
    stream.finish()
    stream.finish()
    assert console.export_text() == ""


def test_carriage_returns_are_ignored() -> None:
    assert streamed("a\r\nb\r\n\r\n# H\r\n", fixed(1))[0] == whole("a\nb\n\n# H\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two. Three", len("One. Two.")),
        ("Use `a. b` here. Next", len("Use `a. b` here.")),
        ("**Bold. still** bold. Next", len("**Bold. still** bold.")),
        ("[see. this](u). Next", len("[see. this](u).")),
        ("No sentence end here", 0),
        ("中文句子。下一句", len("中文句子。")),
        ("Version 1. 2 and 3", 0),
    ],
)
def test_safe_cut(text: str, expected: int) -> None:
    assert safe_cut(text, 10_000) == expected


def test_safe_cut_falls_back_to_a_space_past_the_hard_limit() -> None:
    text = "`unclosed " + "word " * 100
    cut = safe_cut(text, 200)
    assert 100 <= cut <= 200 and text[cut - 1] == " "


def test_live_region_on_a_real_terminal_never_clears_the_screen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    master, slave = os.openpty()
    chunks: list[bytes] = []
    reader = threading.Thread(target=drain, args=(master, chunks), daemon=True)
    reader.start()
    with os.fdopen(slave, "w", encoding="utf-8") as out:
        console = Console(file=out, force_terminal=True, width=80, height=24)
        stream = MarkdownStream(console)
        assert stream.live_enabled
        for delta in deltas(DOC * 3, fixed(4)):
            stream.update(delta)
        stream.finish()
        out.flush()
        seen = -1
        while seen != len(chunks):  # let the reader catch up before the slave side closes
            seen = len(chunks)
            reader.join(timeout=0.2)
    os.close(master)
    reader.join(timeout=5)
    raw = b"".join(chunks).decode("utf-8", errors="replace")
    assert "Final words" in raw and "Section two" in raw
    assert "\x1b[2J" not in raw and "\x1b[?1049h" not in raw  # no clear, no alternate screen
    assert raw.startswith("\x1b[?25l") and raw.endswith("\x1b[?25h")  # a live region was up


async def test_tail_is_shown_when_the_model_goes_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """A throttled delta is drawn by a deferred frame on the event loop, not only when the
    next delta comes (the model may spend seconds writing tool arguments)."""
    monkeypatch.setenv("TERM", "xterm-256color")
    master, slave = os.openpty()
    chunks: list[bytes] = []
    reader = threading.Thread(target=drain, args=(master, chunks), daemon=True)
    reader.start()
    with os.fdopen(slave, "w", encoding="utf-8") as out:
        stream = MarkdownStream(Console(file=out, force_terminal=True, width=60, height=20))
        stream.update("Let me write")
        stream.update(" the file:")  # within the frame interval: not drawn yet
        out.flush()
        await asyncio.sleep(0.3)
        out.flush()
        await asyncio.to_thread(reader.join, 0.2)
        assert "the file:" in b"".join(chunks).decode("utf-8", errors="replace")
        stream.finish()
    os.close(master)
    reader.join(timeout=5)


async def test_status_spinner_turns_while_the_model_is_quiet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While text comes the spinner stands (the text shows the answer is alive); when the
    model goes quiet, the event loop turns it."""
    monkeypatch.setenv("TERM", "xterm-256color")
    calls: list[bool] = []

    def status(chars: int, spin: bool) -> Text:
        calls.append(spin)
        return Text(f"{'/-'[len(calls) % 2] if spin else '|'} Responding {chars}")

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, force_interactive=True, width=60)
    stream = MarkdownStream(console, status=status)
    stream.update("Let me think about that")
    assert calls == [False]
    await asyncio.sleep(0.5)
    assert True in calls  # the ticker drew the status line alone
    stream.finish()
    await asyncio.sleep(0.3)
    ticks = len(calls)
    await asyncio.sleep(0.3)
    assert len(calls) == ticks  # the ticker stopped with the stream
    assert "Let me think about that" in out.getvalue()
