"""The real Claude Agent SDK for Python drives qwen-code (`cli_path`) over stream-json.

The SDK starts `qwen-code` as its CLI (a wrapper script running this interpreter's
`python -m qwen_code`), speaks the control protocol on its stdin/stdout, and qwen-code
talks to the scripted model server. Nothing is mocked: the SDK's own parser must accept
every message qwen-code writes.
"""

from __future__ import annotations

import asyncio
import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    PermissionResultAllow,
    PermissionResultDeny,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ToolUseBlock,
    UserMessage,
    query,
)

from tests.fakeserver import FakeLLM, Turn, call, text, tool_turn
from tests.helpers import bodies, user_message

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def cli(tmp_path: Path) -> str:
    """An executable `qwen-code` for `cli_path`."""
    path = tmp_path / "bin" / "qwen-code"
    path.parent.mkdir()
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m qwen_code "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "work").mkdir()
    return tmp_path / "work"


def options(cli: str, work: Path, **kwargs: Any) -> ClaudeAgentOptions:
    return ClaudeAgentOptions(cli_path=cli, cwd=str(work), stderr=print, **kwargs)


async def collect(messages: Any) -> list[Any]:
    return [m async for m in messages]


def result_of(messages: list[Any]) -> ResultMessage:
    results = [m for m in messages if isinstance(m, ResultMessage)]
    assert results, messages
    return results[-1]


async def test_one_shot_query(fake_llm: FakeLLM, cli: str, work: Path) -> None:
    fake_llm.script(text("Hello from qwen-code."))
    messages = await collect(query(prompt="Say hello", options=options(cli, work)))
    init = messages[0]
    assert isinstance(init, SystemMessage) and init.subtype == "init"
    assert init.data["model"] == "qwen3-coder-plus"
    assert "read_file" in init.data["tools"]
    (assistant,) = [m for m in messages if isinstance(m, AssistantMessage)]
    assert assistant.content == [TextBlock(text="Hello from qwen-code.")]
    result = result_of(messages)
    assert (result.subtype, result.is_error, result.result) == (
        "success",
        False,
        "Hello from qwen-code.",
    )
    assert result.session_id == init.data["session_id"]
    assert user_message(fake_llm) == "Say hello"


async def test_two_turns_on_one_process(fake_llm: FakeLLM, cli: str, work: Path) -> None:
    fake_llm.script(text("First answer."), text("Second answer."))
    async with ClaudeSDKClient(options(cli, work)) as client:
        await client.query("first question")
        first = await collect(client.receive_response())
        await client.query("second question")
        second = await collect(client.receive_response())
    assert result_of(first).result == "First answer."
    assert result_of(second).result == "Second answer."
    assert result_of(first).session_id == result_of(second).session_id
    history = [m.get("content") for m in bodies(fake_llm)[1]["messages"][1:]]
    assert history == ["first question", "First answer.", "second question"]


async def test_can_use_tool_denies_a_command_and_allows_an_edit(
    fake_llm: FakeLLM, cli: str, work: Path
) -> None:
    fake_llm.script(
        tool_turn(
            call("run_shell_command", command="touch ran"),
            call("write_file", file_path="notes.md", content="hello\n"),
        ),
        text("Done."),
    )
    asked: list[tuple[str, dict[str, Any]]] = []

    async def can_use_tool(name: str, tool_input: dict[str, Any], context: Any) -> Any:
        asked.append((name, tool_input))
        if name == "run_shell_command":
            (suggestion,) = context.suggestions
            assert [(r.tool_name, r.rule_content) for r in suggestion.rules] == [
                ("Bash", "touch ran")
            ]
            return PermissionResultDeny(message="No commands today.")
        return PermissionResultAllow()

    opts = options(cli, work, can_use_tool=can_use_tool)
    async with ClaudeSDKClient(opts) as client:
        await client.query("make notes")
        messages = await collect(client.receive_response())
    assert sorted(name for name, _ in asked) == ["run_shell_command", "write_file"]
    assert not (work / "ran").exists()
    assert (work / "notes.md").read_text() == "hello\n"
    results = {
        block.tool_use_id: block
        for m in messages
        if isinstance(m, UserMessage) and isinstance(m.content, list)
        for block in m.content
    }
    assert [r.content for r in results.values() if r.is_error] == ["No commands today."]
    denials = result_of(messages).permission_denials or []
    assert [d["tool_name"] for d in denials] == ["run_shell_command"]


async def test_can_use_tool_edits_the_input(fake_llm: FakeLLM, cli: str, work: Path) -> None:
    fake_llm.script(
        tool_turn(call("write_file", file_path="a.txt", content="from the model\n")), text("ok")
    )

    async def can_use_tool(name: str, tool_input: dict[str, Any], context: Any) -> Any:
        return PermissionResultAllow(updated_input={**tool_input, "content": "edited\n"})

    opts = options(cli, work, can_use_tool=can_use_tool)
    async with ClaudeSDKClient(opts) as client:
        await client.query("write a")
        await collect(client.receive_response())
    assert (work / "a.txt").read_text() == "edited\n"


async def test_interrupt_mid_stream_then_go_on(fake_llm: FakeLLM, cli: str, work: Path) -> None:
    fake_llm.script(
        Turn(text="la la", forever=True, chunk_delay_s=0.2), text("After the interrupt.")
    )
    opts = options(cli, work, include_partial_messages=True)
    async with ClaudeSDKClient(opts) as client:
        await client.query("sing forever")
        first: list[Any] = []
        interrupting: list[asyncio.Task[None]] = []
        async for message in client.receive_response():  # read on while it is asked
            first.append(message)
            if isinstance(message, StreamEvent) and not interrupting:
                interrupting.append(asyncio.create_task(client.interrupt()))
        await interrupting[0]
        await client.query("and now?")
        second = await collect(client.receive_response())
    stopped = result_of(first)
    assert stopped.is_error and stopped.subtype == "error_interrupted"
    assert result_of(second).result == "After the interrupt."


async def test_set_permission_mode_accept_edits(fake_llm: FakeLLM, cli: str, work: Path) -> None:
    write = call("write_file", file_path="b.txt", content="b\n")
    fake_llm.script(tool_turn(write), text("refused"), tool_turn(write), text("written"))
    async with ClaudeSDKClient(options(cli, work)) as client:
        await client.query("write b")
        refused = await collect(client.receive_response())
        await client.set_permission_mode("acceptEdits")
        await client.query("write b again")
        await collect(client.receive_response())
    assert [d["tool_name"] for d in result_of(refused).permission_denials or []] == ["write_file"]
    assert (work / "b.txt").read_text() == "b\n"


async def test_structured_output_from_output_format(
    fake_llm: FakeLLM, cli: str, work: Path
) -> None:
    schema = {
        "type": "object",
        "properties": {"count": {"type": "integer"}},
        "required": ["count"],
    }
    fake_llm.script(tool_turn(call("structured_output", count=3)))
    opts = options(cli, work, output_format={"type": "json_schema", "schema": schema})
    messages = await collect(query(prompt="count them", options=opts))
    result = result_of(messages)
    assert result.structured_output == {"count": 3}
    assert not result.is_error


async def test_set_model_and_the_session_queries(fake_llm: FakeLLM, cli: str, work: Path) -> None:
    fake_llm.script(text("one"), text("two"))
    async with ClaudeSDKClient(options(cli, work)) as client:
        await client.query("first")
        await collect(client.receive_response())
        await client.set_model("qwen3-coder-flash")
        await client.query("second")
        await collect(client.receive_response())
        usage = await client.get_context_usage()
        status = await client.get_mcp_status()
        info = await client.get_server_info()
    assert [b["model"] for b in bodies(fake_llm)] == ["qwen3-coder-plus", "qwen3-coder-flash"]
    assert usage["model"] == "qwen3-coder-flash"
    assert usage["totalTokens"] > 0 and usage["rawMaxTokens"] > usage["totalTokens"]
    assert {c["name"] for c in usage["categories"]} >= {"System prompt", "Tools", "Messages"}
    assert status == {"mcpServers": []}
    assert info is not None and info["models"]


async def test_rewind_files_to_a_user_message(fake_llm: FakeLLM, cli: str, work: Path) -> None:
    (work / "keep.txt").write_text("original\n")
    fake_llm.script(
        tool_turn(call("write_file", file_path="keep.txt", content="changed\n")),
        text("changed it"),
        tool_turn(call("write_file", file_path="new.txt", content="new\n")),
        text("added one"),
    )
    opts = options(
        cli,
        work,
        permission_mode="acceptEdits",
        enable_file_checkpointing=True,
        extra_args={"replay-user-messages": None},
    )
    async with ClaudeSDKClient(opts) as client:
        await client.query("change keep")
        first = await collect(client.receive_response())
        await client.query("add new")
        await collect(client.receive_response())
        assert (work / "keep.txt").read_text() == "changed\n" and (work / "new.txt").exists()
        (replayed,) = [
            m for m in first if isinstance(m, UserMessage) and m.content == "change keep"
        ]
        await client.rewind_files(replayed.uuid)
    assert (work / "keep.txt").read_text() == "original\n"
    assert not (work / "new.txt").exists()


async def test_budget_stops_the_run_and_refuses_the_next(
    fake_llm: FakeLLM, cli: str, work: Path
) -> None:
    expensive = {"prompt_tokens": 20_000, "completion_tokens": 1_000}  # $0.025
    fake_llm.script(
        tool_turn(call("read_file", file_path="x.txt"), usage=expensive), text("never sent")
    )
    opts = options(cli, work, max_budget_usd=0.02)
    async with ClaudeSDKClient(opts) as client:
        await client.query("read x")
        first = await collect(client.receive_response())
        await client.query("more")
        second = await collect(client.receive_response())
    assert result_of(first).subtype == "error_max_budget_usd"
    assert result_of(second).subtype == "error_max_budget_usd"
    assert len(fake_llm.chat_requests) == 1


async def test_tool_calls_are_shown_as_tool_use_blocks(
    fake_llm: FakeLLM, cli: str, work: Path
) -> None:
    (work / "a.py").write_text("print('hi')\n")
    fake_llm.script(tool_turn(call("read_file", file_path="a.py")), text("It prints hi."))
    messages = await collect(query(prompt="what does a.py do", options=options(cli, work)))
    uses = [
        block
        for m in messages
        if isinstance(m, AssistantMessage)
        for block in m.content
        if isinstance(block, ToolUseBlock)
    ]
    assert [(u.name, u.input) for u in uses] == [("read_file", {"file_path": "a.py"})]
    assert result_of(messages).result == "It prints hi."
    assert json.loads(json.dumps(result_of(messages).usage))["output_tokens"] >= 0


def test_the_sdk_is_the_real_one() -> None:
    """These tests exercise the published package, not a stand-in."""
    import claude_agent_sdk

    assert Path(claude_agent_sdk.__file__).parent.name == "claude_agent_sdk"
    assert asyncio.iscoroutinefunction(ClaudeSDKClient.interrupt)


async def test_the_programs_own_mcp_tools(fake_llm: FakeLLM, cli: str, work: Path) -> None:
    """`create_sdk_mcp_server` tools run in the test process, called over the protocol."""
    from claude_agent_sdk import create_sdk_mcp_server, tool

    calls: list[dict[str, Any]] = []

    @tool("add", "Add two numbers", {"a": int, "b": int})
    async def add(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(args)
        return {"content": [{"type": "text", "text": str(args["a"] + args["b"])}]}

    server = create_sdk_mcp_server("calc", tools=[add])
    fake_llm.script(tool_turn(call("mcp__calc__add", a=2, b=3)), text("It is 5."))
    opts = options(cli, work, mcp_servers={"calc": server}, allowed_tools=["mcp__calc__add"])
    async with ClaudeSDKClient(opts) as client:
        await client.query("add 2 and 3")
        messages = await collect(client.receive_response())
        status = await client.get_mcp_status()
    assert calls == [{"a": 2, "b": 3}]
    results = [
        block
        for m in messages
        if isinstance(m, UserMessage) and isinstance(m.content, list)
        for block in m.content
    ]
    assert [r.is_error for r in results] == [False] and "5" in str(results[0].content)
    assert result_of(messages).result == "It is 5."
    assert [(s["name"], s["status"]) for s in status["mcpServers"]] == [("calc", "connected")]


async def test_an_edited_input_is_checked_against_deny_rules(
    fake_llm: FakeLLM, cli: str, work: Path
) -> None:
    """An approver that rewrites a call cannot slip it past a deny rule (nor past validation)."""
    (work / "precious.txt").write_text("keep me\n")
    fake_llm.script(
        tool_turn(call("run_shell_command", command="ls")),
        tool_turn(call("run_shell_command", command="ls")),
        text("ok"),
    )
    edits = iter([{"command": "rm precious.txt"}, {"command": 42}])

    async def can_use_tool(name: str, tool_input: dict[str, Any], context: Any) -> Any:
        return PermissionResultAllow(updated_input=next(edits))

    opts = options(cli, work, can_use_tool=can_use_tool, disallowed_tools=["Bash(rm *)"])
    async with ClaudeSDKClient(opts) as client:
        await client.query("list")
        messages = await collect(client.receive_response())
    assert (work / "precious.txt").exists()
    errors = [
        str(block.content)
        for m in messages
        if isinstance(m, UserMessage) and isinstance(m.content, list)
        for block in m.content
        if block.is_error
    ]
    assert len(errors) == 2
    assert "deny" in errors[0].lower() or "denied" in errors[0].lower()
    assert "edited arguments are invalid" in errors[1]


async def test_the_programs_hook_callbacks(fake_llm: FakeLLM, cli: str, work: Path) -> None:
    """`hooks` in the options: PreToolUse callbacks run in the program and can deny."""
    from claude_agent_sdk import HookMatcher

    seen: list[dict[str, Any]] = []

    async def guard(data: dict[str, Any], tool_use_id: str | None, context: Any) -> Any:
        seen.append(data)
        if "rm" in data["tool_input"].get("command", ""):
            return {
                "hookSpecificOutput": {
                    "hookEventName": "PreToolUse",
                    "permissionDecision": "deny",
                    "permissionDecisionReason": "No rm from the agent.",
                }
            }
        return {}

    (work / "keep.txt").write_text("keep\n")
    fake_llm.script(
        tool_turn(call("run_shell_command", command="rm keep.txt")), text("Could not remove it.")
    )
    hooks = {"PreToolUse": [HookMatcher(matcher="Bash", hooks=[guard])]}
    opts = options(cli, work, hooks=hooks, permission_mode="bypassPermissions")
    async with ClaudeSDKClient(opts) as client:
        await client.query("remove keep.txt")
        messages = await collect(client.receive_response())
    assert (work / "keep.txt").exists()
    assert seen[0]["hook_event_name"] == "PreToolUse"
    assert seen[0]["tool_name"] == "run_shell_command"
    errors = [
        str(block.content)
        for m in messages
        if isinstance(m, UserMessage) and isinstance(m.content, list)
        for block in m.content
        if block.is_error
    ]
    assert len(errors) == 1 and "No rm from the agent." in errors[0]
