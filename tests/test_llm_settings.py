"""Settings for real servers: base URLs as users write them, and the retry keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_code.config import Flags, load_settings, normalize_base_url, resolve_provider
from tests.helpers import write_json


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://gpu:8000/v1/", "http://gpu:8000/v1"),
        (" http://gpu:8000 ", "http://gpu:8000"),
        ("http://gpu:8000/v1/chat/completions", "http://gpu:8000/v1"),
        ("http://gpu:8000/v1/chat/completions/", "http://gpu:8000/v1"),
        ("http://localhost:11434/v1/models", "http://localhost:11434/v1"),
        ("https://dashscope-intl.aliyuncs.com/compatible-mode/v1", None),
    ],
)
def test_base_url_normalization(given: str, expected: str | None) -> None:
    assert normalize_base_url(given) == (expected or given)
    settings = load_settings(Flags(base_url=given), env={})
    assert resolve_provider(settings).base_url == (expected or given)


def test_retry_settings_keys(tmp_path: Path) -> None:
    project = tmp_path / "p"
    (project / ".qwen").mkdir(parents=True)
    generation = {"streamStallTimeout": 5000, "maxRetryTime": 30000, "maxRetries": 2}
    settings_file = project / ".qwen" / "settings.json"
    write_json(settings_file, {"model": {"generationConfig": generation}})
    loaded = load_settings(cwd=project, env={"QWEN_HOME": str(tmp_path / "home")})
    config = loaded.model.generation_config
    assert (config.stream_stall_timeout, config.max_retry_time, config.max_retries) == (
        5000,
        30000,
        2,
    )
    defaults = load_settings(cwd=tmp_path, env={"QWEN_HOME": str(tmp_path / "home")})
    assert defaults.model.generation_config.stream_stall_timeout == 60_000
    assert defaults.model.generation_config.max_retry_time == 180_000
