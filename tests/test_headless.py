"""Headless front end pieces: stdin handling, printers, partial messages."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from qwen_code.config import Flags, load_settings, qwen_home, resolve_provider
from qwen_code.ui.headless import compose_prompt, read_piped_stdin, run_headless
from tests.fakeserver import FakeLLM, call, text, tool_turn
from tests.helpers import TTYStringIO


def test_compose_prompt(tmp_path: Path) -> None:
    assert compose_prompt("review", "diff\n", cwd=tmp_path, home=tmp_path) == "diff\n\nreview"
    assert compose_prompt(None, "just stdin\n", cwd=tmp_path, home=tmp_path) == "just stdin"
    assert compose_prompt("just prompt", "", cwd=tmp_path, home=tmp_path) == "just prompt"
    assert compose_prompt("", "", cwd=tmp_path, home=tmp_path) == ""


def test_read_piped_stdin_caps_and_reports_truncation() -> None:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"x" * 100)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as stream:
        data, truncated = read_piped_stdin(stream, cap=40)
    assert (data, truncated) == ("x" * 40, True)


def test_read_piped_stdin_reads_a_text_stream_without_bytes_underneath() -> None:
    assert read_piped_stdin(io.StringIO("é" * 30), cap=40) == ("é" * 20, True)
    assert read_piped_stdin(io.StringIO("short\n")) == ("short\n", False)


def test_read_piped_stdin_gives_up_on_a_silent_pipe() -> None:
    read_fd, write_fd = os.pipe()
    try:
        with os.fdopen(read_fd, "rb") as stream:
            assert read_piped_stdin(stream, wait_s=0.05) == ("", False)
    finally:
        os.close(write_fd)


async def headless(
    workspace: Path, output_format: str, *, partial: bool = False, err: io.StringIO | None = None
) -> tuple[int, str, str]:
    settings = load_settings(Flags(yolo=True), cwd=workspace)
    out, err = io.StringIO(), err or io.StringIO()
    code = await run_headless(
        settings,
        resolve_provider(settings),
        "go",
        output_format=output_format,
        partial=partial,
        cwd=workspace,
        out=out,
        err=err,
        home=qwen_home(),
    )
    return code, out.getvalue(), err.getvalue()


async def test_text_progress_goes_to_a_tty_stderr_only(tmp_path: Path, fake_llm: FakeLLM) -> None:
    (tmp_path / "a.py").write_text("A = 1\n")
    fake_llm.script(tool_turn(call("read_file", file_path="a.py")), text("A is 1."))
    code, out, err = await headless(tmp_path, "text", err=TTYStringIO())
    assert code == 0
    assert out == "A is 1.\n"
    assert "read_file a.py" in err

    fake_llm.script(tool_turn(call("read_file", file_path="a.py")), text("A is 1."))
    code, out, err = await headless(tmp_path, "text")
    assert (code, out, err) == (0, "A is 1.\n", "")


async def test_stream_json_partial_messages(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("one two three four five six"))
    code, out, _ = await headless(tmp_path, "stream-json", partial=True)
    assert code == 0
    messages = [json.loads(line) for line in out.splitlines()]
    events = [m["event"]["type"] for m in messages if m["type"] == "stream_event"]
    assert events[:2] == ["message_start", "content_block_start"]
    assert events[-2:] == ["content_block_stop", "message_stop"]
    deltas = [
        m["event"]["delta"]["text"]
        for m in messages
        if m["type"] == "stream_event" and m["event"]["type"] == "content_block_delta"
    ]
    assert "".join(deltas) == "one two three four five six"
    assert [m["type"] for m in messages if m["type"] != "stream_event"] == [
        "system",
        "assistant",
        "result",
    ]
