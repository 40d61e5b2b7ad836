"""The running session as one owner: collaborators derived from the agent, observers told
about every turn, event and change, `Conversation.reset` for /clear, and a subagent built
in a few lines on the same client and tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qwen_code.agent.approval import HeadlessApprover
from qwen_code.agent.conversation import Conversation
from qwen_code.agent.events import Event, ToolCall, ToolResult, TurnEnd
from qwen_code.config import Flags, load_settings, resolve_provider
from qwen_code.session.live import Session, SessionObserver
from qwen_code.session.persistence import Persistence
from qwen_code.session.setup import open_session
from qwen_code.session.store import list_sessions
from qwen_code.subagents.definitions import SubagentDef
from qwen_code.tools.base import ToolKind
from tests.fakeserver import FakeLLM, call, text, tool_turn

pytestmark = pytest.mark.usefixtures("fake_llm")


class Recorder(SessionObserver):
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    async def on_turn_start(self, session: Session, prompt: str) -> None:
        self.log.append(f"{self.name} start {prompt}")

    async def on_event(self, session: Session, event: Event) -> None:
        if isinstance(event, ToolResult | TurnEnd):
            self.log.append(f"{self.name} {type(event).__name__}")

    async def before_change(self, session: Session, call: ToolCall, kind: ToolKind) -> None:
        self.log.append(f"{self.name} before {call.name} {kind}")

    async def on_turn_end(self, session: Session) -> None:
        self.log.append(f"{self.name} end")

    async def on_conversation_replaced(self, session: Session) -> None:
        self.log.append(f"{self.name} replaced")

    async def on_cleared(self, session: Session) -> None:
        self.log.append(f"{self.name} cleared")

    async def on_close(self, session: Session) -> None:
        self.log.append(f"{self.name} close")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    (path / "a.py").write_text("A = 1\n", encoding="utf-8")
    return path


async def session_in(root: Path, home: Path, **kwargs: Any) -> Session:
    settings = load_settings(Flags(yolo=True), cwd=root)
    return await open_session(
        settings,
        resolve_provider(settings),
        cwd=root,
        home=home,
        approver=HeadlessApprover("yolo"),
        **kwargs,
    )


async def test_collaborators_are_the_agents_own(root: Path, tmp_path: Path) -> None:
    session = await session_in(root, tmp_path / "home", observers=[])
    try:
        assert session.client is session.agent.model
        assert session.registry is session.agent.tools.registry
        assert session.tool_ctx is session.agent.tools.ctx
        assert session.cwd == root
        session.switch_model("qwen3-coder-480b-a35b-instruct")
        assert session.model == "qwen3-coder-480b-a35b-instruct"
        assert session.client.config.model == session.model
        assert session.context_window == session.agent.budget.window
    finally:
        await session.aclose()


async def test_the_approver_is_the_one_given(root: Path, tmp_path: Path) -> None:
    approver = HeadlessApprover("default")
    settings = load_settings(cwd=root)
    session = await open_session(
        settings, resolve_provider(settings), cwd=root, home=tmp_path, approver=approver
    )
    try:
        assert session.approver is approver
        assert session.runner.approver is approver
    finally:
        await session.aclose()


async def test_observers_see_turns_events_and_changes_in_order(
    root: Path, tmp_path: Path, fake_llm: FakeLLM
) -> None:
    log: list[str] = []
    session = await session_in(
        root, tmp_path / "home", observers=[Recorder("first", log), Recorder("second", log)]
    )
    fake_llm.script(
        tool_turn(call("write_file", file_path="b.py", content="B = 2\n")), text("done")
    )
    try:
        [event async for event in session.run("write b")]
        assert (root / "b.py").read_text() == "B = 2\n"
        await session.replace_conversation([{"role": "user", "content": "x"}])
        await session.clear()
    finally:
        await session.aclose()
    assert log == [
        "first start write b",
        "second start write b",
        "first before write_file edit",
        "second before write_file edit",
        "first ToolResult",
        "second ToolResult",
        "first TurnEnd",
        "second TurnEnd",
        "first end",
        "second end",
        "first replaced",
        "second replaced",
        "first cleared",
        "second cleared",
        "first close",
        "second close",
    ]


async def test_turn_end_is_told_when_the_consumer_stops_early(
    root: Path, tmp_path: Path, fake_llm: FakeLLM
) -> None:
    log: list[str] = []
    session = await session_in(root, tmp_path / "home", observers=[Recorder("o", log)])
    fake_llm.script(text("hello"))
    try:
        events = session.run("hi")
        await anext(events)
        await events.aclose()
    finally:
        await session.aclose()
    assert log[0] == "o start hi"
    assert "o end" in log


async def test_clear_keeps_the_conversation_object_and_starts_a_new_transcript(
    root: Path, tmp_path: Path, fake_llm: FakeLLM
) -> None:
    home = tmp_path / "home"
    session = await session_in(root, home)
    conversation = session.agent.conversation
    fake_llm.script(text("one"), text("two"))
    try:
        [e async for e in session.run("first")]
        first_id = session.id
        await session.clear()
        assert session.agent.conversation is conversation
        assert conversation.messages == [conversation.messages[0]]
        assert conversation.messages[0]["role"] == "system"
        [e async for e in session.run("second")]
        assert session.id != first_id
    finally:
        await session.aclose()
    saved = {info.id for info in list_sessions(home, root)}
    assert {first_id, session.id} <= saved
    assert isinstance(session.observer(Persistence), Persistence)


def test_reset_keeps_the_system_prompt_and_repairs() -> None:
    conversation = Conversation.with_system("sys")
    conversation.add_user("old")
    conversation.reset(
        [
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
        ]
    )
    assert conversation.messages[0] == {"role": "system", "content": "sys"}
    assert len(conversation.messages) == 2  # the two user messages were merged
    conversation.reset()
    assert conversation.messages == [{"role": "system", "content": "sys"}]


async def test_a_subagent_shares_the_client_and_tools_and_has_its_own_conversation(
    root: Path, tmp_path: Path, fake_llm: FakeLLM
) -> None:
    log: list[str] = []
    session = await session_in(root, tmp_path / "home", observers=[Recorder("o", log)])
    helper_def = SubagentDef(
        name="helper",
        description="d",
        system_prompt="You are a careful helper.",
        source="user",
        tools=("read_file", "write_file"),
    )
    fake_llm.script(
        tool_turn(call("write_file", file_path="c.py", content="C = 3\n")), text("wrote c")
    )
    try:
        assert session.subagents is not None
        output = await session.subagents.run(helper_def, "write c", "write c", call_id="x")
    finally:
        await session.aclose()
    assert output.content == "wrote c"
    assert (root / "c.py").read_text() == "C = 3\n"
    body = fake_llm.chat_requests[0].body
    assert body is not None
    assert str(body["messages"][0]["content"]).startswith("You are a careful helper.")
    assert sorted(t["function"]["name"] for t in body["tools"]) == ["read_file", "write_file"]
    assert len(session.agent.conversation.messages) == 1  # the main one is untouched
    assert log == ["o before write_file edit", "o close"]  # its changes are checkpointed
