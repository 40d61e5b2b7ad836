"""Settings precedence: defaults < user file < project file < env < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_code.config import (
    DASHSCOPE_URLS,
    Flags,
    load_settings,
    qwen_home,
    resolve_provider,
)
from qwen_code.errors import ConfigError
from tests.helpers import write_json


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    return root


def test_defaults_with_no_files(project: Path) -> None:
    settings = load_settings(cwd=project, env={"QWEN_HOME": str(project / "nohome")})
    assert settings.model.name is None
    assert settings.model.max_session_turns == -1
    assert settings.tools.approval_mode == "default"
    assert settings.sources == []


def test_precedence_user_project_env_flags(tmp_path: Path, project: Path) -> None:
    home = tmp_path / "home"
    write_json(
        home / "settings.json",
        {"model": {"name": "user-model", "maxSessionTurns": 3}, "tools": {"approvalMode": "plan"}},
    )
    write_json(project / ".qwen" / "settings.json", {"model": {"name": "project-model"}})
    env = {"QWEN_HOME": str(home)}
    settings = load_settings(cwd=project, env=env)
    assert settings.model.name == "project-model"
    assert settings.model.max_session_turns == 3  # deep merge keeps the user's value
    assert settings.tools.approval_mode == "plan"
    assert len(settings.sources) == 2

    settings = load_settings(cwd=project, env={**env, "OPENAI_MODEL": "env-model"})
    assert settings.model.name == "env-model"

    flags = Flags(model="flag-model", approval_mode="auto-edit", max_session_turns=9)
    settings = load_settings(flags, cwd=project, env={**env, "OPENAI_MODEL": "env-model"})
    assert settings.model.name == "flag-model"
    assert settings.model.max_session_turns == 9
    assert settings.tools.approval_mode == "auto-edit"


def test_project_settings_found_from_a_subdirectory(tmp_path: Path, project: Path) -> None:
    write_json(project / ".qwen" / "settings.json", {"model": {"name": "p"}})
    sub = project / "src" / "pkg"
    sub.mkdir(parents=True)
    settings = load_settings(cwd=sub, env={"QWEN_HOME": str(tmp_path / "h")})
    assert settings.model.name == "p"


def test_qwen_model_beats_openai_model(project: Path) -> None:
    env = {"QWEN_HOME": str(project / "h"), "OPENAI_MODEL": "a", "QWEN_MODEL": "b"}
    assert load_settings(cwd=project, env=env).model.name == "b"


def test_yolo_flag_sets_mode(project: Path) -> None:
    settings = load_settings(Flags(yolo=True), cwd=project, env={"QWEN_HOME": str(project)})
    assert settings.tools.approval_mode == "yolo"


def test_broken_settings_file_names_file_and_line(tmp_path: Path, project: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "settings.json").write_text('{\n  "model": {,}\n}', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(cwd=project, env={"QWEN_HOME": str(home)})
    assert str(home / "settings.json") in str(info.value)
    assert "line 2" in str(info.value)


def test_invalid_value_is_a_config_error(tmp_path: Path, project: Path) -> None:
    write_json(tmp_path / "home" / "settings.json", {"tools": {"approvalMode": "sometimes"}})
    with pytest.raises(ConfigError):
        load_settings(cwd=project, env={"QWEN_HOME": str(tmp_path / "home")})


def test_unknown_keys_from_qwen_code_files_are_ignored(tmp_path: Path, project: Path) -> None:
    write_json(
        tmp_path / "home" / "settings.json",
        {"ui": {"theme": "dark"}, "model": {"name": "m", "skipLoopDetection": True}},
    )
    settings = load_settings(cwd=project, env={"QWEN_HOME": str(tmp_path / "home")})
    assert settings.model.name == "m"


def test_no_credentials_message_says_what_to_set(project: Path) -> None:
    settings = load_settings(cwd=project, env={"QWEN_HOME": str(project / "h")})
    with pytest.raises(ConfigError) as info:
        resolve_provider(settings)
    text = str(info.value)
    for name in ("DASHSCOPE_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY", "--api-key"):
        assert name in text


def test_dashscope_key_alone_selects_dashscope(project: Path) -> None:
    env = {"QWEN_HOME": str(project / "h"), "DASHSCOPE_API_KEY": "sk-ds"}
    provider = resolve_provider(load_settings(cwd=project, env=env))
    assert provider.base_url == DASHSCOPE_URLS["intl"]
    assert provider.api_key == "sk-ds"
    assert provider.api_key_source == "DASHSCOPE_API_KEY"
    assert provider.model == "qwen3-coder-plus"
    assert provider.is_dashscope


@pytest.mark.parametrize("region", ["us", "cn", "hk"])
def test_dashscope_region(project: Path, region: str) -> None:
    env = {"QWEN_HOME": str(project / "h"), "DASHSCOPE_API_KEY": "k", "DASHSCOPE_REGION": region}
    assert resolve_provider(load_settings(cwd=project, env=env)).base_url == DASHSCOPE_URLS[region]


def test_base_url_alone_is_enough_for_a_local_server(project: Path) -> None:
    env = {"QWEN_HOME": str(project / "h"), "OPENAI_BASE_URL": "http://localhost:8000/v1/"}
    provider = resolve_provider(load_settings(cwd=project, env=env))
    assert provider.base_url == "http://localhost:8000/v1"
    assert provider.api_key  # a placeholder the openai client accepts
    assert provider.model is None  # asked from the server later


def test_openai_key_with_custom_base_url_wins_over_dashscope_key(project: Path) -> None:
    env = {
        "QWEN_HOME": str(project / "h"),
        "OPENAI_BASE_URL": "https://openrouter.ai/api/v1",
        "OPENAI_API_KEY": "sk-or",
        "DASHSCOPE_API_KEY": "sk-ds",
    }
    provider = resolve_provider(load_settings(cwd=project, env=env))
    assert (provider.api_key, provider.api_key_source) == ("sk-or", "OPENAI_API_KEY")


def test_flags_override_env_credentials(project: Path) -> None:
    env = {"QWEN_HOME": str(project / "h"), "OPENAI_API_KEY": "env", "OPENAI_BASE_URL": "http://a"}
    flags = Flags(api_key="flag", base_url="http://b/v1")
    provider = resolve_provider(load_settings(flags, cwd=project, env=env))
    assert (provider.api_key, provider.base_url, provider.api_key_source) == (
        "flag",
        "http://b/v1",
        "--api-key",
    )


def test_settings_file_credentials(tmp_path: Path, project: Path) -> None:
    write_json(
        tmp_path / "home" / "settings.json",
        {"security": {"auth": {"apiKey": "file-key", "baseUrl": "http://srv/v1"}}},
    )
    settings = load_settings(cwd=project, env={"QWEN_HOME": str(tmp_path / "home")})
    provider = resolve_provider(settings)
    assert provider.api_key == "file-key"
    assert "settings.json" in provider.api_key_source


def test_allowed_tools_and_include_directories_accumulate(tmp_path: Path, project: Path) -> None:
    write_json(
        tmp_path / "home" / "settings.json",
        {"tools": {"allowed": ["edit"]}, "context": {"includeDirectories": ["../lib"]}},
    )
    flags = Flags(allowed_tools=["run_shell_command(git status)"], include_directories=["docs"])
    settings = load_settings(flags, cwd=project, env={"QWEN_HOME": str(tmp_path / "home")})
    assert settings.tools.allowed == ["edit", "run_shell_command(git status)"]
    assert settings.context.include_directories == ["../lib", "docs"]


def test_qwen_home_default_and_override(tmp_path: Path) -> None:
    assert qwen_home({"QWEN_HOME": str(tmp_path)}) == tmp_path
    assert qwen_home({}) == Path.home() / ".qwen"
