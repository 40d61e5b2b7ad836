"""Test isolation: no test sees the developer's keys, home or settings, or reaches the network.

Every test gets a fresh QWEN_HOME under tmp_path, an environment without OPENAI_*,
DASHSCOPE_* or QWEN_* variables, and a scripted model server (`fake_llm`) that the
provider variables point at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen_code.tools.base import ToolContext
from qwen_code.tools.workspace import Workspace
from tests.fakeserver import FakeLLM

_PROVIDER_PREFIXES = ("OPENAI_", "DASHSCOPE_", "QWEN_", "ANTHROPIC_", "OPENROUTER_")


@pytest.fixture(autouse=True)
def fake_llm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    for name in list(os.environ):
        if name.startswith(_PROVIDER_PREFIXES) or name in ("NO_COLOR", "FORCE_COLOR"):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "qwen-home"
    home.mkdir()
    monkeypatch.setenv("QWEN_HOME", str(home))
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with FakeLLM() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("OPENAI_MODEL", "qwen3-coder-plus")
        yield server


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty workspace directory for tool tests."""
    path = tmp_path / "ws"
    path.mkdir()
    return path


@pytest.fixture
def ctx(root: Path) -> ToolContext:
    """A tool context whose workspace is `root`."""
    return ToolContext(workspace=Workspace(root=root))
