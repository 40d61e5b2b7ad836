"""The agent loop over real HTTP (scripted server), real tools and real files."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from qwen_code.agent.approval import ApprovalAnswer, ApprovalRequest
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
)
from qwen_code.errors import ConfigError
from qwen_code.session.live import Session
from tests.fakeserver import FakeLLM, HTTPError, call, error_body, text, tool_turn
from tests.helpers import session_for


class ScriptedApprover:
    """Answers approval requests from a list, recording what was asked."""

    def __init__(self, *answers: ApprovalAnswer) -> None:
        self.answers = list(answers)
        self.asked: list[ApprovalRequest] = []

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        self.asked.append(request)
        return self.answers.pop(0)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text("A = 1\n", encoding="utf-8")
    (root / "b.py").write_text("B = 2\n", encoding="utf-8")
    return root


async def run(session: Session, prompt: str) -> list[Event]:
    try:
        return [event async for event in session.agent.run(prompt)]
    finally:
        await session.aclose()


def tool_messages(fake: FakeLLM, request_index: int) -> list[dict[str, Any]]:
    body = fake.chat_requests[request_index].body
    assert body is not None
    return [m for m in body["messages"] if m["role"] == "tool"]


async def test_plain_answer_event_order(workspace: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("Hello there, how can I help?"))
    events = await run(await session_for(workspace), "hi")
    kinds = [type(e) for e in events]
    assert kinds[-3:] == [AssistantMessage, Usage, TurnEnd]
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1
    assert "".join(d.text for d in deltas) == "Hello there, how can I help?"
    end = events[-1]
    assert isinstance(end, TurnEnd)
    assert (end.reason, end.final_text, end.num_turns) == (
        "completed",
        "Hello there, how can I help?",
        1,
    )


async def test_unknown_tool_and_bad_arguments_go_back_to_the_model(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        tool_turn(call("read_files", file_path="a.py"), call("read_file", path="a.py")),
        tool_turn(call("read_file", '{"file_path": "a.py",')),
        text("done"),
    )
    events = await run(await session_for(workspace), "go")
    assert isinstance(events[-1], TurnEnd)
    assert events[-1].reason == "completed"
    first, second = tool_messages(fake_llm, 1)
    assert "Unknown tool 'read_files'" in first["content"]
    assert "read_file" in first["content"]
    assert "Invalid arguments for read_file" in second["content"]
    assert "file_path" in second["content"]
    (third,) = tool_messages(fake_llm, 2)[2:]
    assert "not a valid JSON object" in third["content"]
    body = fake_llm.chat_requests[2].body
    assert body is not None
    replayed = body["messages"][-2]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(replayed) == {}  # always valid JSON when replayed


async def test_tool_error_is_a_result_not_a_crash(workspace: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(tool_turn(call("read_file", file_path="missing.py")), text("no such file"))
    events = await run(await session_for(workspace), "read it")
    results = [e for e in events if isinstance(e, ToolResult)]
    assert len(results) == 1
    assert results[0].is_error
    assert events[-1].reason == "completed"  # type: ignore[union-attr]


async def test_parallel_reads_keep_order(workspace: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        tool_turn(call("read_file", file_path="a.py"), call("read_file", file_path="b.py")),
        text("A is 1 and B is 2"),
    )
    events = await run(await session_for(workspace), "read both")
    tool_events = [e for e in events if isinstance(e, ToolCallStarted | ToolResult)]
    assert [type(e) for e in tool_events] == [
        ToolCallStarted,
        ToolCallStarted,
        ToolResult,
        ToolResult,
    ]
    contents = [m["content"] for m in tool_messages(fake_llm, 1)]
    assert "A = 1" in contents[0]
    assert "B = 2" in contents[1]


async def test_approved_edit_runs_and_denied_edit_does_not(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        tool_turn(call("edit", file_path="a.py", old_string="A = 1", new_string="A = 10")),
        tool_turn(call("edit", file_path="b.py", old_string="B = 2", new_string="B = 20")),
        text("done"),
    )
    approver = ScriptedApprover(
        ApprovalAnswer(approved=True),
        ApprovalAnswer(approved=False, message="Leave b.py alone."),
    )
    events = await run(await session_for(workspace, approver), "edit")
    assert [r.call.name for r in approver.asked] == ["edit", "edit"]
    assert (workspace / "a.py").read_text() == "A = 10\n"
    assert (workspace / "b.py").read_text() == "B = 2\n"
    decisions = [e.decision for e in events if isinstance(e, ApprovalRequested)]
    assert decisions == ["allowed", "denied"]
    assert tool_messages(fake_llm, 2)[-1]["content"] == "Leave b.py alone."


async def test_plan_mode_refuses_edits_without_asking(workspace: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        tool_turn(call("write_file", file_path="new.py", content="x")),
        text("Here is the plan."),
    )
    approver = ScriptedApprover()
    events = await run(await session_for(workspace, approver, approval_mode="plan"), "plan it")
    assert approver.asked == []
    assert not (workspace / "new.py").exists()
    assert "Plan mode" in tool_messages(fake_llm, 1)[0]["content"]
    assert events[-1].reason == "completed"  # type: ignore[union-attr]


async def test_auto_edit_allows_edits_but_asks_for_shell(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        tool_turn(call("write_file", file_path="new.py", content="x = 1\n")),
        tool_turn(call("run_shell_command", command="touch made-by-shell")),
        text("ok"),
    )
    approver = ScriptedApprover(ApprovalAnswer(approved=False))
    await run(await session_for(workspace, approver, approval_mode="auto-edit"), "go")
    assert (workspace / "new.py").read_text() == "x = 1\n"
    assert [r.call.name for r in approver.asked] == ["run_shell_command"]
    assert not (workspace / "made-by-shell").exists()


async def test_allowed_tools_rule_skips_approval(workspace: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(tool_turn(call("run_shell_command", command="echo hi")), text("ok"))
    approver = ScriptedApprover()
    await run(
        await session_for(workspace, approver, allowed_tools=["run_shell_command(echo)"]), "go"
    )
    assert approver.asked == []
    assert "hi" in tool_messages(fake_llm, 1)[0]["content"]


async def test_max_turns(workspace: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(*[tool_turn(call("read_file", file_path="a.py")) for _ in range(3)])
    events = await run(await session_for(workspace, max_session_turns=2), "loop")
    end = events[-1]
    assert isinstance(end, TurnEnd)
    assert (end.reason, end.num_turns) == ("max_turns", 2)
    assert len(fake_llm.chat_requests) == 2


async def test_model_error_ends_the_turn(workspace: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(HTTPError(400, error_body("messages: bad role", 400)))
    events = await run(await session_for(workspace), "hi")
    assert isinstance(events[-2], Error)
    assert "bad role" in events[-2].message
    end = events[-1]
    assert isinstance(end, TurnEnd)
    assert end.reason == "error"


async def test_a_model_error_keeps_the_last_text_and_a_valid_history(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        tool_turn(call("read_file", file_path="a.py"), text="Let me look."),
        HTTPError(400, error_body("messages: bad role", 400)),
        text("again"),
    )
    session = await session_for(workspace)
    events = [e async for e in session.agent.run("hi")]
    end = events[-1]
    assert isinstance(end, TurnEnd)
    assert (end.reason, end.final_text, end.num_turns) == ("error", "Let me look.", 2)
    assert end.error is not None and "bad role" in end.error
    more = await run(session, "again?")
    assert more[-1].final_text == "again"  # type: ignore[union-attr]
    body = fake_llm.chat_requests[2].body
    assert body is not None
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "user"]


STALLING_REPLY = "Reading the files first, then fixing."


def streamed_text(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def assert_interrupted_with(session: Session, partial: str) -> None:
    """The request's partial text is in the history, marked as interrupted."""
    assert partial.strip()
    last = session.agent.conversation.messages[-1]
    assert last["role"] == "assistant"
    assert last["content"] == f"{partial.rstrip()}\n\n[The reply was interrupted.]"


async def test_a_cancelled_request_keeps_its_partial_text(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        text(STALLING_REPLY, chunk_words=1, stall_after=4, stall_s=30), text("next answer")
    )
    session = await session_for(workspace)
    events: list[Event] = []
    some_text = asyncio.Event()

    async def consume() -> None:
        async for event in session.agent.run("fix it"):
            events.append(event)
            if len(streamed_text(events).split()) >= 2:
                some_text.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(some_text.wait(), 10)
    task.cancel()  # while the stream stalls
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_interrupted_with(session, streamed_text(events))
    more = await run(session, "go on")
    assert more[-1].final_text == "next answer"  # type: ignore[union-attr]
    body = fake_llm.chat_requests[1].body
    assert body is not None
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]


async def test_closing_the_event_stream_keeps_the_partial_text(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(text(STALLING_REPLY, chunk_words=1, stall_after=4, stall_s=30))
    session = await session_for(workspace)
    stream = session.agent.run("fix it")
    events: list[Event] = []
    try:
        async for event in stream:
            events.append(event)
            if len(streamed_text(events).split()) >= 2:
                break
        await stream.aclose()  # a consumer that stops listening
        assert_interrupted_with(session, streamed_text(events))
    finally:
        await session.aclose()


async def test_todo_write_emits_the_list(workspace: Path, fake_llm: FakeLLM) -> None:
    todos = [{"id": "1", "content": "Fix add()", "status": "in_progress"}]
    fake_llm.script(tool_turn(call("todo_write", todos=todos)), text("ok"))
    events = await run(await session_for(workspace), "plan")
    (update,) = [e for e in events if isinstance(e, TodosUpdated)]
    assert update.todos[0]["content"] == "Fix add()"


async def test_cancelling_a_turn_kills_the_command_and_keeps_history_valid(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    marker = workspace / "started"
    fake_llm.script(
        tool_turn(call("run_shell_command", command=f"touch {marker}; exec sleep 30")),
        text("next answer"),
    )
    session = await session_for(workspace, approval_mode="yolo")
    events: list[Event] = []

    async def consume() -> None:
        async for event in session.agent.run("start"):
            events.append(event)

    task = asyncio.create_task(consume())
    for _ in range(200):
        if marker.exists():
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert session.agent.conversation.pending_tool_calls() == []
    # The conversation stays valid: the next message works.
    more = [e async for e in session.agent.run("and now?")]
    await session.aclose()
    assert more[-1].final_text == "next answer"  # type: ignore[union-attr]
    body = fake_llm.chat_requests[1].body
    assert body is not None
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "user"]
    assert "cancelled" in body["messages"][3]["content"]


async def test_model_is_asked_from_the_server_when_unset(
    workspace: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_MODEL")
    fake_llm.models = ["Qwen/Qwen3-Coder-30B-A3B-Instruct"]
    fake_llm.script(text("hi"))
    session = await session_for(workspace)
    assert session.model == "Qwen/Qwen3-Coder-30B-A3B-Instruct"
    await run(session, "hi")
    body = fake_llm.chat_requests[0].body
    assert body is not None
    assert body["model"] == "Qwen/Qwen3-Coder-30B-A3B-Instruct"
    assert body["top_k"] == 20  # Qwen3-Coder sampling defaults


async def test_several_served_models_and_none_chosen_is_a_clear_error(
    workspace: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_MODEL")
    fake_llm.models = ["a-model", "b-model"]
    with pytest.raises(ConfigError) as info:
        await session_for(workspace)
    assert "a-model, b-model" in str(info.value)
    assert "OPENAI_MODEL" in str(info.value)


async def test_unknown_model_lists_the_served_ones(workspace: Path, fake_llm: FakeLLM) -> None:
    fake_llm.models = ["qwen3-coder-flash"]
    fake_llm.script(HTTPError(404, error_body("The model `qwen3-coder-plus` does not exist", 404)))
    events = await run(await session_for(workspace), "hi")
    error = events[-2]
    assert isinstance(error, Error)
    assert "qwen3-coder-flash" in error.message


async def test_include_directories_extend_the_workspace(
    workspace: Path, tmp_path: Path, fake_llm: FakeLLM
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "util.py").write_text("U = 3\n")
    (tmp_path / "secret.txt").write_text("no")
    fake_llm.script(
        tool_turn(
            call("read_file", file_path=str(lib / "util.py")),
            call("read_file", file_path=str(tmp_path / "secret.txt")),
        ),
        text("ok"),
    )
    await run(await session_for(workspace, include_directories=[str(lib)]), "read")
    allowed, refused = tool_messages(fake_llm, 1)
    assert "U = 3" in allowed["content"]
    assert "outside the workspace" in refused["content"]
    system = fake_llm.chat_requests[0].body["messages"][0]["content"]  # type: ignore[index]
    assert str(lib) in system


async def test_tool_descriptions_are_templates_a_project_can_override(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    override = workspace / ".qwen" / "prompts" / "tools" / "grep_search.md"
    override.parent.mkdir(parents=True)
    override.write_text("Search the monorepo; prefer narrow globs.\n")
    fake_llm.script(text("ok"))
    await run(await session_for(workspace), "hi")
    body = fake_llm.chat_requests[0].body
    assert body is not None
    descriptions = {t["function"]["name"]: t["function"]["description"] for t in body["tools"]}
    assert descriptions["grep_search"] == "Search the monorepo; prefer narrow globs."
    assert descriptions["read_file"].startswith("Read a text file")
