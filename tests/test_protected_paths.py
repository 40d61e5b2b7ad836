"""Protected paths: writes to `.git/`, `.qwen/`, `.claude/`, `.vscode/`, `.envrc`, shell
start-up files and the qwen-code home need the user's own approval in every mode but yolo.

The attack: in auto-edit mode the model wrote `.git/config` (a `core.fsmonitor` command,
run by the next allowed `git status`) and `.qwen/settings.json` (`approvalMode: yolo`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_code.agent.approval import (
    Allow,
    ApprovalAnswer,
    Ask,
    Deny,
    HeadlessApprover,
    Permissions,
    decide,
    parse_rules,
)
from qwen_code.agent.events import ToolCall, ToolResult
from qwen_code.agent.tool_runner import ToolRunner
from qwen_code.tools.base import ToolContext
from qwen_code.tools.registry import builtin_registry
from qwen_code.tools.workspace import Workspace
from tests.helpers import RecordingApprover

PROTECTED = [
    ".git/config",
    ".git/hooks/pre-commit",
    "sub/.git/config",  # a nested repository
    "sub/.git",  # a worktree's or submodule's `.git` file
    ".qwen/settings.json",
    ".qwen/commands/deploy.toml",
    "sub/.qwen/agents/helper.md",
    ".claude/settings.json",
    ".claude/hooks/hook.sh",
    ".vscode/tasks.json",
    ".vscode/settings.json",
    ".envrc",
    "sub/.envrc",
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".profile",
    ".zshrc",
    ".zprofile",
    ".zshenv",
    ".zlogin",
    ".config/fish/config.fish",
    "sub/../.git/config",  # resolved as the tool resolves it
    ".GIT/config",  # the same directory on a case-insensitive file system
]
NOT_PROTECTED = [
    "src/app.py",
    ".gitignore",
    ".gitattributes",
    ".github/workflows/ci.yml",
    "git/config",
    "docs/.qwen.md",
    ".env",
    "bashrc",
]


@pytest.fixture
def root(root: Path) -> Path:
    path = root
    (path / ".git" / "hooks").mkdir(parents=True)
    (path / "sub").mkdir()
    (path / "src").mkdir()
    return path


def write(path: str) -> ToolCall:
    return ToolCall(id="w1", name="write_file", arguments={"file_path": path, "content": "x"})


def edit(path: str) -> ToolCall:
    arguments = {"file_path": path, "old_string": "a", "new_string": "b"}
    return ToolCall(id="e1", name="edit", arguments=arguments)


def policy(root: Path, home: Path | None = None, *rules: str) -> Permissions:
    return Permissions(allow=parse_rules(list(rules)), workspace=Workspace(root=root), home=home)


@pytest.mark.parametrize("path", PROTECTED)
@pytest.mark.parametrize("make", [write, edit])
def test_auto_edit_and_allow_rules_do_not_cover_protected_paths(
    root: Path, path: str, make: object
) -> None:
    call = make(path)  # type: ignore[operator]
    perms = policy(root, None, "Edit", "write_file", "edit")
    for mode in ("default", "auto-edit"):
        decision = decide(mode, "edit", call, perms)  # type: ignore[arg-type]
        assert isinstance(decision, Ask), (mode, path)
        assert decision.source == "protected"
        assert "protected" in decision.reason
    assert isinstance(decide("yolo", "edit", call, perms), Allow)
    assert isinstance(decide("plan", "edit", call, perms), Deny)


@pytest.mark.parametrize("path", NOT_PROTECTED)
def test_ordinary_files_are_not_protected(root: Path, path: str) -> None:
    assert isinstance(decide("auto-edit", "edit", write(path), policy(root)), Allow)


def test_a_symlink_into_git_is_caught(root: Path) -> None:
    (root / "innocent").symlink_to(root / ".git")
    (root / "hooks-link").symlink_to(root / ".git" / "hooks" / "pre-commit")
    for path in ("innocent/config", "hooks-link", str(root / "innocent" / "config")):
        decision = decide("auto-edit", "edit", write(path), policy(root))
        assert isinstance(decision, Ask), path
        assert ".git" in decision.reason


def test_the_qwen_home_inside_the_workspace_is_protected(root: Path) -> None:
    home = root / "tools" / "qwen-home"  # reachable through an include directory
    home.mkdir(parents=True)
    decision = decide(
        "auto-edit", "edit", write("tools/qwen-home/settings.json"), policy(root, home)
    )
    assert isinstance(decision, Ask)
    assert "qwen-code home" in decision.reason


def test_start_up_files_when_the_workspace_is_the_home_directory(tmp_path: Path) -> None:
    home = tmp_path / "home" / "me"
    home.mkdir(parents=True)
    for path in (".bashrc", ".profile", str(home / ".zshrc")):
        assert isinstance(decide("auto-edit", "edit", write(path), policy(home)), Ask), path


def test_paths_outside_the_workspace_are_left_to_the_tool(root: Path, tmp_path: Path) -> None:
    """The tool refuses them in every mode; the policy does not claim them."""
    perms = policy(root)
    assert perms.protected(write(str(tmp_path / ".bashrc"))) is None


def test_allowed_shell_commands_do_not_write_protected_paths(root: Path) -> None:
    perms = policy(root, None, "Bash(cp *)", "Bash(tee *)")
    assert isinstance(decide("default", "execute", _shell("cp a.txt src/b.txt"), perms), Allow)
    for command in ("cp hook .git/hooks/pre-commit", "tee .vscode/tasks.json", "cp x ~/.bashrc"):
        assert isinstance(decide("default", "execute", _shell(command), perms), Ask), command


def _shell(command: str) -> ToolCall:
    return ToolCall(id="s1", name="run_shell_command", arguments={"command": command})


# --- through the runner: headless denies, the REPL asks every time -----------------------------


def runner(root: Path, approver: object, mode: str = "auto-edit", *rules: str) -> ToolRunner:
    return ToolRunner(
        registry=builtin_registry(),
        ctx=ToolContext(workspace=Workspace(root=root), home=root.parent / "qwen-home"),
        approver=approver,  # type: ignore[arg-type]
        mode=mode,  # type: ignore[arg-type]
        permissions=Permissions(allow=parse_rules(list(rules))),
    )


async def results(tools: ToolRunner, *calls: ToolCall) -> list[ToolResult]:
    return [e async for e in tools.run(calls) if isinstance(e, ToolResult)]


async def test_headless_auto_edit_cannot_plant_an_fsmonitor_or_a_yolo_setting(root: Path) -> None:
    (root / ".git" / "config").write_text("[core]\n\tbare = false\n")
    tools = runner(root, HeadlessApprover("auto-edit"), "auto-edit", "Edit")
    attack = [
        write(".git/config"),
        ToolCall(
            id="q1",
            name="write_file",
            arguments={"file_path": ".qwen/settings.json", "content": '{"approvalMode":"yolo"}'},
        ),
        write("src/fine.py"),
    ]
    fsmonitor, settings, fine = await results(tools, *attack)
    assert (root / ".git" / "config").read_text() == "[core]\n\tbare = false\n"
    assert not (root / ".qwen").exists()
    for denied in (fsmonitor, settings):
        assert denied.is_error
        assert "protected" in denied.output
        assert "interactive" in denied.output and "--yolo" in denied.output
        assert "--allowed-tools" not in denied.output  # an allow rule would not help
    assert not fine.is_error
    assert (root / "src" / "fine.py").read_text() == "x"


async def test_the_user_approves_each_protected_write_and_always_does_not_stick(
    root: Path,
) -> None:
    approver = RecordingApprover(ApprovalAnswer(approved=True, remember="session"))
    tools = runner(root, approver)
    await results(tools, write(".vscode/tasks.json"))
    assert (root / ".vscode" / "tasks.json").read_text() == "x"
    [request] = approver.requests
    assert request.source == "protected" and not request.rememberable
    assert ".vscode" in request.reason
    await results(tools, write(".vscode/tasks.json"))
    assert len(approver.requests) == 2  # asked again
    assert tools.permissions.allow == []  # nothing was remembered


async def test_yolo_writes_protected_paths(root: Path) -> None:
    approver = RecordingApprover(ApprovalAnswer(approved=False))
    tools = runner(root, approver, "yolo")
    [result] = await results(tools, write(".envrc"))
    assert not result.is_error and approver.requests == []
    assert (root / ".envrc").read_text() == "x"


async def test_plan_mode_still_refuses(root: Path) -> None:
    approver = RecordingApprover(ApprovalAnswer(approved=True))
    [result] = await results(runner(root, approver, "plan", "Edit"), write(".git/config"))
    assert result.is_error and "Plan mode" in result.output and approver.requests == []
