"""MCP in the REPL, with the real servers of tests/mcp_servers/: `/mcp` and its
subcommands, server prompts as `/mcp__SERVER__PROMPT` commands, `@server:uri` resources."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from mcp_types import BlobResourceContents
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import PipeInput

from qwen_code.agent.approval import ApprovalAnswer
from qwen_code.config import qwen_home
from qwen_code.custom_commands import Discovery
from qwen_code.mcp.config import McpServerConfig, ServerEntry
from qwen_code.mcp.manager import McpManager
from qwen_code.tools.registry import ToolRegistry
from qwen_code.trust import save_decision
from qwen_code.ui import commands, commands_custom, mcp_resources
from qwen_code.ui.completion import ReplCompleter
from qwen_code.ui.mcp_prompts import parse_prompt_args, prompt_command_name, register_prompts
from qwen_code.ui.mcp_resources import BLOCK_END, BLOCK_START, expand_mcp_resources
from qwen_code.ui.repl import Repl
from tests.fakeserver import FakeLLM, text
from tests.helpers import (
    RecordingApprover,
    bodies,
    output,
    repl_in,
    session_for,
    user_message,
    write_json,
)
from tests.mcp_helpers import stdio_config

REVIEW = "mcp__tools__review"


def user_servers(servers: dict[str, Any]) -> None:
    write_json(qwen_home() / "settings.json", {"mcpServers": servers})


@pytest.fixture(autouse=True)
def clean_command_table() -> Any:
    """Leave the shared command table without this module's prompt commands."""
    yield
    register_prompts(None)
    commands_custom.register(Discovery())


@pytest.fixture
async def mcp_repl(project: Path, fake_llm: FakeLLM) -> AsyncIterator[tuple[Repl, PipeInput]]:
    """A REPL with the tools server and a server that fails to start."""
    user_servers({"tools": stdio_config("tools_server"), "crashy": stdio_config("crash_server")})
    async with repl_in(project) as running:
        yield running


# --- /mcp --------------------------------------------------------------------------------------


async def test_no_servers_configured(project: Path) -> None:
    async with repl_in(project) as (r, _):
        await commands.dispatch(r, "/mcp")
        assert "No MCP servers configured (see docs/mcp.md)." in output(r)
        await commands.dispatch(r, "/mcp tools")
        assert "No MCP servers configured" in output(r)
        assert not [n for n in commands.COMMANDS if n.startswith("mcp__")]


async def test_mcp_lists_servers_with_status_counts_and_errors(
    mcp_repl: tuple[Repl, PipeInput],
) -> None:
    r, _ = mcp_repl
    await commands.dispatch(r, "/mcp")
    shown = output(r)
    tools_line = next(line for line in shown.splitlines() if line.strip().startswith("tools "))
    assert "✓ connected" in tools_line and "stdio · user settings" in tools_line
    assert "8 tools · 1 prompt · 1 resource" in tools_line
    crashy_line = next(line for line in shown.splitlines() if line.strip().startswith("crashy"))
    assert "✗ failed" in crashy_line and "tools" not in crashy_line
    assert "error:" in shown and "boom" in shown
    assert f"prompts: /{REVIEW}" in shown


async def test_mcp_tools_and_resources(mcp_repl: tuple[Repl, PipeInput]) -> None:
    r, _ = mcp_repl
    await commands.dispatch(r, "/mcp tools tools")
    shown = output(r)
    assert "tools (8 tools)" in shown
    lines = {line.split()[0]: line for line in shown.splitlines() if line.startswith("  ")}
    assert "Return the text unchanged." in lines["echo"] and "read-only" not in lines["echo"]
    assert "read-only" in lines["lookup"]

    await commands.dispatch(r, "/mcp tools")
    shown = output(r)
    assert "tools (8 tools)" in shown and "crashy: not connected, no tools" in shown

    await commands.dispatch(r, "/mcp resources")
    shown = output(r)
    assert "docs://readme  readme  (text/markdown)" in shown
    assert "paste: @tools:docs://readme" in shown
    assert "crashy: not connected, no resources" in shown

    await commands.dispatch(r, "/mcp tools nosuch")
    assert "No MCP server named 'nosuch'. Configured: tools, crashy." in output(r)
    await commands.dispatch(r, "/mcp frobnicate")
    assert "Unknown /mcp subcommand 'frobnicate'" in output(r)


async def test_mcp_reconnect_and_auth(mcp_repl: tuple[Repl, PipeInput]) -> None:
    r, _ = mcp_repl
    await commands.dispatch(r, "/mcp reconnect tools")
    shown = output(r)
    assert "tools: ✓ connected  8 tools · 1 prompt · 1 resource" in shown
    assert REVIEW in commands.COMMANDS  # registered again on the new connection

    await commands.dispatch(r, "/mcp reconnect crashy")
    shown = output(r)
    assert "crashy: ✗ failed" in shown and "boom" in shown

    await commands.dispatch(r, "/mcp reconnect")
    assert "Usage: /mcp reconnect NAME" in output(r)
    await commands.dispatch(r, "/mcp auth tools")
    assert "runs as a local command: it has no sign-in" in output(r)


async def test_server_text_is_not_read_as_markup(project: Path, fake_llm: FakeLLM) -> None:
    config = stdio_config("tools_server", description="[bold]fancy[/bold] [/oops]")
    user_servers({"tools": config})
    async with repl_in(project) as (r, _):
        await commands.dispatch(r, "/mcp")
        assert "[bold]fancy[/bold] [/oops]" in output(r)
        connection = r.session.mcp.connection("tools")  # type: ignore[union-attr]
        prompt = connection.listing.prompts[0]  # type: ignore[union-attr]
        prompt.description = "Review [/b] the [red]file[/red]"
        register_prompts(r.session.mcp)
        await commands.dispatch(r, "/help")  # /help prints descriptions as text
        assert "MCP: tools · Review [/b] the [red]file[/red]" in output(r)
        await commands.dispatch(r, f"/{REVIEW} help")
        assert "Review [/b] the [red]file[/red]" in output(r)


# --- prompts as slash commands -----------------------------------------------------------------


async def test_prompts_show_in_help_and_completion(mcp_repl: tuple[Repl, PipeInput]) -> None:
    r, _ = mcp_repl
    await commands.dispatch(r, "/help")
    shown = output(r)
    assert f"/{REVIEW}" in shown and "MCP: tools · Ask for a review of a file." in shown
    completer = ReplCompleter(r._command_entries, None)
    found = completer.get_completions(Document("/mcp__"), CompleteEvent(text_inserted=True))
    assert [c.text for c in found] == [f"/{REVIEW}"]
    found = completer.get_completions(Document(f"/{REVIEW} --f"), CompleteEvent())
    assert [c.text for c in found] == ["--file=", "--focus="]
    found = completer.get_completions(Document("/mcp re"), CompleteEvent())
    assert [c.text for c in found] == ["resources", "reconnect"]


async def test_running_a_prompt_sends_its_text(
    mcp_repl: tuple[Repl, PipeInput], fake_llm: FakeLLM
) -> None:
    r, _ = mcp_repl
    fake_llm.script(*(text("ok") for _ in range(4)))
    await r.handle(f"/{REVIEW} app.py")
    assert user_message(fake_llm) == "Please review app.py, focusing on bugs."
    await r.handle(f"/{REVIEW} --file=app.py --focus=style")
    assert user_message(fake_llm) == "Please review app.py, focusing on style."
    await r.handle(f'/{REVIEW} --focus "error handling" "my file.py"')
    assert user_message(fake_llm) == "Please review my file.py, focusing on error handling."
    await r.handle(f"/{REVIEW} a.py naming and tests")
    assert user_message(fake_llm) == "Please review a.py, focusing on naming and tests."


async def test_prompt_help_and_bad_arguments_send_nothing(
    mcp_repl: tuple[Repl, PipeInput], fake_llm: FakeLLM
) -> None:
    r, _ = mcp_repl
    await r.handle(f"/{REVIEW} help")
    shown = output(r)
    assert f"/{REVIEW}  Ask for a review of a file." in shown
    assert "--file=VALUE [--focus=VALUE]" in shown
    assert "--file   required" in shown and "--focus  optional" in shown

    await r.handle(f"/{REVIEW}")
    assert f"/{REVIEW}: Missing required argument(s): --file. Nothing was sent" in output(r)
    await r.handle(f"/{REVIEW} --focus=style")
    assert "Missing required argument(s): --file." in output(r)
    await r.handle(f"/{REVIEW} --colour=red a.py")
    assert "Unknown argument --colour (arguments: --file, --focus)." in output(r)
    await r.handle(f'/{REVIEW} "a.py')
    assert "Cannot read the arguments: No closing quotation." in output(r)
    assert fake_llm.chat_requests == []


async def test_a_server_error_is_one_line_and_sends_nothing(
    mcp_repl: tuple[Repl, PipeInput], fake_llm: FakeLLM
) -> None:
    r, _ = mcp_repl
    connection = r.session.mcp.connection("tools")  # type: ignore[union-attr]
    assert connection is not None
    review = connection.listing.prompts[0]
    # The server's list is stale: it no longer has a prompt it listed.
    connection.listing.prompts.append(review.model_copy(update={"name": "gone"}))
    assert "mcp__tools__gone" in register_prompts(r.session.mcp)
    await r.handle("/mcp__tools__gone --file=a.py")
    shown = output(r)
    assert "The MCP server 'tools' could not give the prompt 'gone': Unknown prompt: gone" in shown
    assert "Traceback" not in shown
    assert fake_llm.chat_requests == []


async def test_prompt_command_names(project: Path) -> None:
    assert prompt_command_name("My Server", "Do.It") == "mcp__my_server__do_it"
    assert prompt_command_name("tools", "review") == REVIEW


def _args(*spec: tuple[str, bool]) -> list[Any]:
    return [SimpleNamespace(name=name, required=required) for name, required in spec]


def test_parse_prompt_args() -> None:
    review = _args(("file", True), ("focus", False))
    assert parse_prompt_args("a.py", review) == {"file": "a.py"}
    assert parse_prompt_args("--focus x a.py", review) == {"focus": "x", "file": "a.py"}
    assert parse_prompt_args("--file=a=b.py", review) == {"file": "a=b.py"}
    assert parse_prompt_args("-- --file", review) == {"file": "--file"}
    assert parse_prompt_args("--file", review) == "--file needs a value."
    assert parse_prompt_args("", []) == {}
    assert parse_prompt_args("x", []) == "This prompt takes no arguments."
    assert parse_prompt_args("--file=a --focus=b c", review) == (
        "This prompt has no argument left for 'c'."
    )
    two = _args(("a", True), ("b", True))
    assert parse_prompt_args("1", two) == "Missing required argument(s): --b."


# --- @server:uri resources ---------------------------------------------------------------------


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[McpManager]:
    entries = [
        ServerEntry(name, McpServerConfig.model_validate(stdio_config(script)), "user")
        for name, script in (("tools", "tools_server"), ("crashy", "crash_server"))
    ]
    started = McpManager(entries, registry=ToolRegistry(), env=os.environ, log_dir=tmp_path)
    await started.start()
    try:
        yield started
    finally:
        await started.aclose()


async def test_resource_text_is_appended_in_a_block(manager: McpManager) -> None:
    message = "Summarise @tools:docs://readme, please."
    expanded, errors = await expand_mcp_resources(message, manager)
    assert errors == []
    assert expanded == (
        f"{message}\n\n{BLOCK_START}\n"
        "Content from @tools:docs://readme (text/markdown):\n"
        "```\n# Readme\nhello from the resource\n```\n"
        f"{BLOCK_END}"
    )


async def test_templates_repeats_and_other_names(manager: McpManager) -> None:
    message = "(@tools:docs://notes/cats) @tools:docs://readme @tools:docs://readme @src:x @nope:y"
    expanded, errors = await expand_mcp_resources(message, manager)
    assert errors == []
    assert expanded.startswith(message + "\n\n")
    assert "Content from @tools:docs://notes/cats (text/plain):\n```\nnotes about cats" in expanded
    assert expanded.count("Content from @tools:docs://readme") == 1
    assert "@src:x" not in expanded.removeprefix(message)
    unchanged = "mail me@tools:docs://readme, or see @nosuch:docs://readme"
    assert await expand_mcp_resources(unchanged, manager) == (unchanged, [])
    assert await expand_mcp_resources("@tools:docs://readme", None) == ("@tools:docs://readme", [])


async def test_unreadable_resources_are_reported(manager: McpManager) -> None:
    expanded, errors = await expand_mcp_resources("@tools:docs://nope and @crashy:a://b", manager)
    assert errors[0] == "@tools:docs://nope: Unknown resource: docs://nope"
    assert errors[1].startswith("@crashy:a://b: ") and "boom" in errors[1]
    assert "[@tools:docs://nope: could not be read: Unknown resource: docs://nope]" in expanded
    assert expanded.endswith(BLOCK_END)


async def test_resource_text_is_capped(
    manager: McpManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mcp_resources, "MAX_RESOURCE_BYTES", 10)
    expanded, errors = await expand_mcp_resources(
        "@tools:docs://readme @tools:docs://notes/x", manager
    )
    assert "```\n# Readme\nh\n```\n[truncated: showing the first 10 of 32 bytes]" in expanded
    assert errors == [
        "@tools:docs://notes/x: not included, the 10-byte limit for resources is reached"
    ]


def test_binary_contents_become_a_note() -> None:
    blob = BlobResourceContents(uri="img://dot", mime_type="image/png", blob="AAECAwQ=")
    ref = mcp_resources.ResourceRef("pics", "img://dot")
    section, error = mcp_resources._section(ref, blob, [100])
    assert section == "[@pics:img://dot: binary resource (image/png, 5 bytes), not included]"
    assert error is None


async def test_an_unapproved_project_server_is_not_started_by_mcp_commands(
    project: Path, tmp_path: Path, fake_llm: FakeLLM
) -> None:
    marker = tmp_path / "started.txt"
    config = stdio_config("tools_server", env={"MCP_TEST_MARKER": str(marker)})
    write_json(project / ".qwen" / "settings.json", {"mcpServers": {"proj": config}})
    save_decision(project, "TRUST_FOLDER", qwen_home(), os.environ)
    denied = RecordingApprover(ApprovalAnswer(approved=False))
    async with repl_in(project, opener=lambda _approver: session_for(project, denied)) as (r, _):
        await commands.dispatch(r, "/mcp")
        shown = output(r)
        assert "○ not approved" in shown and "project settings" in shown
        await commands.dispatch(r, "/mcp reconnect proj")
        assert "was not started (not approved)" in output(r)
        _, errors = await expand_mcp_resources("@proj:docs://readme", r.session.mcp)
        assert errors == [
            "@proj:docs://readme: the MCP server 'proj' was not started (not approved)"
        ]
    assert not marker.exists()


async def test_a_message_with_a_resource_reference_carries_it(
    mcp_repl: tuple[Repl, PipeInput], fake_llm: FakeLLM, project: Path
) -> None:
    """`@server:uri` in a message: the model gets the resource, the user no "no such file"."""
    from tests.fakeserver import call, tool_turn

    r, _ = mcp_repl
    (project / "notes.md").write_text("local notes\n")
    fake_llm.script(text("ok"))
    await r.handle("summarize @tools:docs://readme and @notes.md")
    sent = user_message(fake_llm)
    assert "hello from the resource" in sent and "local notes" in sent
    assert "no such file" not in output(r)
    fake_llm.script(tool_turn(call("mcp__tools__echo", text="via the REPL")), text("done"))
    r.session.runner.set_mode("yolo")
    await r.handle("echo something")
    assert "via the REPL" in str(bodies(fake_llm)[-1]["messages"][-2:])
