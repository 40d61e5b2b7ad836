"""The REPL's event renderer, diff colouring, the terminal facts and the console factory.

Recording consoles stand in for the terminal; real tool outputs (shell, edit) are rendered
so a change in their text format shows up here."""

from __future__ import annotations

import io
import os
import threading
import time
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from qwen_code.agent.events import (
    ApprovalRequested,
    AssistantMessage,
    Error,
    Event,
    TextDelta,
    TodosUpdated,
    ToolCallStarted,
    ToolResult,
    TurnEnd,
    Usage,
    UsageInfo,
)
from qwen_code.tools.base import ToolContext
from qwen_code.tools.edit import EditTool
from qwen_code.tools.shell import ShellTool
from qwen_code.ui.live_region import SYNC_BEGIN, SYNC_END
from qwen_code.ui.render import EventRenderer, Thinking, clean, diff_stats, render_diff
from qwen_code.ui.terminal import (
    ASCII_SYMBOLS,
    INTERRUPT_HINT,
    ResponseStatus,
    Terminal,
    make_console,
)
from tests.helpers import drain, recording, tool_call

DIFF = (
    "--- a/src/app.py\n+++ b/src/app.py\n@@ -1,3 +1,3 @@\n import os\n-x = 1\n+x = 2\n print(x)\n"
)


def render(events: list[Event], **kwargs: Any) -> str:
    console = recording(width=kwargs.pop("width", 80))
    renderer = EventRenderer(console, **kwargs)
    renderer.start_turn()
    for event in events:
        renderer.handle(event)
    return console.export_text()


def lines_of(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def test_text_streams_as_markdown_and_tool_calls_are_one_line() -> None:
    text = "I'll read **the file**.\n\n- one\n- two\n"
    events: list[Event] = [TextDelta(text=text[i : i + 2]) for i in range(0, len(text), 2)]
    events += [
        AssistantMessage(text=text, tool_calls=(tool_call("read_file"),)),
        ToolCallStarted(call=tool_call("read_file"), summary="src/app.py"),
        ToolResult(call=tool_call("read_file"), output="…", display="Read 120 line(s)"),
        TextDelta(text="Done."),
        AssistantMessage(text="Done."),
        TurnEnd(reason="completed"),
    ]
    assert lines_of(render(events)) == [
        "I'll read the file.",
        "",
        " • one",
        " • two",
        "",
        "● read_file src/app.py",
        "  ⎿ Read 120 line(s)",
        "",
        "Done.",
    ]


def test_every_event_type_renders(ctx: ToolContext) -> None:
    todos = ({"id": "1", "content": "Read", "status": "completed"},)
    usage = UsageInfo(prompt_tokens=1200, completion_tokens=34, cached_tokens=1000)
    events: list[Event] = [
        TextDelta(text="Hi"),
        AssistantMessage(text="Hi", finish_reason="length"),
        ToolCallStarted(call=tool_call("todo_write"), summary="1/1 done"),
        ApprovalRequested(call=tool_call("todo_write"), reason="think", decision="allowed"),
        ToolResult(call=tool_call("todo_write"), output="ok", display="[x] Read"),
        TodosUpdated(todos=todos),
        Usage(request=usage, total=usage),
        Error(message="overloaded (503)", retrying=True),
        Error(
            message="lost " + "x" * 150 + ". Retrying in 1 s. The answer starts over.",
            retrying=True,
        ),
        Error(message="bad request (400)", kind="client"),
        TurnEnd(reason="error", error="bad request (400)"),
    ]
    text = render(events, verbose=True)
    assert "cut off at the output token limit" in text
    assert "approved (think)" in text
    assert "✓ Read" in text and "[x] Read" not in text  # the checklist, not the tool display
    assert "1,200 in (1,000 cached)" in text
    assert "↻ overloaded (503) · retrying…" in text
    assert "The answer starts over." in text  # a long notice wraps, never cut short
    assert text.count("bad request (400)") == 1  # TurnEnd does not repeat the error


def test_results_of_a_batch_name_their_call() -> None:
    events: list[Event] = [
        ToolCallStarted(call=tool_call("read_file"), summary="a.py"),
        ToolCallStarted(call=tool_call("read_file", call_id="c2"), summary="b.py"),
        ToolResult(call=tool_call("read_file"), output="x", display="Read 3 line(s)"),
        ToolResult(
            call=tool_call("read_file", call_id="c2"),
            output="Error: no such file\nmore",
            is_error=True,
        ),
    ]
    assert lines_of(render(events)) == [
        "● read_file a.py",
        "● read_file b.py",
        "  ⎿ a.py: Read 3 line(s)",
        "  ⎿ b.py: Error: no such file (+1 line)",
    ]


def test_error_result_is_red() -> None:
    console = recording(terminal=True)
    renderer = EventRenderer(console)
    renderer.handle(ToolCallStarted(call=tool_call("grep_search"), summary="'x'"))
    renderer.handle(
        ToolResult(call=tool_call("grep_search"), output="Error: bad regex", is_error=True)
    )
    assert "\x1b[31mError: bad regex" in console.export_text(styles=True)


def test_denied_call_says_so_once() -> None:
    events: list[Event] = [
        ToolCallStarted(call=tool_call("write_file"), summary="x.py"),
        ApprovalRequested(
            call=tool_call("write_file"), reason="ask", decision="denied", message="not now"
        ),
        ToolResult(call=tool_call("write_file"), output="The user denied", is_error=True),
    ]
    assert lines_of(render(events)) == ["● write_file x.py", "  ⎿ Denied: not now"]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("max_turns", "Stopped after 7 model turns"),
        ("cancelled", "Interrupted."),
        ("error", "Error: connection reset"),
        ("completed", ""),
    ],
)
def test_turn_end_reasons(reason: Any, expected: str) -> None:
    text = render([TurnEnd(reason=reason, num_turns=7, error="connection reset")])
    assert expected in text if expected else text.strip() == ""


def test_non_streamed_answer_is_printed() -> None:
    assert "Hello there" in render([AssistantMessage(text="Hello **there**")])


async def test_shell_output_is_capped_to_its_tail(ctx: ToolContext) -> None:
    output = await ShellTool().run(ShellTool.Params(command="seq 1 30; exit 3"), ctx)
    text = render(
        [
            ToolCallStarted(call=tool_call("run_shell_command"), summary="seq 1 30"),
            ToolResult(
                call=tool_call("run_shell_command"),
                output=output.content,
                is_error=output.is_error,
                data=output.data,
            ),
        ]
    )
    lines = lines_of(text)
    assert lines[1] == "  ⎿ exit 3 · 30 lines"
    assert lines[2] == "    … 20 earlier lines"
    assert lines[3:] == [f"    {n}" for n in range(21, 31)]


async def test_shell_without_output(ctx: ToolContext) -> None:
    output = await ShellTool().run(ShellTool.Params(command="true"), ctx)
    result = ToolResult(
        call=tool_call("run_shell_command"), output=output.content, data=output.data
    )
    assert "⎿ exit 0 · no output" in render([result])


async def test_edit_shows_a_coloured_diff(ctx: ToolContext) -> None:
    (ctx.workspace.root / "app.py").write_text("import os\nx = 1\nprint(x)\n")
    params = EditTool.Params(file_path="app.py", old_string="x = 1", new_string="x = 2")
    output = await EditTool().run(params, ctx)
    console = recording(terminal=True)
    renderer = EventRenderer(console)
    renderer.handle(ToolCallStarted(call=tool_call("edit"), summary="app.py"))
    renderer.handle(
        ToolResult(
            call=tool_call("edit"), output=output.content, display=output.display, data=output.data
        )
    )
    styled = console.export_text(styles=True, clear=False)
    assert "\x1b[32m+x = 2" in styled and "\x1b[31m-x = 1" in styled
    plain = lines_of(console.export_text())
    assert plain[:2] == ["● edit app.py", "  ⎿ Updated · +1 -1"]
    assert "    -x = 1" in plain and "+++ b/app.py" not in plain


def test_render_diff_styles_and_cap() -> None:
    console = recording(terminal=True)
    segments = list(console.render(render_diff(DIFF)))
    styles = {seg.text.strip(): seg.style for seg in segments if seg.text.strip()}
    assert styles["+x = 2"].color.name == "green"  # type: ignore[union-attr]
    assert styles["-x = 1"].color.name == "red"  # type: ignore[union-attr]
    assert styles["@@ -1,3 +1,3 @@"].dim  # type: ignore[union-attr]
    capped = render_diff(DIFF + "".join(f"+line {i}\n" for i in range(100)), max_lines=10)
    assert capped.plain.splitlines()[-1] == "… 97 more lines"
    assert diff_stats(DIFF) == (1, 1)


def test_no_color_console_has_no_colour_codes() -> None:
    out = io.StringIO()
    console = make_console(Terminal(is_tty=True, color=False, width=80), file=out)
    console.print(render_diff(DIFF))
    EventRenderer(console).handle(Error(message="boom"))
    assert "\x1b[31m" not in out.getvalue() and "\x1b[32m" not in out.getvalue()
    assert "38;" not in out.getvalue()


def test_wide_characters_are_cropped_by_cells() -> None:
    summary = "文件" * 60
    text = render([ToolCallStarted(call=tool_call("read_file"), summary=summary)], width=40)
    line = text.splitlines()[0].rstrip()
    assert cell_len(line) <= 40 and line.endswith("…")


def test_todos_wrap_under_their_text() -> None:
    todos = ({"id": "1", "content": "修复 " * 30, "status": "in_progress"},)
    lines = lines_of(render([TodosUpdated(todos=todos)], width=40))
    assert lines[0].startswith("  ⎿ ▶ 修复")
    assert all(line.startswith("      修复") for line in lines[1:]) and len(lines) > 1
    assert all(cell_len(line) <= 40 for line in lines)


def test_ascii_symbols() -> None:
    todos = ({"id": "1", "content": "done", "status": "completed"},)
    events: list[Event] = [
        ToolCallStarted(call=tool_call("todo_write"), summary="1/1"),
        TodosUpdated(todos=todos),
    ]
    text = render(events, symbols=ASCII_SYMBOLS)
    assert text.isascii() and "* todo_write 1/1" in text and "[x] done" in text


def test_clean_strips_escapes_and_keeps_the_last_carriage_return_state() -> None:
    assert clean("\x1b[31mred\x1b[0m ok\x07") == "red ok"
    assert clean("progress 10%\rprogress 100%\nnext") == "progress 100%\nnext"
    assert clean("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == "link"


def test_terminal_detect_reads_the_environment() -> None:
    env = {"NO_COLOR": "1", "COLUMNS": "42", "LINES": "10", "LANG": "en_US.UTF-8"}
    term = Terminal.detect(stdout=io.StringIO(), stdin=io.StringIO(), environ=env)
    assert (term.is_tty, term.color, term.width, term.height, term.narrow) == (
        False,
        False,
        42,
        10,
        True,
    )
    assert Terminal.detect(stdout=io.StringIO(), environ={"LANG": "C"}).unicode is False
    assert Terminal.detect(stdout=io.StringIO(), environ={"LANG": "C"}).symbols is ASCII_SYMBOLS


def test_terminal_detect_on_a_pty() -> None:
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w", encoding="utf-8") as out:
            term = Terminal.detect(stdout=out, environ={"TERM": "xterm"})
            assert term.is_tty and term.color and term.unicode
            assert Terminal.detect(stdout=out, environ={"TERM": "dumb"}).color is False
    finally:
        os.close(master)


def test_make_console_for_a_pipe_has_no_escape_codes() -> None:
    out = io.StringIO()
    console = make_console(Terminal(is_tty=False, width=50), file=out)
    console.print(render_diff(DIFF))
    assert console.width == 50 and "\x1b[" not in out.getvalue()


def test_thinking_is_a_no_op_without_a_terminal() -> None:
    console = recording()
    with Thinking(console) as thinking:
        assert not thinking.running
    assert console.export_text() == ""


def test_thinking_on_a_pty_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    master, slave = os.openpty()
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: drain(master, chunks), daemon=True)
    reader.start()
    with os.fdopen(slave, "w", encoding="utf-8") as out:
        console = Console(file=out, force_terminal=True, width=60, height=20)
        renderer = EventRenderer(console)
        renderer.start_turn()
        assert renderer.thinking.running
        time.sleep(0.3)
        renderer.handle(TextDelta(text="Answer."))
        assert not renderer.thinking.running
        renderer.handle(AssistantMessage(text="Answer."))
        renderer.handle(TurnEnd(reason="completed"))
        out.flush()
        time.sleep(0.2)
    os.close(master)
    reader.join(timeout=5)
    raw = b"".join(chunks).decode("utf-8", errors="replace")
    assert "Thinking… " in raw and "Answer." in raw and "\x1b[2J" not in raw


def test_thinking_redraws_are_synchronized_and_leave_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("QWEN_CODE_SYNC_OUTPUT", raising=False)
    master, slave = os.openpty()
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: drain(master, chunks), daemon=True)
    reader.start()
    with os.fdopen(slave, "w", encoding="utf-8") as out:
        console = Console(file=out, force_terminal=True, force_interactive=True, width=60)
        thinking = Thinking(console, hint=INTERRUPT_HINT)
        thinking.start("Thinking")
        region = thinking._region
        assert region is not None
        thinking.label = "Running"
        thinking._draw(region)  # what the spinner's thread does 8 times a second
        thinking.stop()
        out.flush()
        time.sleep(0.2)
    os.close(master)
    reader.join(timeout=5)
    raw = b"".join(chunks).decode("utf-8", errors="replace")
    assert "Thinking… 0s · ctrl+c to interrupt" in raw and "Running" in raw
    assert raw.count(SYNC_BEGIN) == raw.count(SYNC_END) >= 1  # the relabel overwrote
    assert raw.endswith("\x1b[J\x1b[?2026l\x1b[?25h")  # erased, cursor back


def test_response_status_line() -> None:
    now = [1000.0]
    console = recording(width=80)
    status = ResponseStatus(console, started=988.0, clock=lambda: now[0])
    line = status(1200, False)
    assert line.plain == "⠋ Responding… 12s · ↓ 300 tokens · ctrl+c to interrupt"
    now[0] += 0.5
    assert status(4000, True) is not line  # the spinner turned: a new line
    assert status(4000, False).plain.endswith("↓ 300 tokens · ctrl+c to interrupt")  # same second
    now[0] += 0.5
    assert "13s · ↓ 1.0k tokens" in status(4000, False).plain
    now[0] += 60
    assert "1m 13s · ↓ 12k tokens" in status(48_000, False).plain
    narrow = ResponseStatus(recording(width=40), started=now[0], clock=lambda: now[0])
    assert narrow(4, False).plain == "⠋ Responding… 0s · ↓ 1 token"
    plain = ResponseStatus(console, started=now[0], symbols=ASCII_SYMBOLS, clock=lambda: now[0])
    assert plain(40, False).plain == "- Responding... 0s - 10 tokens - ctrl+c to interrupt"


def test_streamed_text_shows_a_status_line_on_a_terminal_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, force_interactive=True, width=80)
    renderer = EventRenderer(console)
    renderer.handle(TextDelta(text="Hello"))
    stream = renderer._stream
    assert stream is not None and isinstance(stream.status, ResponseStatus)
    renderer.handle(AssistantMessage(text="Hello"))
    assert "Responding…" in out.getvalue()
    piped = EventRenderer(recording())
    piped.handle(TextDelta(text="Hello"))
    assert piped._stream is not None and piped._stream.status is None
