"""Prompt templates: strict rendering, override lookup, the environment facts."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_code.errors import ConfigError
from qwen_code.prompts import git_description, load, render, shipped_dir, system_prompt
from tests.helpers import git_init, run_qwen_code


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


def _settings(tmp_path: Path, env: dict[str, str], **flags: str) -> tuple[str, list[object]]:
    from qwen_code.config import Flags, load_settings
    from qwen_code.prompts import build_system_prompt

    env = {"QWEN_HOME": str(tmp_path / "home"), **env}
    settings = load_settings(Flags(**flags), cwd=tmp_path, env=env)  # type: ignore[arg-type]
    return build_system_prompt(settings, tmp_path, home=tmp_path / "home")


def test_system_prompt_flags_and_qwen_system_md(tmp_path: Path) -> None:
    git_init(tmp_path)
    (tmp_path / "QWEN.md").write_text("Project rule: use tabs.")
    replaced, files = _settings(tmp_path, {}, system_prompt="You are a reviewer.")
    assert replaced.startswith("You are a reviewer.")
    assert "Project rule: use tabs." in replaced  # context files still follow an override
    assert len(files) == 1
    appended, _ = _settings(tmp_path, {}, append_system_prompt="Answer in French.")
    assert "qwen-code" in appended
    assert appended.endswith("Answer in French.")

    (tmp_path / ".qwen").mkdir()
    (tmp_path / ".qwen" / "system.md").write_text("From system.md, costs $5.")
    from_file, _ = _settings(tmp_path, {"QWEN_SYSTEM_MD": "1"})
    assert from_file.startswith("From system.md, costs $5.")
    custom = tmp_path / "mine.md"
    custom.write_text("Mine.")
    assert _settings(tmp_path, {"QWEN_SYSTEM_MD": str(custom)})[0].startswith("Mine.")
    assert "qwen-code" in _settings(tmp_path, {"QWEN_SYSTEM_MD": "0"})[0]
    with pytest.raises(ConfigError) as info:
        _settings(tmp_path, {"QWEN_SYSTEM_MD": str(tmp_path / "missing.md")})
    assert "QWEN_SYSTEM_MD" in str(info.value)


def test_prompts_show_prints_what_a_session_sends(tmp_path: Path) -> None:
    git_init(tmp_path)
    (tmp_path / "QWEN.md").write_text("Rule from QWEN.md.")
    result = run_qwen_code(tmp_path, "prompts", "show")
    assert result.returncode == 0, result.stderr
    expected, _ = _settings(tmp_path, {})
    assert result.stdout == expected + "\n"
    assert "Rule from QWEN.md." in result.stdout


def test_prompts_export_writes_templates_and_keeps_edits(tmp_path: Path) -> None:
    out = tmp_path / "exported"
    result = run_qwen_code(tmp_path, "prompts", "export", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "system.md").read_text() == (shipped_dir() / "system.md").read_text()
    (out / "system.md").write_text("edited")
    assert "kept existing" in run_qwen_code(tmp_path, "prompts", "export", str(out)).stdout
    assert (out / "system.md").read_text() == "edited"
    run_qwen_code(tmp_path, "prompts", "export", str(out), "--force")
    assert (out / "system.md").read_text() != "edited"
