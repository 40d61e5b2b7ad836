"""The approval policy: modes, rules, suggestions, what headless tells the model, the REPL's
"always" answer."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from qwen_code.agent.approval import (
    Allow,
    ApprovalRequest,
    Ask,
    Deny,
    HeadlessApprover,
    decide,
    parse_rules,
    suggest_rule,
)
from qwen_code.agent.permission_rules import parse_rule
from qwen_code.config import add_allow_rule
from tests.fakeserver import FakeLLM, call, text, tool_turn
from tests.helpers import run_qwen_code, tool_call


@pytest.mark.parametrize(
    ("mode", "kind", "expected"),
    [
        ("plan", "read", Allow),
        ("plan", "think", Allow),
        ("plan", "edit", Deny),
        ("plan", "execute", Deny),
        ("default", "read", Allow),
        ("default", "edit", Ask),
        ("default", "execute", Ask),
        ("auto-edit", "edit", Allow),
        ("auto-edit", "execute", Ask),
        ("yolo", "edit", Allow),
        ("yolo", "execute", Allow),
    ],
)
def test_modes(mode: str, kind: str, expected: type) -> None:
    assert isinstance(decide(mode, kind, tool_call("x")), expected)  # type: ignore[arg-type]


def test_plan_mode_denies_even_allowed_tools() -> None:
    rules = parse_rules(["edit"])
    assert isinstance(decide("plan", "edit", tool_call("edit"), rules), Deny)


def test_tool_name_and_alias_rules() -> None:
    rules = parse_rules(["Edit", "Bash(git status)", "Bash(git diff *)"])
    assert isinstance(decide("default", "edit", tool_call("write_file"), rules), Allow)
    assert isinstance(decide("default", "edit", tool_call("edit"), rules), Allow)
    exact = tool_call("run_shell_command", command="git status")
    assert isinstance(decide("default", "execute", exact, rules), Allow)
    longer = tool_call("run_shell_command", command="git status --short")  # Bash(x) is exact
    assert isinstance(decide("default", "execute", longer, rules), Ask)
    star = tool_call("run_shell_command", command="git diff --stat")
    assert isinstance(decide("default", "execute", star, rules), Allow)


@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        ("git status", True),
        ("git status && git diff", False),
        ("git status; rm -rf /", False),
        ("git status | cat", False),
        ("git statusx", False),
        ("echo $(git status)", False),
        ("git   status  -s", True),
        ("git status && git status -s", True),
        ("git status > .git/config", False),
        ("git status 2>&1", True),
    ],
)
def test_shell_prefix_rules_check_every_subcommand(command: str, allowed: bool) -> None:
    rules = parse_rules(["run_shell_command(git status)"])
    decision = decide("default", "execute", tool_call("run_shell_command", command=command), rules)
    assert isinstance(decision, Allow) is allowed


def test_comma_separated_rules() -> None:
    rules = parse_rules(["edit,run_shell_command(npm test, --watch)"])
    assert [r.tools for r in rules] == [("edit",), ("run_shell_command",)]
    assert rules[1].specifier == "npm test, --watch"


async def test_headless_approver_denies_with_a_message_for_the_model() -> None:
    approver = HeadlessApprover("default")
    shell = tool_call("run_shell_command", command="npm test")
    request = ApprovalRequest(
        call=shell, kind="execute", reason="runs a command", suggested_rule=suggest_rule(shell)
    )
    answer = await approver(request)
    assert not answer.approved
    assert "run_shell_command" in answer.message
    assert "--yolo" in answer.message
    assert "--allowed-tools 'Bash(npm test *)'" in answer.message


async def test_headless_suggests_the_exact_rule_not_the_tool() -> None:
    shell = tool_call("run_shell_command", command="rm -rf build && ls -la")
    request = ApprovalRequest(
        call=shell, kind="execute", reason="runs a command", suggested_rule=suggest_rule(shell)
    )
    message = (await HeadlessApprover("default")(request)).message
    assert "--allowed-tools 'Bash(rm -rf build && ls -la)'" in message
    assert "--allowed-tools run_shell_command" not in message
    edit = ApprovalRequest(
        call=tool_call("edit"), kind="edit", reason="edits", suggested_rule="edit"
    )
    message = (await HeadlessApprover("default")(edit)).message
    assert "--approval-mode auto-edit" in message and "--allowed-tools edit" in message


@pytest.mark.parametrize(
    ("command", "rule"),
    [
        ("npm test -- --watch", "Bash(npm test *)"),
        ("npm test", "Bash(npm test *)"),
        ("python3 -m pytest -q", "Bash(python3 -m pytest *)"),
        ("pytest tests/test_x.py", "Bash(pytest *)"),
        ("cargo test --release", "Bash(cargo test *)"),
        ("go vet ./...", "Bash(go vet *)"),
        ("make test", "Bash(make test *)"),
        ("ls -la", "Bash(ls *)"),
        ("ls *.py", "Bash(ls *)"),
        ("pwd", "Bash(pwd *)"),
        ("echo one", "Bash(echo *)"),
        ("git status --short", "Bash(git status *)"),
        # everything else: exactly what was shown
        ("git status && git diff", "Bash(git status && git diff)"),
        ("git -C sub status", "Bash(git -C sub status)"),
        ("git diff --output=x", "Bash(git diff --output=x)"),
        ("rm -rf build && ls -la", "Bash(rm -rf build && ls -la)"),
        ("rm -rf build", "Bash(rm -rf build)"),
        ("npm test > log.txt", "Bash(npm test > log.txt)"),
        ("make", "Bash(make)"),
        ("cat notes.txt", "Bash(cat notes.txt)"),
        # no rule can say "exactly this": nothing to remember
        ("rm *.o", ""),
        ("rm -rf *", ""),
        ("", ""),
    ],
)
def test_suggested_rules_are_never_broader_than_the_call(command: str, rule: str) -> None:
    shell = tool_call("run_shell_command", command=command)
    assert suggest_rule(shell) == rule
    if rule:
        parsed = parse_rule(rule)
        assert parsed is not None
        assert isinstance(decide("default", "execute", shell, [parsed]), Allow)


def test_suggested_rule_for_other_tools_is_the_tool() -> None:
    assert suggest_rule(tool_call("edit", file_path="a")) == "edit"


def test_the_exact_suggestion_does_not_cover_other_rm_commands() -> None:
    rules = parse_rules([suggest_rule(tool_call("run_shell_command", command="rm -rf build"))])
    for other in ("rm -rf /", "rm -rf build ~", "rm -rf build; rm -rf /"):
        shell = tool_call("run_shell_command", command=other)
        assert isinstance(decide("default", "execute", shell, rules), Ask), other


def test_add_allow_rule_writes_permissions_allow(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    env = {"QWEN_HOME": str(tmp_path / "home")}
    path = add_allow_rule("Bash(npm test *)", "project", cwd=root, env=env)
    add_allow_rule("Bash(npm test *)", "project", cwd=root, env=env)
    assert path == root / ".qwen" / "settings.json"
    assert json.loads(path.read_text()) == {"permissions": {"allow": ["Bash(npm test *)"]}}


async def test_the_repl_shows_and_saves_the_exact_rule(tmp_path: Path) -> None:
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput
    from rich.console import Console

    from qwen_code.ui.approver import InteractiveApprover

    root = tmp_path / "proj"
    root.mkdir()
    console = Console(record=True, file=io.StringIO(), width=1000, soft_wrap=True)
    shell = tool_call("run_shell_command", command="rm -rf build && ls -la")
    request = ApprovalRequest(
        call=shell, kind="execute", reason="runs a command", suggested_rule=suggest_rule(shell)
    )
    with create_pipe_input() as pipe:
        approver = InteractiveApprover(console, cwd=root, input=pipe, output=DummyOutput())
        pipe.send_text("p")
        answer = await approver(request)
    assert answer.approved and answer.remember == "project"
    assert answer.rule == "Bash(rm -rf build && ls -la)"
    shown = console.export_text()
    assert "always allow Bash(rm -rf build && ls -la)" in shown
    saved = json.loads((root / ".qwen" / "settings.json").read_text())
    assert saved == {"permissions": {"allow": ["Bash(rm -rf build && ls -la)"]}}


async def test_the_repl_offers_no_always_for_protected_paths(tmp_path: Path) -> None:
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput
    from rich.console import Console

    from qwen_code.ui.approver import InteractiveApprover

    console = Console(record=True, file=io.StringIO(), width=1000, soft_wrap=True)
    request = ApprovalRequest(
        call=tool_call("write_file", file_path=".git/config", content="x"),
        kind="edit",
        reason=".git/config is a protected path: git runs …",
        suggested_rule="write_file",
        source="protected",
    )
    with create_pipe_input() as pipe:
        approver = InteractiveApprover(console, cwd=tmp_path, input=pipe, output=DummyOutput())
        pipe.send_text("p")
        answer = await approver(request)
    assert answer.approved and answer.remember is None
    assert not (tmp_path / ".qwen").exists()
    assert "protected paths are asked about every time" in console.export_text()


async def test_a_rule_with_a_comma_is_suggested_for_the_settings_not_the_flag() -> None:
    shell = tool_call("run_shell_command", command='git commit -m "a, b"')
    rule = suggest_rule(shell)
    assert rule == 'Bash(git commit -m "a, b")'
    request = ApprovalRequest(call=shell, kind="execute", reason="r", suggested_rule=rule)
    message = (await HeadlessApprover("default")(request)).message
    assert f"the rule {rule} in permissions.allow" in message
    assert "--allowed-tools" not in message  # the flag splits on commas


def test_the_runner_holds_the_whole_policy(tmp_path: Path) -> None:
    """Allow, ask and deny rules live in `runner.permissions` (custom commands use it too)."""
    from qwen_code.agent.permissions import Permissions
    from qwen_code.agent.tool_runner import ToolRunner
    from qwen_code.tools.base import ToolContext
    from qwen_code.tools.registry import builtin_registry
    from qwen_code.tools.workspace import Workspace

    runner = ToolRunner(
        registry=builtin_registry(),
        ctx=ToolContext(workspace=Workspace(root=tmp_path)),
        approver=HeadlessApprover("default"),
        permissions=Permissions(allow=parse_rules(["Bash(ls *)"])),
    )
    assert runner.permissions.workspace is runner.ctx.workspace
    runner.permissions.extend(parse_rules(["Bash(pwd)"]))
    runner.permissions.deny.extend(parse_rules(["Bash(ls -R *)"]))
    for command, expected in (("ls -la", Allow), ("pwd", Allow), ("ls -R /", Deny)):
        shell = tool_call("run_shell_command", command=command)
        assert isinstance(decide("default", "execute", shell, runner.permissions), expected)


def test_headless_plan_mode_says_plan_mode_refuses_changes(
    project: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        tool_turn(call("write_file", file_path="new.txt", content="x")), text("Here is the plan.")
    )
    args = ("-p", "add new.txt", "--approval-mode", "plan", "--allowed-tools", "write_file")
    result = run_qwen_code(project, *args)
    assert result.returncode == 0, result.stderr
    assert "plan mode runs only read-only tools, whatever the allow rules" in result.stderr
    assert "--allowed-tools" not in result.stderr and "need approval" not in result.stderr
    assert not (project / "new.txt").exists()
