"""Custom command files that are links to files outside the project or $QWEN_HOME.

The attack: a repository ships `.qwen/commands/review.md` as a symlink to a file of the
user's (`~/.ssh/id_rsa`, `~/.qwen/settings.json`); running `/review` would put that file's
text into the prompt. Such files are skipped with a notice instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwen_code.config import qwen_home
from qwen_code.custom_commands import CommandProblem, CustomCommand, discover, reload_command
from tests.fakeserver import FakeLLM, text
from tests.helpers import commands_dir, run_qwen_code, write_json

SECRET = "PRIVATE KEY MATERIAL 0123456789"


@pytest.fixture
def project(project: Path) -> Path:
    """The shared git project, with an empty commands folder."""
    commands_dir(project).mkdir(parents=True)
    return project


@pytest.fixture
def private_key(tmp_path: Path) -> Path:
    """A file of the user's, outside the project and $QWEN_HOME."""
    path = tmp_path / "private" / "id_rsa"
    path.parent.mkdir()
    path.write_text(SECRET + "\n", encoding="utf-8")
    return path


def user_commands() -> Path:
    path = qwen_home() / "commands"
    path.mkdir(exist_ok=True)
    return path


def problem_for(name: str, project: Path) -> CommandProblem:
    found = discover(project, qwen_home())
    assert name not in found.commands
    [problem] = [p for p in found.problems if p.name == name]
    return problem


def test_project_command_linking_outside_the_project_is_skipped(
    project: Path, private_key: Path
) -> None:
    (commands_dir(project) / "review.md").symlink_to(private_key)
    problem = problem_for("review", project)
    assert "is a link to" in problem.reason
    assert "outside the project" in problem.reason
    assert str(private_key.resolve()) in problem.reason
    assert "skipped" in str(problem)


def test_project_command_cannot_reach_the_users_settings(project: Path) -> None:
    settings = qwen_home() / "settings.json"
    write_json(settings, {"security": {"auth": {"apiKey": SECRET}}})
    (commands_dir(project) / "settings.md").symlink_to(settings)
    assert "outside the project" in problem_for("settings", project).reason


def test_a_linked_commands_folder_outside_the_project_loads_nothing(
    project: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "notes.md").write_text(SECRET, encoding="utf-8")
    commands_dir(project).rmdir()
    commands_dir(project).symlink_to(elsewhere, target_is_directory=True)
    assert "outside the project" in problem_for("notes", project).reason


def test_user_command_linking_outside_qwen_home_is_skipped(
    project: Path, private_key: Path
) -> None:
    (user_commands() / "mine.md").symlink_to(private_key)
    assert "outside $QWEN_HOME" in problem_for("mine", project).reason


def test_links_that_stay_inside_are_loaded(project: Path, tmp_path: Path) -> None:
    (project / "prompts").mkdir()
    (project / "prompts" / "shared.md").write_text("Review the diff.", encoding="utf-8")
    (commands_dir(project) / "review.md").symlink_to(Path("../../prompts/shared.md"))
    dotfiles = tmp_path / "dotfiles" / "commands"
    dotfiles.mkdir(parents=True)
    (dotfiles / "deploy.md").write_text("Deploy it.", encoding="utf-8")
    qwen_home().joinpath("commands").symlink_to(dotfiles, target_is_directory=True)
    (commands_dir(project) / "deploy-alias.md").symlink_to(dotfiles / "deploy.md")

    found = discover(project, qwen_home())

    assert found.problems == []
    assert found.commands["review"].prompt == "Review the diff."
    assert found.commands["deploy"].prompt == "Deploy it."  # the user's own linked folder
    assert found.commands["deploy-alias"].prompt == "Deploy it."


def test_a_file_replaced_by_a_link_after_discovery_is_not_reread(
    project: Path, private_key: Path
) -> None:
    path = commands_dir(project) / "review.md"
    path.write_text("Review.", encoding="utf-8")
    command = discover(project, qwen_home()).commands["review"]
    assert isinstance(command, CustomCommand)
    path.unlink()
    path.symlink_to(private_key)
    again = reload_command(command)
    assert isinstance(again, CommandProblem)
    assert "outside the project" in again.reason


def test_headless_run_does_not_send_the_linked_file(
    project: Path, private_key: Path, fake_llm: FakeLLM
) -> None:
    (commands_dir(project) / "review.md").symlink_to(private_key)
    fake_llm.script(text("ok"))
    result = run_qwen_code(project, "-p", "/review")
    assert result.returncode == 0, result.stderr
    assert "is a link to" in result.stderr
    assert "outside the project" in result.stderr
    for request in fake_llm.requests:
        assert SECRET not in json.dumps(request.body)
