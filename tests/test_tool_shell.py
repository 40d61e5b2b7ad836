"""run_shell_command with real processes: exit codes, timeouts, process groups, output caps,
cancellation, background jobs."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qwen_code.tools.base import ToolContext, ToolError, ToolLimits
from qwen_code.tools.shell import ShellTool, background_jobs, shutdown_background_jobs
from qwen_code.tools.workspace import Workspace
from tests.helpers import alive, gone

Params = ShellTool.Params


def _text(path: Path) -> str:
    """The file's text, "" while it does not exist (sync: tests read small files)."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _line_count(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


async def _wait_for_text(path: Path, needle: str = "\n", within: float = 5.0) -> str:
    deadline = time.monotonic() + within
    while needle not in (text := _text(path)):
        assert time.monotonic() < deadline, f"{needle!r} never appeared in {path}"
        await asyncio.sleep(0.02)
    return text


async def _read_pid(path: Path) -> int:
    return int(await _wait_for_text(path))


def _make_ctx(tmp_path: Path, **limits: float) -> ToolContext:
    root = tmp_path / "ws"
    root.mkdir(exist_ok=True)
    return ToolContext(
        workspace=Workspace(root=root),
        limits=ToolLimits(max_output_chars=2000, max_output_lines=50, **limits),  # type: ignore[arg-type]
        scratch_dir=tmp_path / "scratch",
    )


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[ToolContext]:
    context = _make_ctx(tmp_path)
    yield context
    await shutdown_background_jobs(context)


tool = ShellTool()


async def test_success_output_and_no_leftover_file(ctx: ToolContext) -> None:
    out = await tool.run(Params(command="echo hello"), ctx)
    assert not out.is_error
    assert out.content == "Exit code: 0\nOutput:\nhello"
    assert out.data == {"exit_code": 0, "timed_out": False}
    assert list(ctx.scratch().iterdir()) == []


async def test_nonzero_exit_includes_stderr_in_order(ctx: ToolContext) -> None:
    out = await tool.run(Params(command="echo out; echo err >&2; echo more; exit 3"), ctx)
    assert out.is_error
    assert out.data["exit_code"] == 3
    assert out.content.startswith("Exit code: 3\nOutput:\n")
    assert out.content.endswith("out\nerr\nmore")


async def test_empty_output_and_signal_exit(ctx: ToolContext) -> None:
    out = await tool.run(Params(command="true"), ctx)
    assert out.content.endswith("Output:\n(no output)")
    out = await tool.run(Params(command="kill -9 $$"), ctx)
    assert out.is_error
    assert "killed by SIGKILL" in out.content


async def test_environment_marks_the_agent_and_disables_pagers(ctx: ToolContext) -> None:
    cmd = 'echo "$QWEN_CODE $PAGER $GIT_PAGER $GIT_TERMINAL_PROMPT"'
    out = await tool.run(Params(command=cmd), ctx)
    assert out.content.endswith("1 cat cat 0")


async def test_stdin_is_closed(ctx: ToolContext) -> None:
    start = time.monotonic()
    out = await tool.run(Params(command='read x; echo "got:$x rc:$?"', timeout=5000), ctx)
    assert time.monotonic() - start < 3
    assert out.content.endswith("got: rc:1")


async def test_runs_in_workspace_root_by_default(ctx: ToolContext) -> None:
    out = await tool.run(Params(command="pwd"), ctx)
    assert out.content.endswith(str(ctx.workspace.root))


async def test_timeout_kills_the_whole_group(ctx: ToolContext) -> None:
    cmd = "echo started; sleep 100 & echo $! > child.pid; sleep 30"
    start = time.monotonic()
    out = await tool.run(Params(command=cmd, timeout=500), ctx)
    assert time.monotonic() - start < 4
    assert out.is_error
    assert out.data["timed_out"] is True
    assert out.content.startswith("Killed: timed out after 0.5 s\nOutput:\nstarted")
    assert "is_background" in out.content
    assert await gone(int(_text(ctx.workspace.root / "child.pid")))


async def test_default_and_maximum_timeout_come_from_limits(tmp_path: Path) -> None:
    ctx = _make_ctx(tmp_path, shell_default_timeout_s=0.3, shell_max_timeout_s=0.4)
    out = await tool.run(Params(command="sleep 30"), ctx)
    assert out.content.startswith("Killed: timed out after 0.3 s")
    out = await tool.run(Params(command="sleep 30", timeout=3_600_000), ctx)
    assert out.content.startswith("Killed: timed out after 0.4 s")


async def test_long_output_keeps_head_and_tail_and_saves_everything(ctx: ToolContext) -> None:
    out = await tool.run(Params(command="seq 1 1000"), ctx)
    assert not out.is_error
    lines = out.content.splitlines()
    assert lines[2:4] == ["1", "2"]  # head, after "Exit code" and "Output:"
    assert "1000" in lines
    assert "500" not in lines
    assert "lines truncated" in out.content
    saved = Path(out.data["output_path"])
    assert saved.is_relative_to(ctx.scratch())
    assert _text(saved) == "".join(f"{i}\n" for i in range(1, 1001))
    assert f"Full output saved to {saved}" in out.content
    assert "1,000 lines" in out.content
    assert "sed -n" in out.content  # the scratch directory is outside the workspace here


async def test_saved_output_note_names_read_file_when_scratch_is_a_root(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (tmp_path / "ws").mkdir()
    ctx = ToolContext(
        workspace=Workspace(root=tmp_path / "ws", extra_roots=(scratch,)),
        limits=ToolLimits(max_output_chars=500, max_output_lines=10),
        scratch_dir=scratch,
    )
    out = await tool.run(Params(command="seq 1 100"), ctx)
    assert "read_file (offset/limit) or grep_search" in out.content


async def test_huge_output_is_read_as_head_and_tail_only(ctx: ToolContext) -> None:
    out = await tool.run(Params(command="seq 1 1000000"), ctx)
    assert len(out.content) < 3000
    lines = out.content.splitlines()
    assert lines[2:4] == ["1", "2"]
    assert lines[-2] == "1000000"  # the last line before the saved-file note
    assert "MB truncated" in out.content
    assert "1,000,000 lines" in out.content
    saved = Path(out.data["output_path"])
    assert _line_count(saved) == 1_000_000


async def test_directory_inside_workspace(ctx: ToolContext) -> None:
    sub = ctx.workspace.root / "pkg" / "sub"
    sub.mkdir(parents=True)
    out = await tool.run(Params(command="pwd", directory="pkg/sub"), ctx)
    assert out.content.endswith(str(sub))
    out = await tool.run(Params(command="pwd", directory=str(sub)), ctx)
    assert out.content.endswith(str(sub))


@pytest.mark.parametrize("directory", ["..", "/", "missing", "file.txt"])
async def test_bad_directory_is_refused(ctx: ToolContext, directory: str) -> None:
    (ctx.workspace.root / "file.txt").write_text("x")
    with pytest.raises(ToolError):
        await tool.run(Params(command="pwd", directory=directory), ctx)


async def test_empty_command_is_refused(ctx: ToolContext) -> None:
    with pytest.raises(ToolError):
        await tool.run(Params(command="  "), ctx)


async def test_cancel_kills_the_process_group(ctx: ToolContext) -> None:
    root = ctx.workspace.root
    cmd = "echo $$ > shell.pid; sleep 30 & echo $! > child.pid; wait"
    task = asyncio.create_task(tool.run(Params(command=cmd), ctx))
    child = await _read_pid(root / "child.pid")
    shell = await _read_pid(root / "shell.pid")
    assert alive(child)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await gone(child)
    assert await gone(shell)


async def test_background_server_runs_until_shutdown(ctx: ToolContext) -> None:
    cmd = f"{sys.executable} -u -m http.server 0 --bind 127.0.0.1"
    out = await tool.run(Params(command=cmd, is_background=True), ctx)
    assert not out.is_error
    pgid = out.data["pgid"]
    log = Path(out.data["log_path"])
    assert f"kill -- -{pgid}" in out.content
    assert str(log) in out.content
    jobs = background_jobs(ctx)
    assert [job.pgid for job in jobs] == [pgid]
    assert jobs[0].running
    await _wait_for_text(log, "Serving HTTP")
    await shutdown_background_jobs(ctx)
    assert await gone(pgid)
    assert background_jobs(ctx) == []


async def test_background_command_that_ends_at_once_is_reported(ctx: ToolContext) -> None:
    out = await tool.run(Params(command="echo oops; exit 2", is_background=True), ctx)
    assert out.is_error
    assert "already finished" in out.content
    assert "Exit code: 2" in out.content
    assert "oops" in out.content
    assert background_jobs(ctx) == []


async def test_processes_left_running_become_a_background_job(ctx: ToolContext) -> None:
    start = time.monotonic()
    out = await tool.run(Params(command="sleep 30 & echo $! > child.pid"), ctx)
    assert time.monotonic() - start < 3
    assert not out.is_error
    assert "still running in process group" in out.content
    child = int(_text(ctx.workspace.root / "child.pid"))
    assert alive(child)
    assert [job.pgid for job in background_jobs(ctx)] == [out.data["pgid"]]
    await shutdown_background_jobs(ctx)
    assert await gone(child)


def test_summary_and_params() -> None:
    long = "python -m pytest " + "tests/test_x.py " * 20
    summary = tool.summary(Params(command=long))
    assert summary.startswith("python -m pytest tests/test_x.py")
    assert len(summary) <= 80
    assert tool.summary(Params(command="npm run dev", is_background=True)) == (
        "npm run dev (background)"
    )
    with pytest.raises(ValueError):
        Params(command="ls", timeout=0)
    schema = tool.schema()["function"]
    assert schema["name"] == "run_shell_command"
    assert "milliseconds" in schema["parameters"]["properties"]["timeout"]["description"]
    assert schema["parameters"]["required"] == ["command"]
