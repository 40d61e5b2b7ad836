"""run_shell_command with real processes: commands waiting for input are ended with a hint,
servers started in the foreground move to the background, and background jobs die with
the session (also when a headless run is interrupted)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qwen_code.tools.base import ToolContext, ToolLimits
from qwen_code.tools.shell import ShellTool, background_jobs, shutdown_background_jobs
from qwen_code.tools.shell_watch import SHELL_OPTIONS_KEY, ShellOptions, looks_like_server
from qwen_code.tools.workspace import Workspace
from tests.fakeserver import FakeLLM, Turn, call, tool_turn
from tests.helpers import alive, gone

Params = ShellTool.Params
tool = ShellTool()
HAS_PTY = Path("/dev/ptmx").exists() and Path("/dev/pts").is_dir()


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[ToolContext]:
    root = tmp_path / "ws"
    root.mkdir()
    context = ToolContext(
        workspace=Workspace(root=root),
        limits=ToolLimits(max_output_chars=2000, max_output_lines=50),
        scratch_dir=tmp_path / "scratch",
    )
    yield context
    await shutdown_background_jobs(context)


def _with_options(ctx: ToolContext, **options: float) -> ToolContext:
    ctx.state[SHELL_OPTIONS_KEY] = ShellOptions(**options)
    return ctx


async def test_opening_the_terminal_fails_fast_with_the_hint(ctx: ToolContext) -> None:
    cmd = f"{sys.executable} -c \"import sys; sys.stdin = open('/dev/tty'); input('Name? ')\""
    start = time.monotonic()
    out = await tool.run(Params(command=cmd, timeout=20_000), ctx)
    assert time.monotonic() - start < 5
    assert out.is_error
    assert "No such device or address: '/dev/tty'" in out.content  # no controlling terminal
    assert out.data["needs_terminal"] is True
    assert "non-interactive flags" in out.content


@pytest.mark.parametrize(
    ("cmd", "blocked"),
    [
        ("mkfifo answer; echo 'Project name?'; read name < answer", "opening a named pipe"),
        (
            "mkfifo answer; echo 'Project name?'; exec 3<>answer; read -u 3 name",
            "reading the named pipe",
        ),
        pytest.param(
            f'{sys.executable} -c "import os, pty; m, s = pty.openpty(); '
            "print('Project name?', flush=True); os.read(s, 10)\"",
            "reading the terminal /dev/pts/",
            marks=pytest.mark.skipif(not HAS_PTY, reason="no pseudo-terminals here"),
        ),
    ],
)
async def test_a_command_waiting_for_input_is_ended_with_the_hint(
    ctx: ToolContext, cmd: str, blocked: str
) -> None:
    _with_options(ctx, input_wait_s=1.0, auto_background_s=0)
    start = time.monotonic()
    out = await tool.run(Params(command=cmd, timeout=30_000), ctx)
    assert time.monotonic() - start < 5
    assert out.is_error
    assert out.data["waiting_for_input"] is True
    assert out.content.startswith("Killed: waiting for input (")
    assert blocked in out.content.splitlines()[0]
    assert "Project name?" in out.content  # the prompt is shown
    assert "non-interactive flags" in out.content
    assert await gone(int(out.content.split("(pid ")[1].split(")")[0]))


async def test_quiet_commands_and_pipelines_are_not_taken_for_prompts(ctx: ToolContext) -> None:
    _with_options(ctx, input_wait_s=0.3, auto_background_s=0.3)
    out = await tool.run(Params(command="sleep 1.2 | cat; sleep 0.3; echo done"), ctx)
    assert (out.is_error, out.content) == (False, "Exit code: 0\nOutput:\ndone")


async def test_a_dev_server_in_the_foreground_moves_to_the_background(ctx: ToolContext) -> None:
    _with_options(ctx, input_wait_s=5, auto_background_s=1.0)
    cmd = f"{sys.executable} -u -m http.server 0 --bind 127.0.0.1"
    start = time.monotonic()
    out = await tool.run(Params(command=cmd, timeout=60_000), ctx)
    assert time.monotonic() - start < 5
    assert not out.is_error
    assert out.data["auto_background"] is True
    pgid, log = out.data["pgid"], Path(out.data["log_path"])
    assert out.content.startswith("Moved to the background after 1 s")
    assert "Serving HTTP" in out.content
    assert f"tail -n 50 {log}" in out.content
    assert f"kill -- -{pgid}" in out.content
    assert out.data["ports"]
    assert f"listening on port {out.data['ports'][0]}" in out.content
    assert [job.pgid for job in background_jobs(ctx)] == [pgid]
    assert alive(pgid)
    await shutdown_background_jobs(ctx)
    assert await gone(pgid)


async def test_a_command_holding_a_port_is_a_server_too(ctx: ToolContext) -> None:
    _with_options(ctx, auto_background_s=0.6)
    cmd = (
        f'{sys.executable} -c "import socket, time; s = socket.socket(); '
        "s.bind(('127.0.0.1', 0)); s.listen(); print('ready', flush=True); time.sleep(60)\""
    )
    out = await tool.run(Params(command=cmd, timeout=30_000), ctx)
    assert out.data["auto_background"] is True
    assert "listening on port" in out.content
    await shutdown_background_jobs(ctx)
    assert await gone(out.data["pgid"])


async def test_other_long_commands_are_not_backgrounded(ctx: ToolContext) -> None:
    _with_options(ctx, auto_background_s=0.3)
    out = await tool.run(Params(command="sleep 1; echo finished"), ctx)
    assert out.content == "Exit code: 0\nOutput:\nfinished"
    assert background_jobs(ctx) == []


def test_server_commands_are_recognized() -> None:
    for cmd in ("npm run dev", "pnpm dev", "yarn start", "npx vite", "next dev", "vite --port 3"):
        assert looks_like_server(cmd), cmd
    for cmd in ("uvicorn app:app --reload", "flask run", "python manage.py runserver"):
        assert looks_like_server(cmd), cmd
    for cmd in ("rails s", "jest --watch", "docker compose up", "python -m http.server 8000"):
        assert looks_like_server(cmd), cmd
    for cmd in ("npm run build", "vite build", "pytest -q", "npm test", "make", "git status"):
        assert not looks_like_server(cmd), cmd


def test_background_jobs_die_when_a_headless_run_is_interrupted(tmp_path: Path) -> None:
    """Ctrl-C during a headless run: Session.aclose still stops the session's jobs."""
    repo = tmp_path / "repo"
    repo.mkdir()
    pid_file = tmp_path / "server.pid"
    server = f"echo $$ > {pid_file}; exec sleep 60"
    with FakeLLM() as fake:
        fake.script(
            tool_turn(call("run_shell_command", command=server, is_background=True)),
            Turn(text="never sent", delay_s=30),
        )
        env = {**os.environ, "OPENAI_BASE_URL": fake.base_url}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "qwen_code",
                "-p",
                "serve",
                "--yolo",
                "--sandbox",
                "off",
                "-o",
                "json",
            ],
            cwd=repo,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            fake.wait_for_chat_requests(2, timeout=60)  # not the start-up probe's GETs
            sleeper = int(pid_file.read_text())
            assert alive(sleeper)
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 130
    assert not alive(sleeper)
