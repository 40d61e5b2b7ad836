"""MCP servers in a session, for real: the SDK's servers in tests/mcp_servers/ over stdio,
streamable HTTP and SSE, a scripted model calling their tools headless and in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qwen_code.agent.approval import ApprovalAnswer
from qwen_code.config import qwen_home
from qwen_code.trust import save_decision
from tests.fakeserver import FakeLLM, call, text, tool_turn
from tests.helpers import (
    RecordingApprover,
    bodies,
    make_repo,
    run_qwen_code,
    session_for,
    write_json,
)
from tests.mcp_helpers import http_server, stdio_config


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"README.md": "hello\n"})


def user_servers(servers: dict[str, Any], **more: Any) -> None:
    write_json(qwen_home() / "settings.json", {"mcpServers": servers, **more})


def tool_results(fake: FakeLLM) -> list[str]:
    return [m["content"] for m in bodies(fake)[-1]["messages"] if m["role"] == "tool"]


def calls(fake: FakeLLM, *pairs: tuple[str, dict[str, Any]]) -> None:
    fake.script(*(tool_turn(call(name, **args)) for name, args in pairs), text("done"))


def init_message(stdout: str) -> dict[str, Any]:
    first = json.loads(stdout.splitlines()[0])
    assert first["subtype"] == "init"
    return first


# --- tools over every transport --------------------------------------------------------------


def test_stdio_tools_are_called_and_init_lists_servers(repo: Path, fake_llm: FakeLLM) -> None:
    user_servers(
        {
            "tools": stdio_config("tools_server"),
            "crashy": stdio_config("crash_server"),
            "stuck": stdio_config("hang_server", discoveryTimeoutMs=1500),
        }
    )
    calls(
        fake_llm, ("mcp__tools__echo", {"text": "hi there"}), ("mcp__tools__add", {"a": 2, "b": 3})
    )
    result = run_qwen_code(repo, "-p", "go", "--yolo", "-o", "stream-json")
    assert result.returncode == 0, result.stderr
    init = init_message(result.stdout)
    assert {"name": "tools", "status": "connected"} in init["mcp_servers"]
    assert {"name": "crashy", "status": "failed"} in init["mcp_servers"]
    assert {"name": "stuck", "status": "timeout"} in init["mcp_servers"]
    assert "mcp__tools__echo" in init["tools"] and "mcp__tools__lookup" in init["tools"]
    assert tool_results(fake_llm) == ["hi there", "5"]
    assert "MCP server 'crashy' failed to start" in result.stderr
    assert "MCP server 'stuck' timed out" in result.stderr
    sent = {t["function"]["name"]: t["function"] for t in bodies(fake_llm)[0]["tools"]}
    assert sent["mcp__tools__add"]["parameters"]["type"] == "object"
    assert "MCP server: tools" in sent["mcp__tools__add"]["description"]


@pytest.mark.parametrize("kind", ["http", "sse"])
def test_remote_servers_over_http_and_sse(repo: Path, fake_llm: FakeLLM, kind: str) -> None:
    with http_server(kind) as url:
        key = "httpUrl" if kind == "http" else "url"
        user_servers({"remote": {key: url, "headers": {"Authorization": "Bearer $MCP_TOKEN"}}})
        calls(fake_llm, ("mcp__remote__echo", {"text": f"over {kind}"}))
        env = {**os.environ, "MCP_TOKEN": "secret-token-123"}
        result = run_qwen_code(repo, "-p", "go", "--yolo", env=env)
    assert result.returncode == 0, result.stderr
    assert tool_results(fake_llm) == [f"over {kind}"]
    stored = "".join(p.read_text(errors="replace") for p in qwen_home().rglob("*.jsonl"))
    assert "secret-token-123" not in stored


def test_results_map_errors_and_pictures(repo: Path, fake_llm: FakeLLM) -> None:
    user_servers({"tools": stdio_config("tools_server")})
    calls(fake_llm, ("mcp__tools__fail", {"message": "no such row"}), ("mcp__tools__picture", {}))
    result = run_qwen_code(repo, "-p", "go", "--yolo", "-o", "stream-json")
    assert result.returncode == 0, result.stderr
    failed, picture = tool_results(fake_llm)
    assert "no such row" in failed
    events = [json.loads(line) for line in result.stdout.splitlines()]
    errors = [
        block["is_error"]
        for e in events
        if e["type"] == "user"
        for block in e["message"]["content"]
        if block["type"] == "tool_result"
    ]
    assert errors == [True, False]
    assert "[image (image/png" in picture


def test_env_values_expand_and_include_exclude_filter(repo: Path, fake_llm: FakeLLM) -> None:
    config = stdio_config(
        "tools_server",
        env={"GREETING": "${SOURCE_VALUE}-suffix"},
        includeTools=["env_value", "echo", "add"],
        excludeTools=["add"],
    )
    user_servers({"tools": config})
    calls(fake_llm, ("mcp__tools__env_value", {"name": "GREETING"}))
    env = {**os.environ, "SOURCE_VALUE": "expanded"}
    result = run_qwen_code(repo, "-p", "go", "--yolo", "-o", "stream-json", env=env)
    assert result.returncode == 0, result.stderr
    assert tool_results(fake_llm) == ["expanded-suffix"]
    mcp_tools = [t for t in init_message(result.stdout)["tools"] if t.startswith("mcp__")]
    assert sorted(mcp_tools) == ["mcp__tools__echo", "mcp__tools__env_value"]


# --- approvals -------------------------------------------------------------------------------


def test_mcp_tools_need_approval_unless_read_only_trusted_or_allowed(
    repo: Path, tmp_path: Path, fake_llm: FakeLLM
) -> None:
    marker = tmp_path / "called.txt"
    user_servers({"tools": stdio_config("tools_server")})
    calls(
        fake_llm,
        ("mcp__tools__write_marker", {"path": str(marker)}),
        ("mcp__tools__lookup", {"key": "answer"}),
    )
    result = run_qwen_code(repo, "-p", "go", "-o", "json")
    denied, looked_up = tool_results(fake_llm)
    assert not marker.exists()
    assert "needs approval" in denied
    assert "Error" not in looked_up and "approval" not in looked_up
    assert json.loads(result.stdout)["permission_denials"][0]["tool_name"] == (
        "mcp__tools__write_marker"
    )


@pytest.mark.parametrize(
    ("extra", "args"),
    [
        ({"trust": True}, ()),
        ({}, ("--allowed-tools", "mcp__tools")),
        ({}, ("--allowed-tools", "mcp__tools__write_marker")),
    ],
)
def test_trusted_servers_and_allow_rules_skip_approval(
    repo: Path, tmp_path: Path, fake_llm: FakeLLM, extra: dict[str, Any], args: tuple[str, ...]
) -> None:
    marker = tmp_path / "called.txt"
    user_servers({"tools": stdio_config("tools_server", **extra)})
    calls(fake_llm, ("mcp__tools__write_marker", {"path": str(marker)}))
    result = run_qwen_code(repo, "-p", "go", *args)
    assert result.returncode == 0, result.stderr
    assert marker.exists()


# --- project servers: trust and approval --------------------------------------------------


def _project_server(repo: Path, marker: Path, *, claude: bool = False) -> None:
    config = stdio_config("tools_server", env={"MCP_TEST_MARKER": str(marker)})
    if claude:
        write_json(repo / ".mcp.json", {"mcpServers": {"proj": {"type": "stdio", **config}}})
    else:
        write_json(repo / ".qwen" / "settings.json", {"mcpServers": {"proj": config}})


@pytest.mark.parametrize("claude", [False, True])
def test_an_untrusted_repository_cannot_start_its_servers(
    repo: Path, tmp_path: Path, fake_llm: FakeLLM, claude: bool
) -> None:
    marker = tmp_path / "started.txt"
    _project_server(repo, marker, claude=claude)
    fake_llm.script(text("done"))
    result = run_qwen_code(repo, "-p", "go", "--yolo", "-o", "stream-json")
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert init_message(result.stdout)["mcp_servers"] == []


@pytest.mark.parametrize("claude", [False, True])
def test_trust_workspace_starts_project_servers(
    repo: Path, tmp_path: Path, fake_llm: FakeLLM, claude: bool
) -> None:
    marker = tmp_path / "started.txt"
    _project_server(repo, marker, claude=claude)
    calls(fake_llm, ("mcp__proj__echo", {"text": "from the project"}))
    result = run_qwen_code(repo, "-p", "go", "--yolo", "--trust-workspace")
    assert result.returncode == 0, result.stderr
    assert marker.exists()
    assert tool_results(fake_llm) == ["from the project"]


def test_a_trusted_folder_still_needs_each_server_approved_once(
    repo: Path, tmp_path: Path, fake_llm: FakeLLM
) -> None:
    marker = tmp_path / "started.txt"
    _project_server(repo, marker)
    save_decision(repo, "TRUST_FOLDER", qwen_home(), os.environ)
    fake_llm.script(text("done"))
    headless = run_qwen_code(repo, "-p", "go", "--yolo")
    assert not marker.exists()
    assert "Project MCP server 'proj' was not started" in headless.stderr


async def test_approving_a_project_server_is_remembered_for_its_command(
    repo: Path, tmp_path: Path, fake_llm: FakeLLM
) -> None:
    marker = tmp_path / "started.txt"
    _project_server(repo, marker)
    save_decision(repo, "TRUST_FOLDER", qwen_home(), os.environ)
    approver = RecordingApprover(ApprovalAnswer(approved=True))
    session = await session_for(repo, approver)
    await session.aclose()
    assert marker.exists()
    [request] = approver.requests
    assert request.source == "server" and "tools_server.py" in request.reason
    again = RecordingApprover(ApprovalAnswer(approved=True))
    session = await session_for(repo, again)
    assert session.mcp is not None and session.mcp.statuses()[0].status == "connected"
    await session.aclose()
    assert again.requests == []
    config = stdio_config("tools_server", "--changed", env={"MCP_TEST_MARKER": str(marker)})
    write_json(repo / ".qwen" / "settings.json", {"mcpServers": {"proj": config}})
    changed = RecordingApprover(ApprovalAnswer(approved=False))
    session = await session_for(repo, changed)
    assert session.mcp is not None and session.mcp.statuses()[0].status == "disabled"
    await session.aclose()
    assert len(changed.requests) == 1


# --- a server that dies, start-up cost ------------------------------------------------------


async def test_a_server_that_dies_is_reported_and_restarted_on_next_use(
    repo: Path, fake_llm: FakeLLM
) -> None:
    user_servers({"dying": stdio_config("dying_server")})
    calls(fake_llm, ("mcp__dying__die", {}), ("mcp__dying__ok", {}))
    session = await session_for(repo, yolo=True)
    try:
        async for _ in session.agent.run("go"):
            pass
    finally:
        await session.aclose()
    died, ok = tool_results(fake_llm)
    assert "failed the die call" in died
    assert ok == "ok"


def test_no_server_configured_imports_no_mcp_sdk(repo: Path, fake_llm: FakeLLM) -> None:
    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from tests.helpers import session_for\n"
        "async def main():\n"
        f"    session = await session_for(Path({str(repo)!r}))\n"
        "    await session.aclose()\n"
        "asyncio.run(main())\n"
        "print('mcp' in sys.modules, 'mcp_types' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "False False", done.stderr


async def test_a_changed_tool_list_is_registered_again(repo: Path, fake_llm: FakeLLM) -> None:
    user_servers({"chg": stdio_config("changing_server")})
    calls(fake_llm, ("mcp__chg__unlock", {}), ("mcp__chg__secret", {}))
    session = await session_for(repo, yolo=True)
    try:
        assert "mcp__chg__secret" not in session.registry.names()
        async for _ in session.agent.run("go"):
            pass
        assert "mcp__chg__secret" in session.registry.names()
    finally:
        await session.aclose()
    assert tool_results(fake_llm) == ["unlocked", "the secret is 42"]
