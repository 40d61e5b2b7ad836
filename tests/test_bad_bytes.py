"""Text UTF-8 cannot encode: a lone surrogate from the model, a file name that is not UTF-8.

Either used to crash the run at the session save (`UnicodeEncodeError`), losing the answer.
Now model text gets U+FFFD as it arrives, file names show their bad bytes as `\\xe9`, and
what is shown, sent back to the server and saved is the same text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwen_code.config import qwen_home
from qwen_code.llm.attempt import Attempt
from qwen_code.llm.stream import StreamAccumulator
from qwen_code.session.store import SessionWriter, list_sessions, load
from qwen_code.tools.base import ToolContext
from qwen_code.tools.glob import GlobTool
from qwen_code.tools.grep import GrepTool
from qwen_code.tools.ls import ListDirectoryTool
from tests.fakeserver import FakeLLM, Turn, call, text, tool_turn

BAD_NAME = b"caf\xe9.txt"
"""Latin-1 bytes: not UTF-8. Python lists it as 'caf\\udce9.txt' (surrogateescape)."""
SHOWN = "caf\\xe9.txt"
BACKENDS = [pytest.param(True, id="ripgrep"), pytest.param(False, id="python")]


def bad_file(folder: Path, content: bytes = b"needle\n") -> None:
    try:
        fd = os.open(os.fsencode(folder) + b"/" + BAD_NAME, os.O_CREAT | os.O_WRONLY, 0o644)
    except OSError:
        pytest.skip("this file system only takes UTF-8 names")
    os.write(fd, content)
    os.close(fd)


def surrogate_line(content: str) -> str:
    """An SSE event whose content carries JSON `\\uXXXX` escapes as written (no re-escaping:
    the fake server's own json.dumps could not encode a lone surrogate)."""
    delta = json.dumps({"content": content}, ensure_ascii=True)
    return f'data: {{"choices": [{{"index": 0, "delta": {delta}, "finish_reason": null}}]}}'


def run(cwd: Path, *args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "qwen_code", *args],
        cwd=cwd,
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def saved_messages(root: Path) -> list[dict[str, object]]:
    (info,) = list_sessions(qwen_home(), root)
    info.path.read_bytes().decode("utf-8")  # the whole file is valid UTF-8
    return load(info.path).messages


# --- the model sends a lone surrogate -------------------------------------------------------


def test_a_lone_surrogate_from_the_model_is_shown_sent_and_saved_as_u_fffd(
    root: Path, fake_llm: FakeLLM
) -> None:
    """Before: UnicodeEncodeError at the session save, exit 1, the answer lost."""
    line = surrogate_line("hello \ud800")
    fake_llm.script(Turn(text="", malformed_after=1, malformed_line=line), text("Next."))
    first = run(root, "-p", "hi", "-o", "json")
    assert first.returncode == 0, first.stderr.decode()
    assert json.loads(first.stdout)["result"] == "hello \ufffd"
    assert saved_messages(root)[-1] == {"role": "assistant", "content": "hello \ufffd"}

    again = run(root, "-c", "-p", "and?")
    assert again.returncode == 0, again.stderr.decode()
    body = fake_llm.chat_requests[-1].body
    assert body is not None
    assert body["messages"][-2] == {"role": "assistant", "content": "hello \ufffd"}


def test_a_surrogate_pair_split_between_chunks_is_joined_and_a_lone_half_replaced() -> None:
    """A proxy that cuts text by UTF-16 code units splits a pair between two chunks."""
    acc = StreamAccumulator()
    shown = [
        acc.add({"choices": [{"delta": {"content": piece}}]})
        for piece in ("smile \ud83d", "\ude00 ok \udfff", " end \udbff")
    ]
    assert shown == ["smile ", "\U0001f600 ok \ufffd", " end "]
    assert acc.text == "smile \U0001f600 ok \ufffd end \ufffd"
    assert acc.flush() == "\ufffd"
    assert acc.text == "smile \U0001f600 ok \ufffd end \ufffd"


def test_a_trailing_lone_high_surrogate_reaches_the_final_text() -> None:
    attempt = Attempt()
    assert attempt.feed({"choices": [{"delta": {"content": "hello \ud800"}}]}) == "hello "
    assert attempt.end_text(None) == "\ufffd"
    assert attempt.response().text == "hello \ufffd"


def test_surrogates_in_tool_call_names_and_arguments_are_replaced() -> None:
    acc = StreamAccumulator()
    deltas = [
        {"index": 0, "id": "c1", "function": {"name": "read_file", "arguments": '{"file_path"'}},
        {"index": 0, "function": {"arguments": ': "a\ud800.py"}'}},
    ]
    for delta in deltas:
        acc.add({"choices": [{"delta": {"tool_calls": [delta]}}]})
    (tool_call,) = acc.tool_calls()
    assert tool_call.arguments == {"file_path": "a\ufffd.py"}
    assert tool_call.raw_arguments.encode("utf-8")


# --- file names that are not UTF-8 ----------------------------------------------------------


async def test_list_directory_shows_undecodable_bytes_as_escapes(
    root: Path, ctx: ToolContext
) -> None:
    bad_file(root)
    tool = ListDirectoryTool()
    out = await tool.run(tool.Params(), ctx)
    assert out.content.splitlines()[1:] == [SHOWN]
    assert out.data == {"directories": [], "files": [SHOWN]}
    out.content.encode("utf-8")


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
async def test_glob_shows_undecodable_bytes_as_escapes(
    root: Path, ctx: ToolContext, use_ripgrep: bool
) -> None:
    bad_file(root)
    tool = GlobTool(use_ripgrep=use_ripgrep)
    out = await tool.run(tool.Params(pattern="*.txt"), ctx)
    assert out.content.splitlines()[1:] == [f"{root}/{SHOWN}"]
    out.content.encode("utf-8")


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
async def test_grep_shows_undecodable_bytes_as_escapes(
    root: Path, ctx: ToolContext, use_ripgrep: bool
) -> None:
    """ripgrep reports such a path as base64 bytes; both backends show it alike."""
    bad_file(root)
    tool = GrepTool(use_ripgrep=use_ripgrep)
    out = await tool.run(tool.Params(pattern="needle"), ctx)
    assert f"File: {SHOWN}" in out.content.splitlines()
    out.content.encode("utf-8")


@pytest.mark.parametrize("tool", ["list_directory", "glob"])
def test_a_run_that_lists_a_non_utf8_name_finishes_and_is_saved(
    root: Path, fake_llm: FakeLLM, tool: str
) -> None:
    """Before: UnicodeEncodeError at the session save, exit 1, the answer lost."""
    bad_file(root)
    args = {"path": "."} if tool == "list_directory" else {"pattern": "*.txt"}
    fake_llm.script(tool_turn(call(tool, **args)), text("One odd name."), text("Still there."))
    first = run(root, "-p", "list the files", "-o", "json")
    assert first.returncode == 0, first.stderr.decode()
    assert json.loads(first.stdout)["result"] == "One odd name."
    sent = fake_llm.chat_requests[-1].body
    assert sent is not None
    result = sent["messages"][-1]
    assert result["role"] == "tool" and SHOWN in result["content"]
    saved = saved_messages(root)
    assert [m["role"] for m in saved] == ["user", "assistant", "tool", "assistant"]
    assert saved[2]["content"] == result["content"]  # saved exactly as sent

    again = run(root, "-c", "-p", "again?")
    assert again.returncode == 0, again.stderr.decode()
    resent = fake_llm.chat_requests[-1].body
    assert resent is not None
    assert resent["messages"][3] == result


def test_a_prompt_that_is_not_utf8_is_sent_and_saved_with_u_fffd(
    root: Path, fake_llm: FakeLLM
) -> None:
    """Arguments come in as surrogates too; the request must not fail on every retry."""
    fake_llm.script(text("ok"))
    done = run(root, b"-p", b"caf\xe9?")
    assert done.returncode == 0, done.stderr.decode()
    body = fake_llm.chat_requests[-1].body
    assert body is not None
    assert body["messages"][-1] == {"role": "user", "content": "caf\ufffd?"}
    assert saved_messages(root)[0] == {"role": "user", "content": "caf\ufffd?"}


# --- the session writer's safety net -------------------------------------------------------


def test_the_writer_saves_any_string_and_never_writes_a_record_twice(tmp_path: Path) -> None:
    """Before: the bad record raised and the next sync appended the good one again."""
    path = tmp_path / "s.jsonl"
    writer = SessionWriter(path, session_id="s", cwd=tmp_path, model="m")
    history = [
        {"role": "user", "content": "ok"},
        {"role": "assistant", "content": "bad \ud800 \udce9", "n\udfff": ["\udc80"]},
    ]
    writer.sync(history)
    writer.sync(history)
    writer.sync([*history, {"role": "user", "content": "next"}])
    writer.close()
    lines = path.read_bytes().decode("utf-8").splitlines()
    assert len(lines) == 1 + 3
    assert load(path).messages == [
        {"role": "user", "content": "ok"},
        {"role": "assistant", "content": "bad \ufffd \ufffd", "n\ufffd": ["\ufffd"]},
        {"role": "user", "content": "next"},
    ]
