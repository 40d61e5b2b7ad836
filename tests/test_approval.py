"""The approval policy: modes, allow rules, shell prefixes."""

from __future__ import annotations

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
from qwen_code.agent.events import ToolCall


def call(name: str, **arguments: object) -> ToolCall:
    return ToolCall(id="c1", name=name, arguments=dict(arguments))


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
    assert isinstance(decide(mode, kind, call("x")), expected)  # type: ignore[arg-type]


def test_plan_mode_denies_even_allowed_tools() -> None:
    rules = parse_rules(["edit"])
    assert isinstance(decide("plan", "edit", call("edit"), rules), Deny)


def test_tool_name_and_alias_rules() -> None:
    rules = parse_rules(["Edit", "Bash(git status)"])
    assert isinstance(decide("default", "edit", call("write_file"), rules), Allow)
    assert isinstance(decide("default", "edit", call("edit"), rules), Allow)
    shell = call("run_shell_command", command="git status --short")
    assert isinstance(decide("default", "execute", shell, rules), Allow)


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
    ],
)
def test_shell_prefix_rules_check_every_subcommand(command: str, allowed: bool) -> None:
    rules = parse_rules(["run_shell_command(git status)"])
    decision = decide("default", "execute", call("run_shell_command", command=command), rules)
    assert isinstance(decision, Allow) is allowed


def test_comma_separated_rules() -> None:
    rules = parse_rules(["edit,run_shell_command(npm test, --watch)"])
    assert [r.tools for r in rules] == [("edit",), ("run_shell_command",)]
    assert rules[1].specifier == "npm test, --watch"


async def test_headless_approver_denies_with_a_message_for_the_model() -> None:
    approver = HeadlessApprover("default")
    request = ApprovalRequest(
        call=call("run_shell_command", command="ls"), kind="execute", reason="runs a command"
    )
    answer = await approver(request)
    assert not answer.approved
    assert "run_shell_command" in answer.message
    assert "--yolo" in answer.message


@pytest.mark.parametrize(
    ("command", "rule"),
    [
        ("npm test -- --watch", "run_shell_command(npm test)"),
        ("git status && git diff", "run_shell_command(git status)"),
        ("python3 -m pytest -q", "run_shell_command(python3 -m pytest)"),
        ("ls -la", "run_shell_command(ls)"),
        ("echo one", "run_shell_command(echo)"),
        ("git -C sub status", "run_shell_command(git)"),
    ],
)
def test_suggested_rules(command: str, rule: str) -> None:
    assert suggest_rule(call("run_shell_command", command=command)) == rule
    assert suggest_rule(call("edit", file_path="a")) == "edit"
