"""Prompt templates: strict rendering, override lookup, the environment facts."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_code.errors import ConfigError
from qwen_code.prompts import git_description, load, render, system_prompt
from tests.helpers import git_init


def test_render_is_strict() -> None:
    assert render("Hi $name, ${name}!", {"name": "Qwen"}) == "Hi Qwen, Qwen!"
    with pytest.raises(ConfigError) as info:
        render("Hi $name and $other", {"name": "x"})
    assert "other" in str(info.value)
    assert render("costs $$5", {}) == "costs $5"


def test_project_overrides_user_overrides_shipped(tmp_path: Path) -> None:
    project, user = tmp_path / "project", tmp_path / "home"
    assert "qwen-code" in load("system.md", _values(), project_dir=project, user_dir=user)
    (user / "prompts").mkdir(parents=True)
    (user / "prompts" / "system.md").write_text("user prompt in $cwd")
    assert load("system.md", _values(), project_dir=project, user_dir=user) == "user prompt in /w"
    (project / ".qwen" / "prompts").mkdir(parents=True)
    (project / ".qwen" / "prompts" / "system.md").write_text("project prompt")
    assert load("system.md", _values(), project_dir=project, user_dir=user) == "project prompt"


def _values() -> dict[str, str]:
    keys = ("cwd", "workspace_extra", "platform", "shell", "git", "date")
    return {k: "/w" if k == "cwd" else "" for k in keys}


def test_system_prompt_states_the_environment(tmp_path: Path) -> None:
    git_init(tmp_path)
    text = system_prompt(tmp_path, user_dir=tmp_path / "nohome")
    assert f"Working directory: {tmp_path}" in text
    assert "git repository" in text
    assert "$" not in text.replace("$$", "")


def test_git_description(tmp_path: Path) -> None:
    assert "not a git repository" in git_description(tmp_path)
    git_init(tmp_path)
    sub = tmp_path / "src"
    sub.mkdir()
    assert f"rooted at {tmp_path}" in git_description(sub)
