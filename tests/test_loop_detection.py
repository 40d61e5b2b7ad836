"""Loop detection over real HTTP (scripted server) and real tools: warn first, then stop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from qwen_code.agent.events import Error, Event, TextDelta, ToolResult, TurnEnd
from qwen_code.agent.loop_detection import LoopDetector, find_repetition
from qwen_code.llm.types import ModelResponse, RetryNotice, StreamItem, TextChunk
from qwen_code.session.live import Session
from tests.fakeserver import FakeLLM, call, text, tool_turn
from tests.helpers import session_for

SENTENCE = "I will now fix the bug in the parser module and run the tests again. "


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text("A = 1\n", encoding="utf-8")
    (root / "b.py").write_text("B = 2\n", encoding="utf-8")
    return root


async def run(session: Session, prompt: str = "go", *, close: bool = True) -> list[Event]:
    try:
        return [event async for event in session.agent.run(prompt)]
    finally:
        if close:
            await session.aclose()


def messages(fake: FakeLLM, index: int) -> list[dict[str, Any]]:
    body = fake.chat_requests[index].body
    assert body is not None
    return body["messages"]


def tool_outputs(fake: FakeLLM, index: int) -> list[str]:
    return [m["content"] for m in messages(fake, index) if m["role"] == "tool"]


def end_of(events: list[Event]) -> TurnEnd:
    end = events[-1]
    assert isinstance(end, TurnEnd)
    return end


async def test_third_identical_call_is_warned_and_the_turn_goes_on(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    read = call("read_file", file_path="a.py")
    fake_llm.script(tool_turn(read), tool_turn(read), tool_turn(read), text("A is 1."))
    events = await run(await session_for(workspace))
    assert (end_of(events).reason, end_of(events).final_text) == ("completed", "A is 1.")
    outputs = tool_outputs(fake_llm, 3)
    assert len(outputs) == 3
    assert all("Loop warning" not in output for output in outputs[:2])
    warning = outputs[2]
    assert warning.startswith(outputs[0])  # the real result comes first
    assert 'read_file with {"file_path": "a.py"}) 3 times in a row' in warning
    assert "the result was the same each time" in warning
    assert "A = 1" in warning.split("Loop warning")[1]
    assert "2 more identical calls will stop the turn" in warning
    results = [e for e in events if isinstance(e, ToolResult)]
    assert results[-1].output == warning  # front ends see what the model sees


async def test_repeating_after_the_warning_ends_the_turn(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    count = workspace / "count.txt"
    shell = call("run_shell_command", command=f"echo x >> {count}; echo ran")
    fake_llm.script(*[tool_turn(shell) for _ in range(5)], text("fine"))
    session = await session_for(workspace, approval_mode="yolo")
    events = await run(session, close=False)
    end = end_of(events)
    assert end.reason == "error"
    assert end.error is not None
    assert end.error.startswith("Stopped: the model kept repeating the same tool call")
    assert "run_shell_command" in end.error
    assert "5 times in a row" in end.error
    assert end.num_turns == 5
    (error,) = [e for e in events if isinstance(e, Error)]
    assert (error.kind, error.retrying) == ("loop", False)
    assert count.read_text() == "x\n" * 4  # the fifth call was not run
    assert len(fake_llm.chat_requests) == 5
    assert "One more identical call will stop the turn" in tool_outputs(fake_llm, 4)[-1]
    last = [e for e in events if isinstance(e, ToolResult)][-1]
    assert last.is_error
    assert last.output.startswith("Not run")
    # The history stays valid: the next message works and starts afresh.
    more = await run(session, "and now?")
    assert end_of(more).final_text == "fine"
    roles = [m["role"] for m in messages(fake_llm, 5)]
    assert roles[-3:] == ["assistant", "tool", "user"]
    assert messages(fake_llm, 5)[-2]["content"].startswith("Not run")


async def test_identical_calls_with_edits_between_are_no_loop(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    check = call("run_shell_command", command="cat a.py")
    fake_llm.script(
        tool_turn(check),
        tool_turn(call("edit", file_path="a.py", old_string="A = 1", new_string="A = 2")),
        tool_turn(check),
        tool_turn(call("edit", file_path="a.py", old_string="A = 2", new_string="A = 3")),
        tool_turn(check),
        tool_turn(call("read_file", file_path="a.py")),
        tool_turn(call("read_file", file_path="a.py")),
        text("A is 3 now."),
    )
    events = await run(await session_for(workspace, approval_mode="yolo"))
    assert end_of(events).reason == "completed"
    assert not any("Loop warning" in output for output in tool_outputs(fake_llm, 7))
    assert (workspace / "a.py").read_text() == "A = 3\n"


async def test_a_changing_result_is_reported_as_such(workspace: Path, fake_llm: FakeLLM) -> None:
    poll = call("run_shell_command", command="echo x >> log; wc -l < log")
    fake_llm.script(*[tool_turn(poll) for _ in range(3)], text("done"))
    await run(await session_for(workspace, approval_mode="yolo"))
    warning = tool_outputs(fake_llm, 3)[-1]
    assert "the result changed between calls" in warning
    assert "sleep 10" in warning


async def test_a_repeated_batch_of_calls_is_a_loop(workspace: Path, fake_llm: FakeLLM) -> None:
    batch = [call("read_file", file_path="a.py"), call("read_file", file_path="b.py")]
    fake_llm.script(*[tool_turn(*batch) for _ in range(3)], text("ok"))
    await run(await session_for(workspace))
    outputs = tool_outputs(fake_llm, 3)
    assert "Loop warning" not in outputs[-2]  # the note goes to the batch's last result
    assert "Loop warning" in outputs[-1]
    assert "read_file with" in outputs[-1]
    assert "b.py" in outputs[-1]


async def test_repeated_text_is_cut_and_the_model_is_told(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(text("Let me see. " + SENTENCE * 12), text("Fixed it."))
    events = await run(await session_for(workspace))
    end = end_of(events)
    assert (end.reason, end.final_text) == ("completed", "Fixed it.")
    notice = [e for e in events if isinstance(e, Error)]
    assert [(e.kind, e.retrying) for e in notice] == [("loop", True)]
    sent = messages(fake_llm, 1)
    assert sent[-2]["role"] == "assistant"
    assert sent[-2]["content"].count(SENTENCE.strip()) == 1
    assert "repeated" in sent[-2]["content"]
    assert sent[-1]["role"] == "user"
    assert sent[-1]["content"].startswith("[Loop warning] Your last reply repeated the same text")
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert streamed.count(SENTENCE.strip()) == 12  # what streamed was shown as it came


async def test_text_repeated_again_after_the_warning_ends_the_turn(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(text(SENTENCE * 12), text("Again: " + SENTENCE * 15), text("never"))
    events = await run(await session_for(workspace))
    end = end_of(events)
    assert end.reason == "error"
    assert end.error is not None
    assert end.error.startswith("Stopped: the model kept repeating the same text")
    assert len(fake_llm.chat_requests) == 2
    assert end.num_turns == 2
    assert end.final_text.startswith("Again: ")  # the stopped reply, its repetition cut
    assert end.final_text.endswith("more times; removed.]")


async def test_text_loop_with_tool_calls_notes_the_last_result(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        tool_turn(call("read_file", file_path="a.py"), text=SENTENCE * 12), text("done")
    )
    await run(await session_for(workspace))
    (output,) = tool_outputs(fake_llm, 1)
    assert output.index("A = 1") < output.index("[Loop warning] Your last reply repeated")


async def test_skip_loop_detection_setting(workspace: Path, fake_llm: FakeLLM) -> None:
    settings = workspace / ".qwen" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"model": {"skipLoopDetection": True}}))
    read = call("read_file", file_path="a.py")
    fake_llm.script(*[tool_turn(read) for _ in range(6)], text(SENTENCE * 12))
    session = await session_for(workspace)
    assert session.agent.loops.enabled is False
    events = await run(session)
    assert end_of(events).reason == "completed"
    assert len(fake_llm.chat_requests) == 7
    assert not any("Loop warning" in output for output in tool_outputs(fake_llm, 6))


async def test_a_new_prompt_starts_the_count_afresh(workspace: Path, fake_llm: FakeLLM) -> None:
    read = call("read_file", file_path="a.py")
    fake_llm.script(tool_turn(read), tool_turn(read), text("one"), tool_turn(read), text("two"))
    session = await session_for(workspace)
    await run(session, "first", close=False)
    events = await run(session, "second")
    assert end_of(events).final_text == "two"
    assert not any("Loop warning" in output for output in tool_outputs(fake_llm, 4))


class RestartingModel:
    """Streams text, restarts the response (RetryNotice restart=True), then hangs."""

    def __init__(self) -> None:
        self.fresh = asyncio.Event()

    async def stream_chat(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> AsyncIterator[StreamItem]:
        yield TextChunk(text="stale words ")
        yield RetryNotice(message="dropped", attempt=1, delay_s=0, kind="network", restart=True)
        yield TextChunk(text="fresh words")
        self.fresh.set()
        await asyncio.sleep(60)
        yield ModelResponse(text="unreachable")  # pragma: no cover


async def test_a_restarted_response_drops_the_failed_attempts_text(workspace: Path) -> None:
    session = await session_for(workspace)
    client, model = session.agent.model, RestartingModel()
    session.agent.model = model
    events: list[Event] = []

    async def consume() -> None:
        async for event in session.agent.run("hi"):
            events.append(event)

    task = asyncio.create_task(consume())
    await asyncio.wait_for(model.fresh.wait(), 5)
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    session.agent.model = client  # the session closes its own client
    await session.aclose()
    assert any(isinstance(e, Error) and e.retrying for e in events)
    last = session.agent.conversation.messages[-1]
    assert last["role"] == "assistant"
    assert last["content"].startswith("fresh words")
    assert "stale" not in last["content"]


@pytest.mark.parametrize(
    "content",
    [
        "\n".join(
            f"- Updated /home/user/project/src/components/deep/path/file{i}.tsx" for i in range(30)
        ),
        "```\n" + "    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],\n" * 20 + "```\n",
        "=" * 2000,
        "ha" * 100,
        "".join(
            f"Step {i}: run the migration script and check the logs again. " for i in range(30)
        ),
        SENTENCE * 9,
    ],
)
def test_legitimate_text_is_no_loop(content: str) -> None:
    assert find_repetition(content) is None


def test_repeated_text_is_found() -> None:
    start, period, count = find_repetition("Intro. " + SENTENCE * 12 + "end") or (0, 0, 0)
    assert (start, period) == (len("Intro. "), len(SENTENCE))
    assert count >= 11
    assert find_repetition("na " * 200) is not None  # a short unit over 500 characters
    loop = LoopDetector().check_text("x " + SENTENCE * 20)
    assert loop is not None
    assert loop.count >= 19
    assert loop.kept.count(SENTENCE.strip()) == 1
    assert loop.stop is None
    assert LoopDetector(enabled=False).check_text(SENTENCE * 20) is None
