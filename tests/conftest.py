"""Test isolation: no test sees the developer's keys, home or settings, or reaches the network.

Every test gets a fresh QWEN_HOME under tmp_path and an environment without OPENAI_*,
DASHSCOPE_* or QWEN_* variables (`isolated`, autouse). The provider variables point at an
address nothing listens on, so a test that talks to a model without asking for one fails
fast; a test that talks to a model requests `fake_llm`, the scripted server they then
point at.

Fixtures shared by several test modules live here too: `root`/`ctx` (a workspace for tool
tests), `project` (a git repository), `outside` (a folder next to it), `repl` (an
in-process REPL on pipe input) and `start_repl` (the REPL in a pseudo-terminal).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from prompt_toolkit.input import PipeInput

from qwen_code.custom_commands import Discovery
from qwen_code.tools.base import ToolContext
from qwen_code.tools.workspace import Workspace
from qwen_code.ui import commands_custom
from qwen_code.ui.repl import Repl
from tests.fakeserver import FakeLLM
from tests.helpers import PtyRepl, StartRepl, git_init, repl_in

_PROVIDER_PREFIXES = ("OPENAI_", "DASHSCOPE_", "QWEN_", "ANTHROPIC_", "OPENROUTER_")

UNREACHABLE_BASE_URL = "http://127.0.0.1:9/v1"
"""Where the provider points unless a test asks for `fake_llm`: nothing listens there
(port 9 is "discard"), so a stray model request is refused at once."""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clean provider environment, a fresh QWEN_HOME, no proxies, no reachable model."""
    for name in list(os.environ):
        if name.startswith(_PROVIDER_PREFIXES) or name in ("NO_COLOR", "FORCE_COLOR"):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "qwen-home"
    home.mkdir()
    monkeypatch.setenv("QWEN_HOME", str(home))
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("OPENAI_BASE_URL", UNREACHABLE_BASE_URL)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_MODEL", "qwen3-coder-plus")


@pytest.fixture
def fake_llm(isolated: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    """The scripted OpenAI-compatible server, which the provider variables point at."""
    with FakeLLM() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
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


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty git repository, `tmp_path/proj`."""
    path = tmp_path / "proj"
    path.mkdir()
    git_init(path)
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """An empty folder next to `root` and `project`, outside both."""
    path = tmp_path / "outside"
    path.mkdir()
    return path


@pytest.fixture
async def repl(project: Path, fake_llm: FakeLLM) -> AsyncIterator[tuple[Repl, PipeInput]]:
    """A REPL on `project` with the scripted model (see `helpers.repl_in`), asking for
    approval in the default mode."""
    try:
        async with repl_in(project) as running:
            yield running
    finally:
        commands_custom.register(Discovery())  # leave the shared command table as it was


@pytest.fixture
def start_repl(project: Path, fake_llm: FakeLLM) -> Iterator[StartRepl]:
    """Starts `qwen-code ARGS` in `project` in a pseudo-terminal (`helpers.PtyRepl`), with
    the scripted model; every one started is closed afterwards."""
    running: list[PtyRepl] = []

    def launch(*args: str, wait: bool = True, columns: int = 120) -> PtyRepl:
        repl = PtyRepl(project, *args, wait=wait, columns=columns)
        running.append(repl)
        return repl

    yield launch
    for repl in running:
        repl.close()
