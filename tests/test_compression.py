"""Compression: the split point, the no-model fallback, and scripted sessions over real
HTTP that cross the threshold, lose the summary request, or overflow the server."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest

from qwen_code.agent.approval import Approver, HeadlessApprover
from qwen_code.agent.compress import (
    SUMMARY_INTRO,
    Compressor,
    extract_summary,
    split_point,
    summary_request,
)
from qwen_code.agent.context import ContextBudget, Targets, message_tokens
from qwen_code.agent.events import Compressed, Error, Event, TurnEnd
from qwen_code.agent.shrink import ELIDED_OUTPUT, assemble, elide_unit, shrink
from qwen_code.config import load_settings, qwen_home, resolve_provider
from qwen_code.llm.client import with_string_content
from qwen_code.prompts import load
from qwen_code.session.live import Session
from qwen_code.session.setup import open_session
from qwen_code.ui import commands
from qwen_code.ui.repl import Repl
from tests.fakeserver import FakeLLM, HTTPError, Recorded, call, error_body, text, tool_turn
from tests.helpers import bodies, git_init, repl_in

Message = dict[str, Any]


def _tool_tokens() -> int:
    """Estimated tokens of the tool schemas every request of these sessions carries."""
    from qwen_code.agent.context import DEFAULT_CHARS_PER_TOKEN, schema_chars
    from qwen_code.subagents.definitions import GENERAL_PURPOSE, AgentCatalog, general_purpose
    from qwen_code.subagents.tool import AgentTool
    from qwen_code.tools.registry import builtin_registry

    tools = [tool.schema() for tool in builtin_registry()]
    tools.append(AgentTool(AgentCatalog({GENERAL_PURPOSE: general_purpose()})).schema())
    return int(schema_chars(tools) / DEFAULT_CHARS_PER_TOKEN)


WINDOW = 9_500 + _tool_tokens()
"""Room for the conversations these tests build on top of the tool schemas (which grow
as tools are added): about 12,000 tokens when the schemas were about 3,000."""
SNAPSHOT = (
    "<state_snapshot>\n<overall_goal>Review the three modules.</overall_goal>\n"
    "<current_plan>1. [DONE] read f1, f2 2. [IN PROGRESS] read f3</current_plan>\n"
    "</state_snapshot>"
)
OVERFLOW = (
    "This model's maximum context length is 8192 tokens. However, your messages resulted "
    "in 9000 tokens. Please reduce the length of the messages."
)


# --- helpers ---------------------------------------------------------------------------


def assert_valid(messages: list[Message]) -> None:
    """The history a server accepts: system first, every tool call answered right after
    its assistant message, no result without its call, no two users or assistants in a
    row."""
    assert messages[0]["role"] == "system"
    assert all(m["role"] != "system" for m in messages[1:])
    open_calls: list[str] = []
    previous = "system"
    for message in messages[1:]:
        role = message["role"]
        if role == "tool":
            assert message["tool_call_id"] in open_calls, "a result without its call"
            open_calls.remove(message["tool_call_id"])
        else:
            assert not open_calls, "tool calls left without results"
            assert role != previous, f"two {role} messages in a row"
            open_calls = [c["id"] for c in message.get("tool_calls") or ()]
        previous = role
    assert not open_calls


def user(content: str) -> Message:
    return {"role": "user", "content": content}


def assistant(content: str = "", *call_ids: str, args: str = '{"file_path": "a.py"}') -> Message:
    message: Message = {"role": "assistant", "content": content or None}
    if call_ids:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": "read_file", "arguments": args}}
            for i in call_ids
        ]
    return message


def tool(call_id: str, content: str) -> Message:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def random_history(rng: random.Random) -> list[Message]:
    messages: list[Message] = [{"role": "system", "content": "s" * 400}]
    n = 0
    for _ in range(rng.randint(1, 5)):
        messages.append(user("u" * rng.randint(5, 3000)))
        for _ in range(rng.randint(0, 4)):
            ids = [f"c{n + k}" for k in range(rng.randint(1, 3))]
            n += len(ids)
            messages.append(assistant("a" * rng.randint(0, 200), *ids))
            messages.extend(tool(i, "t" * rng.randint(10, 6000)) for i in ids)
        messages.append(assistant("done " * rng.randint(1, 50)))
    return messages


def count(message: Message) -> int:
    return message_tokens(message)


def is_summary_request(request: Recorded | dict[str, Any]) -> bool:
    body = request.body if isinstance(request, Recorded) else request
    assert body is not None
    return "tools" not in body and "<state_snapshot>" in str(body["messages"][-1]["content"])


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    git_init(root)
    for name in ("f1", "f2", "f3", "f4"):
        lines = "".join(f"{name}_value_{i:04d} = compute({i}, scale=2.5)\n" for i in range(180))
        (root / f"{name}.py").write_text(lines)
    return root


async def session_for(
    root: Path, window: int | None = WINDOW, approver: Approver | None = None, **generation: Any
) -> Session:
    settings_dir = root / ".qwen"
    settings_dir.mkdir(exist_ok=True)
    config: dict[str, Any] = {"generationConfig": generation}
    if window is not None:
        config["generationConfig"]["contextWindowSize"] = window
    (settings_dir / "settings.json").write_text(json.dumps({"model": config}))
    settings = load_settings(cwd=root)
    return await open_session(
        settings,
        resolve_provider(settings),
        cwd=root,
        home=qwen_home(),
        approver=approver or HeadlessApprover("default"),
    )


async def run(session: Session, prompt: str) -> list[Event | Compressed]:
    return [event async for event in session.agent.run(prompt)]


# --- the split point and the fallback, without a server -----------------------------------


def test_split_point_never_separates_tool_calls_from_results() -> None:
    rng = random.Random(7)
    for _ in range(300):
        messages = random_history(rng)
        for fraction in (0.1, 0.3, 0.5, 0.9):
            index = split_point(messages, count, fraction)
            if index is None:
                continue
            assert 1 < index < len(messages)
            assert messages[index]["role"] in ("user", "assistant")
            kept = [{"role": "system", "content": ""}, user("summary"), *messages[index:]]
            if messages[index]["role"] == "user":
                kept.insert(2, assistant("ok"))
            assert_valid(kept)


def test_split_point_keeps_about_the_last_30_percent_and_prefers_a_user_message() -> None:
    messages = [
        {"role": "system", "content": "s"},
        user("first " * 100),
        assistant("", "c1"),
        tool("c1", "x" * 7000),
        assistant("read it"),
        user("second " * 100),
        assistant("", "c2"),
        tool("c2", "y" * 1500),
        assistant("done"),
    ]
    assert split_point(messages, count) == 5  # the second user message
    one_turn = [messages[0], messages[1], *[m for i in range(6) for m in _round(i, 2000)]]
    index = split_point(one_turn, count)
    assert index is not None
    assert one_turn[index]["role"] == "assistant"  # a round start inside the only turn
    kept = sum(count(m) for m in one_turn[index:])
    assert 0.2 < kept / sum(count(m) for m in one_turn[1:]) < 0.5
    assert split_point(messages[:2], count) is None  # nothing to summarize


def _round(i: int, size: int) -> list[Message]:
    return [assistant("", f"r{i}"), tool(f"r{i}", "z" * size)]


def test_elide_unit_stubs_outputs_and_long_arguments() -> None:
    args = json.dumps({"file_path": "big.py", "content": "q" * 5000})
    unit = [assistant("writing", "w1", args=args), tool("w1", "ok " * 500)]
    elided = elide_unit(unit)
    assert elided[1]["content"] == ELIDED_OUTPUT.format(name="read_file")
    arguments = json.loads(elided[0]["tool_calls"][0]["function"]["arguments"])
    assert arguments["file_path"] == "big.py"
    assert "5,000 characters elided" in arguments["content"]
    assert unit[1]["content"] == "ok " * 500  # the original is untouched
    short = [assistant("", "s1"), tool("s1", "ok")]
    assert elide_unit(short)[1]["content"] == "ok"


def test_shrink_elides_old_output_first_then_drops_whole_old_turns() -> None:
    messages = [
        {"role": "system", "content": "s"},
        user("one"),
        assistant("", "c1"),
        tool("c1", "x" * 7000),
        assistant("done one"),
        user("two " * 700),
        assistant("done two"),
        user("three"),
        assistant("", "c3"),
        tool("c3", "y" * 3500),
    ]

    def measure(m: list[Message]) -> int:
        return sum(count(x) for x in m)

    total = measure(messages)
    elided = shrink(
        messages,
        pinned=1,
        keep_from=7,
        targets=Targets(goal=total - 1500, limit=total, ceiling=total),
        count=count,
        measure=measure,
    )
    assert elided is not None
    new = elided.messages
    assert elided.method == "elided"
    assert new[3]["content"].startswith("[Old output of read_file elided")
    assert new[7:] == messages[7:]  # the current turn is untouched
    assert_valid(new)

    dropped = shrink(
        messages,
        pinned=1,
        keep_from=7,
        targets=Targets(goal=1500, limit=total, ceiling=total),
        count=count,
        measure=measure,
    )
    assert dropped is not None
    new = dropped.messages
    assert dropped.method == "dropped"
    assert "were removed to fit" in new[1]["content"]
    assert new[3:] == messages[7:]  # whole turns went; the current one stays verbatim
    assert_valid(new)


def test_shrink_cuts_into_the_current_turn_only_to_fit_and_keeps_its_request() -> None:
    messages = [{"role": "system", "content": "s"}, user("do it")]
    for i in range(6):
        messages += _round(i, 3000)

    def measure(m: list[Message]) -> int:
        return sum(count(x) for x in m)

    limit = 1200
    result = shrink(
        messages,
        pinned=1,
        keep_from=len(messages),
        targets=Targets(goal=limit, limit=limit, ceiling=limit),
        count=count,
        measure=measure,
    )
    assert result is not None
    new = result.messages
    assert measure(new) <= limit
    assert "do it" in [m["content"] for m in new]
    assert new[-2:] == messages[-2:]  # the latest round is kept verbatim when it fits
    assert_valid(new)
    impossible = shrink(
        [messages[0], user("x" * 9000)],
        pinned=1,
        keep_from=2,
        targets=Targets(goal=100, limit=100, ceiling=100),
        count=count,
        measure=measure,
    )
    assert impossible is None


def test_assemble_keeps_alternation() -> None:
    system = {"role": "system", "content": "s"}
    summary = user("summary")
    assert [m["role"] for m in assemble([system, summary], [user("u")], 0)] == [
        "system",
        "user",
        "assistant",
        "user",
    ]
    assert [m["role"] for m in assemble([system, summary], [assistant("a")], 0)] == [
        "system",
        "user",
        "assistant",
    ]
    assert [m["role"] for m in assemble([system], [assistant("", "c"), tool("c", "t")], 3)] == [
        "system",
        "user",
        "assistant",
        "tool",
    ]


def test_a_summary_request_that_would_not_fit_is_shortened_first() -> None:
    compressor = Compressor(budget=ContextBudget(window=4000))
    old = [{"role": "system", "content": "s" * 400}, user("review these")]
    for i in range(4):
        old += _round(i, 3000)
    request = summary_request(old, compressor.instruction())
    hard = compressor.budget.hard_limit
    assert hard is not None
    assert compressor.budget.estimate_all(request, None) > hard
    fitted = compressor.fit_summary_request(request)
    assert fitted is not None
    assert compressor.budget.estimate_all(fitted, None) <= hard
    assert fitted[:2] == request[:2]
    assert fitted[-1] == request[-1]
    assert any(m["role"] == "tool" and "elided" in m["content"] for m in fitted)
    assert_valid(fitted)
    hopeless = summary_request([old[0], user("x" * 20_000)], compressor.instruction())
    assert compressor.fit_summary_request(hopeless) is None


def test_summary_request_and_extraction() -> None:
    old = [{"role": "system", "content": "s"}, user("hi"), assistant("hello")]
    request = summary_request(old, "INSTRUCTION")
    assert request[:3] == old
    assert request[-1] == user("INSTRUCTION")
    merged = summary_request(old[:2], "INSTRUCTION")
    assert [m["role"] for m in merged] == ["system", "user"]
    assert merged[-1]["content"].startswith("hi") and "INSTRUCTION" in merged[-1]["content"]
    assert extract_summary(f"<think>hmm</think>Sure!\n{SNAPSHOT}\nbye") == SNAPSHOT
    assert extract_summary("<think>hmm</think> plain summary ") == "plain summary"


def test_the_shipped_prompt_asks_for_a_state_snapshot() -> None:
    prompt = load("compress.md", {})
    for tag in ("overall_goal", "file_system_state", "current_plan", "user_instructions"):
        assert f"<{tag}>" in prompt
    assert "Do not call tools" in prompt


# --- scripted sessions over HTTP ---------------------------------------------------------


async def test_crossing_the_threshold_summarizes_and_keeps_recent_messages(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        tool_turn(call("read_file", file_path="f1.py")),
        tool_turn(call("read_file", file_path="f2.py")),
        tool_turn(call("read_file", file_path="f3.py")),
        text(f"<think>Let me summarize.</think>{SNAPSHOT}"),
        text("All three modules look fine."),
    )
    session = await session_for(workspace)
    try:
        events = await run(session, "Review f1.py, f2.py and f3.py.")
    finally:
        await session.aclose()
    assert fake_llm.remaining == 0
    (compressed,) = [e for e in events if isinstance(e, Compressed)]
    assert (compressed.method, compressed.reason) == ("summary", "threshold")
    assert compressed.after_tokens < compressed.before_tokens
    assert compressed.usage is not None and compressed.usage.prompt_tokens > 0
    assert isinstance(events[-1], TurnEnd) and events[-1].reason == "completed"

    requests = bodies(fake_llm)
    assert [is_summary_request(b) for b in requests] == [False, False, False, True, False]
    before, summary, after = requests[2], requests[3], requests[4]
    # The summary request: the old messages (system prompt first) and the instruction.
    assert summary["messages"][0] == before["messages"][0]
    assert summary["messages"][1] == before["messages"][1]
    assert "Do not call tools" in summary["messages"][-1]["content"]
    # The compacted history: same system prompt, the summary, recent messages verbatim.
    messages = after["messages"]
    assert messages[0] == before["messages"][0]
    assert messages[1]["role"] == "user"
    request = "\n\nThe user's current request, verbatim:\n\nReview f1.py, f2.py and f3.py."
    assert messages[1]["content"] == SUMMARY_INTRO + SNAPSHOT + request
    assert messages[2]["tool_calls"][0]["function"]["arguments"] == '{"file_path": "f3.py"}'
    assert "f3_value_0179" in messages[3]["content"]
    assert len(messages) == 4
    assert_valid(messages)
    assert "tools" in after
    budget = ContextBudget(window=WINDOW)
    assert budget.estimate_all(messages, after["tools"]) < budget.trigger  # type: ignore[operator]
    # (the wire has "" for the tool call's null content: the fake server is a local one)
    assert with_string_content(session.agent.conversation.messages[:4]) == messages


async def test_summary_failure_falls_back_to_eliding_old_tool_output(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        tool_turn(call("read_file", file_path="f1.py")),
        tool_turn(call("read_file", file_path="f2.py")),
        tool_turn(call("read_file", file_path="f3.py")),
        HTTPError(400, error_body("summaries are not allowed here", 400)),
        text("Done."),
    )
    session = await session_for(workspace)
    try:
        events = await run(session, "Review f1.py, f2.py and f3.py.")
        hard = session.agent.budget.hard_limit
    finally:
        await session.aclose()
    (compressed,) = [e for e in events if isinstance(e, Compressed)]
    assert compressed.method == "elided"
    assert compressed.usage is None
    assert isinstance(events[-1], TurnEnd) and events[-1].reason == "completed"
    requests = bodies(fake_llm)
    assert is_summary_request(requests[3])
    messages = requests[4]["messages"]
    assert_valid(messages)
    assert messages[0] == requests[2]["messages"][0]
    assert messages[1] == requests[2]["messages"][1]  # the user's request is still there
    stubs = [m for m in messages if m["role"] == "tool" and "elided" in m["content"]]
    assert stubs and stubs[0]["content"] == ELIDED_OUTPUT.format(name="read_file")
    assert "f3_value_0179" in messages[-1]["content"]  # the latest result is intact
    budget = ContextBudget(window=WINDOW)
    assert budget.estimate_all(messages, requests[4]["tools"]) <= hard  # type: ignore[operator]


async def test_summary_failure_drops_the_oldest_turns_when_eliding_is_not_enough(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        text("Noted the first log."),
        text("Noted the second log."),
        HTTPError(400, error_body("no", 400)),
        text("The third request is answered."),
    )
    question = "What do the logs have in common?\n" + "z" * 8000
    session = await session_for(workspace)
    try:
        for n in range(2):
            await run(session, f"Log {n}:\n" + "x" * 8000)
        events = await run(session, question)
    finally:
        await session.aclose()
    (compressed,) = [e for e in events if isinstance(e, Compressed)]
    assert compressed.method == "dropped"
    requests = bodies(fake_llm)
    assert len(requests) == 4
    messages = requests[3]["messages"]
    assert_valid(messages)
    assert "were removed to fit" in messages[1]["content"]
    assert messages[-1]["content"] == question
    assert not any("Log 0" in str(m["content"]) for m in messages)


async def test_a_request_that_cannot_fit_is_never_sent(workspace: Path, fake_llm: FakeLLM) -> None:
    session = await session_for(workspace)
    try:
        events = await run(session, "y" * 60_000)
        assert fake_llm.chat_requests == []
        assert_valid(session.agent.conversation.messages)
    finally:
        await session.aclose()
    error = next(e for e in events if isinstance(e, Error))
    assert error.kind == "context_overflow"
    assert "last user message alone" in error.message
    assert isinstance(events[-1], TurnEnd) and events[-1].reason == "error"


async def test_context_overflow_from_the_server_compresses_and_retries_once(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        tool_turn(call("read_file", file_path="f1.py")),
        tool_turn(call("read_file", file_path="f2.py")),
        text("Read both."),
        HTTPError(400, error_body(OVERFLOW, 400)),
        text(SNAPSHOT),
        text("Recovered."),
    )
    session = await session_for(workspace, window=None)  # the built-in table says 1M
    try:
        await run(session, "Read f1.py and f2.py.")
        events = await run(session, "Now compare them.")
        window = session.agent.budget.window
    finally:
        await session.aclose()
    assert window == 8192  # learned from the error
    notice = next(e for e in events if isinstance(e, Error))
    assert notice.retrying and notice.kind == "context_overflow"
    (compressed,) = [e for e in events if isinstance(e, Compressed)]
    assert (compressed.reason, compressed.method) == ("overflow", "summary")
    assert compressed.before_tokens >= 9000
    assert isinstance(events[-1], TurnEnd) and events[-1].reason == "completed"
    assert events[-1].final_text == "Recovered."
    requests = bodies(fake_llm)
    assert len(requests) == 6
    assert is_summary_request(requests[4])
    retry = requests[5]["messages"]
    assert_valid(retry)
    assert retry[0] == requests[3]["messages"][0]
    assert retry[1]["content"].startswith(SUMMARY_INTRO)
    assert retry[-1]["content"] == "Now compare them."
    budget = ContextBudget(window=8192)
    assert budget.estimate_all(retry, requests[5]["tools"]) < 8192


async def test_a_request_summarized_away_is_repeated_verbatim(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    task = "Read f1.py and f2.py, then tell me which is longer. Keep it short."
    fake_llm.script(
        tool_turn(call("read_file", file_path="f1.py")),
        tool_turn(call("read_file", file_path="f2.py")),
        HTTPError(400, error_body(OVERFLOW, 400)),
        text(SNAPSHOT),
        text("f2.py."),
    )
    session = await session_for(workspace, window=None)
    try:
        events = await run(session, task)
    finally:
        await session.aclose()
    assert isinstance(events[-1], TurnEnd) and events[-1].final_text == "f2.py."
    retry = bodies(fake_llm)[-1]["messages"]
    assert_valid(retry)
    assert retry[1]["content"].startswith(SUMMARY_INTRO)
    assert retry[1]["content"].endswith("verbatim:\n\n" + task)
    assert all(m["content"] != task for m in retry[2:])  # once, not twice


async def test_a_second_overflow_ends_the_turn(workspace: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        tool_turn(call("read_file", file_path="f1.py")),
        tool_turn(call("read_file", file_path="f2.py")),
        text("Read both."),
        HTTPError(400, error_body(OVERFLOW, 400)),
        text(SNAPSHOT),
        HTTPError(400, error_body(OVERFLOW, 400)),
        text("never sent"),
    )
    session = await session_for(workspace, window=None)
    try:
        await run(session, "Read f1.py and f2.py.")
        events = await run(session, "Now compare them.")
        assert_valid(session.agent.conversation.messages)
    finally:
        await session.aclose()
    assert fake_llm.remaining == 1
    errors = [e for e in events if isinstance(e, Error)]
    assert [e.retrying for e in errors] == [True, False]
    assert errors[-1].kind == "context_overflow"
    assert isinstance(events[-1], TurnEnd) and events[-1].reason == "error"


async def test_threshold_zero_turns_automatic_compression_off(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    (workspace / ".qwen").mkdir()
    settings = {"model": {"chatCompression": {"contextPercentageThreshold": 0}}}
    (workspace / ".qwen" / "settings.json").write_text(json.dumps(settings))
    loaded = load_settings(cwd=workspace)
    loaded.model.generation_config.context_window_size = 16_000
    session = await open_session(
        loaded,
        resolve_provider(loaded),
        cwd=workspace,
        home=qwen_home(),
        approver=HeadlessApprover("default"),
    )
    fake_llm.script(
        tool_turn(call("read_file", file_path="f1.py")),
        tool_turn(call("read_file", file_path="f2.py")),
        tool_turn(call("read_file", file_path="f3.py")),
        text("done"),
    )
    try:
        events = await run(session, "Read them all.")
    finally:
        await session.aclose()
    assert not any(isinstance(e, Compressed) for e in events)
    assert not any(is_summary_request(r) for r in fake_llm.chat_requests)


async def test_requests_extend_the_previous_ones_when_nothing_is_compressed(
    workspace: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        tool_turn(call("read_file", file_path="f1.py")),
        text("f1 read"),
        tool_turn(call("read_file", file_path="f2.py"), call("read_file", file_path="f3.py")),
        tool_turn(call("read_file", file_path="f4.py")),
        text("all read"),
        text("bye"),
    )
    session = await session_for(workspace, window=None)
    try:
        await run(session, "Read f1.")
        await run(session, "Read the others.")
        await run(session, "Thanks.")
    finally:
        await session.aclose()
    requests = bodies(fake_llm)
    assert len(requests) == 6
    for previous, current in itertools.pairwise(requests):
        sent = previous["messages"]
        assert current["messages"][: len(sent)] == sent
        assert current["tools"] == previous["tools"]


# --- /compress ------------------------------------------------------------------------------


@pytest.fixture
async def repl(workspace: Path, fake_llm: FakeLLM) -> AsyncIterator[Repl]:
    def opener(approver: Approver) -> Awaitable[Session]:
        return session_for(workspace, window=None, approver=approver)

    async with repl_in(workspace, opener) as (running, _):
        yield running


async def read_two_files(repl: Repl, fake_llm: FakeLLM, *, summary: str) -> None:
    """Two prompts that read f1.py and f2.py; the model's next reply is `summary`."""
    fake_llm.script(
        tool_turn(call("read_file", file_path="f1.py")),
        text("f1 read"),
        tool_turn(call("read_file", file_path="f2.py")),
        text("f2 read"),
        text(summary),
    )
    await repl.send("Read f1.")
    await repl.send("Read f2.")


async def test_compress_command(repl: Repl, fake_llm: FakeLLM) -> None:
    await commands.dispatch(repl, "/compress")
    assert "Nothing to compress" in repl.console.export_text()
    await read_two_files(repl, fake_llm, summary=SNAPSHOT)
    await commands.dispatch(repl, "/compress the config loader")
    shown = repl.console.export_text()
    assert "Compressed the conversation (older messages summarized by the model)" in shown
    assert "→" in shown and "tokens" in shown
    summary = bodies(fake_llm)[-1]
    assert is_summary_request(summary)
    assert "focus on: the config loader" in summary["messages"][-1]["content"]
    messages = repl.session.agent.conversation.messages
    assert messages[1]["content"] == SUMMARY_INTRO + SNAPSHOT
    assert messages[-1]["content"] == "f2 read"
    assert_valid(messages)
    assert repl.stats.last_prompt_tokens > 0
    await commands.dispatch(repl, "/stats")
    assert "Model requests: 5" in repl.console.export_text()  # the summary request counts


async def test_compress_a_short_conversation_asks_the_model_nothing(
    repl: Repl, fake_llm: FakeLLM
) -> None:
    fake_llm.script(text("Hello! How can I help?"))
    await repl.send("hi")
    requests = len(fake_llm.chat_requests)
    await commands.dispatch(repl, "/compress")
    assert "Nothing to compress yet" in repl.console.export_text()
    assert len(fake_llm.chat_requests) == requests
    assert repl.session.agent.conversation.messages[1]["content"] == "hi"


async def test_compress_keeps_the_history_when_the_summary_is_longer(
    repl: Repl, fake_llm: FakeLLM
) -> None:
    long_summary = "<state_snapshot>" + "detail " * 6_000 + "</state_snapshot>"
    await read_two_files(repl, fake_llm, summary=long_summary)
    before = list(repl.session.agent.conversation.messages)
    await commands.dispatch(repl, "/compress")
    assert "Nothing compressed: the model's summary was no shorter" in repl.console.export_text()
    assert repl.session.agent.conversation.messages == before
    assert repl.stats.requests == 5
