"""The sandbox in a session: when `auto` turns it on, escaping it, the fallback, settings.

End to end where it matters (`qwen-code -p` as a subprocess against the scripted model),
in-process sessions for the interactive cases.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from qwen_code.agent.approval import ApprovalAnswer
from qwen_code.config import Flags, load_settings
from tests.fakeserver import FakeLLM, call, text, tool_turn
from tests.helpers import (
    RecordingApprover,
    bodies,
    make_repo,
    output,
    repl_in,
    run_qwen_code,
    session_for,
    write_json,
)
from tests.sandbox_helpers import needs_sandbox

PROBE = 'echo "sandbox=${QWEN_CODE_SANDBOX:-none}"'


def tool_results(fake: FakeLLM) -> list[str]:
    """Every tool result the model was sent, in order (from the last request)."""
    messages = bodies(fake)[-1]["messages"]
    return [m["content"] for m in messages if m["role"] == "tool"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"README.md": "hello\n"})


def script(fake: FakeLLM, *commands: str, **arguments: object) -> None:
    calls = [call("run_shell_command", command=c, **arguments) for c in commands]
    fake.script(*(tool_turn(c) for c in calls), text("done"))


# --- auto -----------------------------------------------------------------------------------


@needs_sandbox
def test_auto_sandboxes_a_yolo_run_and_the_model_hears_what_was_blocked(
    repo: Path, fake_llm: FakeLLM
) -> None:
    # Not under /tmp: inside the sandbox /tmp is a private directory, so a write there
    # "works" without reaching the host's /tmp.
    target = Path("/var/tmp") / f"qwen-code-sandbox-{uuid.uuid4().hex}.txt"
    script(fake_llm, PROBE, f"echo pwned > {target}")
    result = run_qwen_code(repo, "-p", "go", "--yolo")
    written = target.exists()
    target.unlink(missing_ok=True)
    assert result.returncode == 0, result.stderr
    probe, write = tool_results(fake_llm)
    assert "sandbox=1" in probe
    assert not written
    assert "Blocked by the sandbox" in write and str(target) in write


@needs_sandbox
def test_auto_sandboxes_a_headless_run_whose_rules_let_commands_through(
    repo: Path, fake_llm: FakeLLM
) -> None:
    script(fake_llm, PROBE)
    result = run_qwen_code(repo, "-p", "go", "--allowed-tools", "run_shell_command(echo *)")
    assert result.returncode == 0, result.stderr
    assert "sandbox=1" in tool_results(fake_llm)[0]


async def test_auto_stays_off_when_the_user_approves_each_command(
    repo: Path, fake_llm: FakeLLM
) -> None:
    script(fake_llm, PROBE)
    approver = RecordingApprover(ApprovalAnswer(approved=True))
    session = await session_for(repo, approver)
    try:
        assert session.tool_ctx.sandbox is not None
        assert session.tool_ctx.sandbox.mode_for(session.runner.mode) == "off"
        async for _ in session.agent.run("go"):
            pass
    finally:
        await session.aclose()
    assert "sandbox=none" in tool_results(fake_llm)[0]


@needs_sandbox
async def test_switching_to_yolo_mid_session_turns_auto_on(repo: Path, fake_llm: FakeLLM) -> None:
    script(fake_llm, PROBE)
    session = await session_for(repo, RecordingApprover(ApprovalAnswer(approved=True)))
    try:
        session.runner.set_mode("yolo")
        async for _ in session.agent.run("go"):
            pass
    finally:
        await session.aclose()
    assert "sandbox=1" in tool_results(fake_llm)[0]


@needs_sandbox
def test_an_untrusted_project_cannot_turn_the_sandbox_off(
    repo: Path, tmp_path: Path, fake_llm: FakeLLM
) -> None:
    write_json(repo / ".qwen" / "settings.json", {"tools": {"sandbox": "off"}})
    script(fake_llm, PROBE)
    result = run_qwen_code(repo, "-p", "go", "--yolo")
    assert result.returncode == 0, result.stderr
    assert "sandbox=1" in tool_results(fake_llm)[0]


# --- escaping the sandbox -------------------------------------------------------------------


@needs_sandbox
def test_running_outside_the_sandbox_is_refused_headless_even_in_yolo(
    repo: Path, tmp_path: Path, fake_llm: FakeLLM
) -> None:
    target = tmp_path / "escaped.txt"
    script(fake_llm, f"echo out > {target}", dangerously_disable_sandbox=True)
    result = run_qwen_code(repo, "-p", "go", "--yolo", "-o", "json")
    assert not target.exists()
    seen = tool_results(fake_llm)[0]
    assert "outside the sandbox" in seen and "cannot ask" in seen
    assert json.loads(result.stdout)["permission_denials"]
    assert "outside the sandbox need an interactive session" in result.stderr


@needs_sandbox
async def test_running_outside_the_sandbox_asks_the_user_every_time(
    repo: Path, tmp_path: Path, fake_llm: FakeLLM
) -> None:
    target = tmp_path / "escaped.txt"
    script(fake_llm, f"echo out > {target}", dangerously_disable_sandbox=True)
    approver = RecordingApprover(ApprovalAnswer(approved=True))
    session = await session_for(repo, approver, yolo=True)
    try:
        async for _ in session.agent.run("go"):
            pass
    finally:
        await session.aclose()
    assert [r.source for r in approver.requests] == ["escalation"]
    assert "outside the sandbox" in approver.requests[0].reason
    assert target.read_text() == "out\n"


# --- when the sandbox cannot be had ---------------------------------------------------------


def test_auto_says_once_that_commands_run_unsandboxed(
    repo: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QWEN_CODE_BWRAP", "/nonexistent/bwrap")
    script(fake_llm, PROBE, PROBE)
    result = run_qwen_code(repo, "-p", "go", "--yolo")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("Commands run unsandboxed") == 1
    assert "bubblewrap" in result.stderr
    assert all("sandbox=none" in r for r in tool_results(fake_llm))


def test_an_explicit_sandbox_refuses_commands_it_cannot_sandbox(
    repo: Path, tmp_path: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QWEN_CODE_BWRAP", "/nonexistent/bwrap")
    target = tmp_path / "ran.txt"
    script(fake_llm, f"touch {target}")
    result = run_qwen_code(repo, "-p", "go", "--yolo", "--sandbox", "workspace-write")
    assert result.returncode == 0, result.stderr
    assert not target.exists()
    assert "was not run" in tool_results(fake_llm)[0]
    assert "--sandbox off" in tool_results(fake_llm)[0]


# --- settings, flags, /sandbox --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        (True, "workspace-write"),
        (False, "off"),
        ("docker", "workspace-write"),
        ("read-only", "read-only"),
        ({"mode": "off", "network": ["pypi.org"]}, "off"),
    ],
)
def test_tools_sandbox_accepts_qwen_codes_forms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: object, mode: str
) -> None:
    home = tmp_path / "qwen-home"
    write_json(home / "settings.json", {"tools": {"sandbox": value}})
    settings = load_settings(cwd=tmp_path, home=home)
    assert settings.tools.sandbox.mode == mode


def test_flag_env_and_settings_merge(tmp_path: Path) -> None:
    home = tmp_path / "qwen-home"
    write_json(home / "settings.json", {"tools": {"sandbox": {"network": ["pypi.org"]}}})
    env = {"QWEN_SANDBOX": "true"}
    settings = load_settings(cwd=tmp_path, home=home, env=env)
    assert settings.tools.sandbox.mode == "workspace-write"
    assert settings.tools.sandbox.network == ["pypi.org"]
    flags = Flags(sandbox="read-only")
    settings = load_settings(flags, cwd=tmp_path, home=home, env=env)
    assert settings.tools.sandbox.mode == "read-only"
    assert settings.tools.sandbox.network == ["pypi.org"]


def test_a_bare_sandbox_flag_means_workspace_write() -> None:
    from qwen_code.cli import _optional_sandbox_value

    assert _optional_sandbox_value(["-s", "-p", "x"]) == ["-s", "workspace-write", "-p", "x"]
    assert _optional_sandbox_value(["--sandbox", "fix it"]) == [
        "--sandbox",
        "workspace-write",
        "fix it",
    ]
    assert _optional_sandbox_value(["--sandbox", "off"]) == ["--sandbox", "off"]
    assert _optional_sandbox_value(["--sandbox"]) == ["--sandbox", "workspace-write"]


def test_a_bad_sandbox_mode_is_a_clear_error(repo: Path) -> None:
    result = run_qwen_code(repo, "-p", "go", "--sandbox=bogus")
    assert result.returncode != 0
    assert "--sandbox" in result.stderr and "Traceback" not in result.stderr


async def test_the_sandbox_command_shows_and_changes_the_mode(
    project: Path, fake_llm: FakeLLM
) -> None:
    async with repl_in(project) as (repl, _pipe):
        await repl.handle("/sandbox")
        shown = output(repl)
        assert "Sandbox: auto" in shown and "'default' mode" in shown
        assert "network: none" in shown
        await repl.handle("/sandbox read-only")
        assert "Sandbox: read-only" in output(repl)
        assert repl.session.tool_ctx.sandbox is not None
        assert repl.session.tool_ctx.sandbox.setting == "read-only"
        await repl.handle("/sandbox bogus")
        assert "Usage: /sandbox" in output(repl)


@needs_sandbox
async def test_leftovers_of_a_networked_command_are_adopted_too(
    repo: Path, tmp_path: Path, fake_llm: FakeLLM
) -> None:
    """With an allow-listed network the bridge sits between bwrap and the shell: the
    command still counts as finished while what it started runs on."""
    from tests.sandbox_helpers import running

    marker = f"{os.getpid()}.57721"
    script(fake_llm, f"sleep {marker} & echo started")
    session = await session_for(repo, sandbox="workspace-write", yolo=True)
    assert session.tool_ctx.sandbox is not None
    session.tool_ctx.sandbox.network = ("registry.test",)
    try:
        async for _ in session.agent.run("go"):
            pass
        assert running(marker), tool_results(fake_llm)
    finally:
        await session.aclose()
    assert "still running in process group" in tool_results(fake_llm)[0]
    assert running(marker) == []


@needs_sandbox
async def test_the_footer_says_when_commands_are_sandboxed(
    project: Path, fake_llm: FakeLLM
) -> None:
    async with repl_in(project) as (repl, _pipe):
        assert "sandbox" not in repl.toolbar()
        repl.session.runner.set_mode("yolo")
        assert "yolo (shift+tab) · sandboxed │" in repl.toolbar()
        await repl.handle("/sandbox off")
        assert "sandbox" not in repl.toolbar()
