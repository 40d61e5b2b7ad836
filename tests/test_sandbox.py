"""The command sandbox, for real: bubblewrap around run_shell_command.

Tool-level tests drive `ShellTool` with a `Sandbox` in the context; the end-to-end ones
run `qwen-code` headless against the scripted model and read what the model was sent.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen_code.sandbox.manager import Sandbox
from qwen_code.sandbox.policy import CREDENTIAL_PATHS, effective_mode, expand_paths
from qwen_code.tools.base import ToolContext
from qwen_code.tools.shell import ShellTool, background_jobs, shutdown_background_jobs
from qwen_code.tools.workspace import Workspace
from tests.fakeserver import FakeLLM
from tests.helpers import write
from tests.sandbox_helpers import needs_sandbox, running

Params = ShellTool.Params
tool = ShellTool()


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


def sandboxed_ctx(
    ws: Path, tmp_path: Path, *, home: Path | None = None, **kw: object
) -> ToolContext:
    scratch = tmp_path / "scratch"
    hidden = expand_paths(CREDENTIAL_PATHS, home or ws, {})
    sandbox = Sandbox(setting="workspace-write", hidden=hidden, **kw)  # type: ignore[arg-type]
    workspace = Workspace(root=ws, extra_roots=(scratch,))
    return ToolContext(workspace=workspace, scratch_dir=scratch, sandbox=sandbox)


@pytest.fixture
def ctx(ws: Path, tmp_path: Path) -> ToolContext:
    return sandboxed_ctx(ws, tmp_path)


# --- the policy, without running anything ---------------------------------------------------


def test_auto_is_on_where_nobody_looks_at_each_command() -> None:
    on = "workspace-write"
    assert (
        effective_mode("auto", approval_mode="yolo", headless=False, shell_preapproved=False) == on
    )
    assert (
        effective_mode("auto", approval_mode="default", headless=True, shell_preapproved=True) == on
    )
    assert (
        effective_mode("auto", approval_mode="default", headless=False, shell_preapproved=True)
        == "off"
    )
    assert (
        effective_mode("auto", approval_mode="auto-edit", headless=True, shell_preapproved=False)
        == "off"
    )
    assert (
        effective_mode(
            "read-only", approval_mode="default", headless=False, shell_preapproved=False
        )
        == "read-only"
    )
    assert (
        effective_mode("off", approval_mode="yolo", headless=True, shell_preapproved=True) == "off"
    )


# --- the file system ----------------------------------------------------------------------


@needs_sandbox
async def test_writes_inside_the_workspace_work_and_outside_fail(
    ctx: ToolContext, ws: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    out = await tool.run(Params(command="echo ok > inside.txt && cat inside.txt"), ctx)
    assert not out.is_error, out.content
    assert (ws / "inside.txt").read_text() == "ok\n"
    out = await tool.run(Params(command=f"echo pwned > {outside}/evil.txt"), ctx)
    assert out.is_error
    assert not (outside / "evil.txt").exists()
    home_file = Path.home() / f".qwen-code-sandbox-test-{os.getpid()}"
    out = await tool.run(Params(command=f"touch {home_file}"), ctx)
    assert out.is_error and not home_file.exists()
    assert "Blocked by the sandbox" in out.content
    assert "Read-only file system" in out.content
    assert out.data["sandbox_blocked"] is True


@needs_sandbox
async def test_read_only_mode_allows_only_the_private_tmp(ctx: ToolContext, ws: Path) -> None:
    assert ctx.sandbox is not None
    ctx.sandbox.setting = "read-only"
    out = await tool.run(Params(command="echo x > file.txt"), ctx)
    assert out.is_error and not (ws / "file.txt").exists()
    assert "read-only mode" in out.content
    out = await tool.run(Params(command="echo kept > /tmp/note && cat /tmp/note"), ctx)
    assert not out.is_error and "kept" in out.content


@needs_sandbox
async def test_the_private_tmp_lasts_for_the_session(ctx: ToolContext, tmp_path: Path) -> None:
    await tool.run(Params(command="echo from-first > /tmp/handoff"), ctx)
    out = await tool.run(Params(command="cat /tmp/handoff"), ctx)
    assert "from-first" in out.content
    assert not _host_has("/tmp/handoff", "from-first")


def _host_has(path: str, content: str) -> bool:
    target = Path(path)
    return target.exists() and content in target.read_text()


@needs_sandbox
async def test_credentials_are_hidden_even_inside_the_workspace(ws: Path, tmp_path: Path) -> None:
    """The user runs qwen-code in their home directory: ~/.ssh is inside the workspace,
    and still hidden."""
    write(ws / ".ssh" / "id_ed25519", "PRIVATE-KEY-MATERIAL\n")
    write(ws / ".netrc", "machine example.com password hunter2\n")
    ctx = sandboxed_ctx(ws, tmp_path, home=ws)
    out = await tool.run(Params(command="ls -a .ssh; cat .netrc; cat .ssh/id_ed25519"), ctx)
    assert "PRIVATE-KEY-MATERIAL" not in out.content
    assert "hunter2" not in out.content
    assert "hidden inside the sandbox" in out.content
    out = await tool.run(Params(command="rm -rf .ssh; echo gone > .netrc"), ctx)
    assert (ws / ".ssh" / "id_ed25519").read_text() == "PRIVATE-KEY-MATERIAL\n"
    assert "hunter2" in (ws / ".netrc").read_text()


@needs_sandbox
async def test_git_hooks_and_project_settings_stay_read_only(ws: Path, ctx: ToolContext) -> None:
    write(ws / ".git" / "hooks" / "keep", "")
    write(ws / ".git" / "config", "[core]\n")
    write(ws / ".qwen" / "settings.json", "{}")
    hook = "printf '#!/bin/sh\\ncurl evil' > .git/hooks/post-commit"
    out = await tool.run(
        Params(command=f"{hook}; echo '{{\"hooks\":1}}' > .qwen/settings.json"), ctx
    )
    assert out.is_error
    assert not (ws / ".git" / "hooks" / "post-commit").exists()
    assert (ws / ".qwen" / "settings.json").read_text() == "{}"


@needs_sandbox
async def test_pytest_of_a_small_project_passes_inside(ws: Path, ctx: ToolContext) -> None:
    write(ws / "calc.py", "def add(a, b):\n    return a + b\n")
    write(
        ws / "test_calc.py", "from calc import add\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    out = await tool.run(Params(command=f"{sys.executable} -m pytest -q -p no:cacheprovider"), ctx)
    assert not out.is_error, out.content
    assert "1 passed" in out.content


# --- processes ------------------------------------------------------------------------------


@needs_sandbox
async def test_a_timeout_kills_the_whole_group_inside(ctx: ToolContext) -> None:
    marker = f"{os.getpid()}.271828"
    command = f"sleep {marker} & sleep {marker}"
    out = await tool.run(Params(command=command, timeout=1500), ctx)
    assert out.data["timed_out"] is True
    for _ in range(100):
        if not running(marker):
            break
        await asyncio.sleep(0.05)
    assert running(marker) == []


@needs_sandbox
async def test_leftover_and_background_jobs_live_on_and_stop_at_session_end(
    ctx: ToolContext,
) -> None:
    left, bg = f"{os.getpid()}.1414", f"{os.getpid()}.1732"
    out = await tool.run(Params(command=f"sleep {left} & echo started"), ctx)
    assert not out.is_error and out.data.get("background") is True, out.content
    out = await tool.run(Params(command=f"sleep {bg}", is_background=True), ctx)
    assert "Started in the background" in out.content
    assert running(left) and running(bg)
    assert len(background_jobs(ctx)) == 2
    await shutdown_background_jobs(ctx)
    assert running(left) == [] and running(bg) == []


@needs_sandbox
async def test_a_command_that_waits_for_input_is_still_caught(ctx: ToolContext) -> None:
    from qwen_code.tools.shell_watch import SHELL_OPTIONS_KEY, ShellOptions

    ctx.state[SHELL_OPTIONS_KEY] = ShellOptions(input_wait_s=0.5, auto_background_s=0)
    out = await tool.run(Params(command="mkfifo /tmp/q && read answer < /tmp/q"), ctx)
    assert out.data.get("waiting_for_input") is True, out.content


@needs_sandbox
async def test_a_server_inside_is_moved_to_the_background(ctx: ToolContext) -> None:
    from qwen_code.tools.shell_watch import SHELL_OPTIONS_KEY, ShellOptions

    ctx.state[SHELL_OPTIONS_KEY] = ShellOptions(input_wait_s=0, auto_background_s=0.5)
    server = f"{sys.executable} -m http.server 8765 --bind 127.0.0.1"
    try:
        out = await tool.run(Params(command=server), ctx)
        assert out.data.get("auto_background") is True, out.content
        assert out.data["ports"] == [8765]
    finally:
        await shutdown_background_jobs(ctx)


# --- the network ----------------------------------------------------------------------------


@needs_sandbox
async def test_no_network_by_default_not_even_the_hosts_loopback(ctx: ToolContext) -> None:
    with FakeLLM() as server:  # any server on the host's loopback
        port = int(server.base_url.rsplit(":", 1)[1].split("/")[0])
        probe = (
            f"{sys.executable} -c \"import socket; socket.create_connection(('127.0.0.1', "
            f'{port}), 3)"'
        )
        out = await tool.run(Params(command=probe), ctx)
    assert out.is_error
    assert "no network access" in out.content


def _tiny_wheel(directory: Path) -> str:
    """A minimal pure-Python wheel, `tinypkg 1.0`, written into `directory`."""
    import base64
    import hashlib
    import zipfile

    name = "tinypkg-1.0-py3-none-any.whl"
    files = {
        "tinypkg/__init__.py": "VALUE = 42\n",
        "tinypkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
        "tinypkg-1.0.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, content in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(content.encode())}")
    record.append("tinypkg-1.0.dist-info/RECORD,,")
    files["tinypkg-1.0.dist-info/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(directory / name, "w") as wheel:
        for path, content in files.items():
            wheel.writestr(path, content)
    return name


class _Registry:
    """A package index on the host's 127.0.0.1 (PEP 503 simple pages and one wheel)."""

    def __init__(self, root: Path) -> None:
        import functools
        import http.server
        import threading

        wheel = _tiny_wheel(write(root / "simple" / "tinypkg" / "index.html", "").parent)
        link = f'<a href="{wheel}">{wheel}</a>'
        write(root / "simple" / "tinypkg" / "index.html", f"<html><body>{link}</body></html>")
        write(root / "hello.txt", "hello from the registry\n")
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
        handler.log_message = lambda *a: None  # type: ignore[attr-defined]
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[_Registry]:
    running_registry = _Registry(tmp_path / "registry")
    yield running_registry
    running_registry.close()


@pytest.fixture
def networked(ws: Path, tmp_path: Path) -> ToolContext:
    """A sandbox whose network allows only `registry.test`, which resolves to 127.0.0.1."""
    return sandboxed_ctx(
        ws, tmp_path, network=("registry.test",), hosts={"registry.test": "127.0.0.1"}
    )


def _fetch(url: str) -> str:
    code = f"import urllib.request as u; print(u.urlopen({url!r}, timeout=20).read().decode())"
    return f'{sys.executable} -c "{code}"'


@needs_sandbox
async def test_allowed_domains_go_through_the_proxy_and_nothing_else(
    networked: ToolContext, registry: _Registry
) -> None:
    ctx = networked
    assert ctx.sandbox is not None
    try:
        out = await tool.run(
            Params(command=_fetch(f"http://registry.test:{registry.port}/hello.txt")), ctx
        )
        assert "hello from the registry" in out.content, out.content
        out = await tool.run(
            Params(command=_fetch(f"http://evil.test:{registry.port}/hello.txt")), ctx
        )
        assert out.is_error and "hello from the registry" not in out.content
        assert f"refused connections to evil.test:{registry.port}" in out.content
        direct = (
            f"{sys.executable} -c \"import socket; socket.create_connection(('127.0.0.1', "
            f'{registry.port}), 3)"'
        )
        out = await tool.run(Params(command=direct), ctx)
        assert out.is_error
    finally:
        ctx.sandbox.close()


@needs_sandbox
async def test_pip_installs_from_an_allowed_registry(
    ws: Path, networked: ToolContext, registry: _Registry
) -> None:
    ctx = networked
    assert ctx.sandbox is not None
    index = f"http://registry.test:{registry.port}/simple/"
    install = (
        f"{sys.executable} -m pip install --disable-pip-version-check --no-input -q "
        f"--isolated --index-url {index} --trusted-host registry.test --target deps tinypkg && "
        f"PYTHONPATH=deps {sys.executable} -c 'import tinypkg; print(tinypkg.VALUE)'"
    )
    try:
        out = await tool.run(Params(command=install, timeout=120_000), ctx)
    finally:
        ctx.sandbox.close()
    assert not out.is_error, out.content
    assert "42" in out.content
    assert (ws / "deps" / "tinypkg" / "__init__.py").exists()


def test_a_virtual_environment_under_tmp_stays_visible(tmp_path: Path) -> None:
    """A checkout under /tmp (as CI makes) keeps its venv runnable inside the sandbox,
    whose /tmp is private."""
    from qwen_code.sandbox.policy import tools_under_tmp

    venv = tmp_path / "venv"
    write(venv / "pyvenv.cfg", "home = /usr/bin\n")
    (venv / "bin").mkdir()
    tools = tmp_path / "tools"
    tools.mkdir()
    found = tools_under_tmp(f"{venv / 'bin'}:{tools}:/usr/bin", [Path("/usr")])
    if tmp_path.resolve().is_relative_to("/tmp"):
        assert set(found) == {venv.resolve(), tools.resolve()}
    else:
        assert found == ()


@needs_sandbox
async def test_agent_sockets_are_not_handed_to_commands(
    ctx: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSH_AUTH_SOCK", "/run/user/1000/ssh-agent.sock")
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    ctx.credentials = type(ctx.credentials).collect()
    out = await tool.run(
        Params(command='echo "ssh=${SSH_AUTH_SOCK:-unset} docker=${DOCKER_HOST:-unset}"'), ctx
    )
    assert "ssh=unset docker=unset" in out.content
