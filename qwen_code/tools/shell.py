"""`run_shell_command`: run a bash command in the workspace, non-interactively.

Every command runs in its own process group with stdin closed, so a command that waits
for input gets EOF at once, and a timeout, a cancel (Ctrl-C) or the end of the session can
kill the command together with everything it started. Output goes straight to a file
under the session's scratch directory (stdout and stderr interleaved, nothing held in
memory while it runs); the model gets a head+tail excerpt and, when that excerpt is cut,
the path of the full output.

Background commands (`is_background`) and processes a foreground command left running
(`server &`) are kept in `ctx.state["background_jobs"]`; `shutdown_background_jobs`
stops them all when the session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pydantic import Field

from qwen_code.tools.base import (
    Tool,
    ToolContext,
    ToolError,
    ToolLimits,
    ToolOutput,
    ToolParams,
    truncate_text,
)
from qwen_code.tools.process_group import (
    group_alive,
    terminate_groups,
    wait_gone,
)

JOBS_KEY = "background_jobs"
_BACKGROUND_PROBE_S = 0.3
"""How long a background start waits to catch commands that fail at once."""
_POLL_S = 0.05
_WHOLE_READ_BYTES = 4 * 1024 * 1024
"""Outputs up to this size are read whole; larger ones only in a head and a tail chunk."""
_SHELL_ENV = {"QWEN_CODE": "1", "PAGER": "cat", "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0"}


@dataclass(slots=True, kw_only=True)
class BackgroundJob:
    """A process group started by this session that may still be running."""

    command: str
    pid: int
    pgid: int
    log_path: Path
    started_at: float
    process: subprocess.Popen[bytes] | None = None
    """The shell we started with `is_background` (None for processes a foreground
    command left behind); kept so that its exit status can be reaped."""

    @property
    def running(self) -> bool:
        if self.process is not None:
            self.process.poll()
        return group_alive(self.pgid)


def background_jobs(ctx: ToolContext) -> list[BackgroundJob]:
    """The session's background jobs (the list in `ctx.state`, created on first use)."""
    jobs: list[BackgroundJob] = ctx.state.setdefault(JOBS_KEY, [])
    return jobs


async def shutdown_background_jobs(ctx: ToolContext) -> None:
    """Kill every background job of the session: SIGTERM to each group, SIGKILL after a
    grace period to groups still alive. Called when the session ends."""
    jobs = background_jobs(ctx)
    try:
        await terminate_groups([job.pgid for job in jobs if job.running])
    finally:
        for job in jobs:
            if job.process is not None and job.process.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    job.process.wait(timeout=1)
        jobs.clear()


class ShellTool(Tool["ShellTool.Params"]):
    name = "run_shell_command"
    kind = "execute"

    class Params(ToolParams):
        command: str
        """The exact bash command to run, e.g. `pytest -x -q tests/test_api.py`."""
        description: str | None = None
        """A short description of what the command does, shown to the user."""
        timeout: float | None = Field(default=None, gt=0)
        """Timeout in milliseconds (default 120000, at most 600000). Ignored for
        background commands."""
        is_background: bool = False
        """True to start a long-running command (server, watcher) in the background and
        return at once with its process group id and log file."""
        directory: str | None = None
        """Directory to run in, relative to the workspace root or absolute inside the
        workspace. Defaults to the workspace root."""

    def summary(self, params: ShellTool.Params) -> str:
        text = " ".join(params.command.split())
        if len(text) > 80:
            text = text[:79] + "…"
        return f"{text} (background)" if params.is_background else text

    async def run(self, params: ShellTool.Params, ctx: ToolContext) -> ToolOutput:
        if not params.command.strip():
            raise ToolError("The command is empty.")
        cwd = _working_directory(params.directory, ctx)
        if params.is_background:
            return await _run_background(params.command, cwd, ctx)
        timeout_s = _timeout_seconds(params.timeout, ctx.limits)
        log_path, out = _new_log(ctx, "shell")
        with out:
            proc = await asyncio.create_subprocess_exec(
                *_shell_argv(params.command),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=_shell_env(),
                start_new_session=True,
            )
        exit_code, timed_out = await _wait(proc, timeout_s)
        job = None
        if not timed_out and group_alive(proc.pid):
            job = _adopt_leftovers(params.command, proc.pid, log_path)
            background_jobs(ctx).append(job)
        return _foreground_result(
            log_path,
            ctx,
            exit_code=exit_code,
            timed_out=timed_out,
            timeout_s=timeout_s,
            job=job,
        )


def _working_directory(directory: str | None, ctx: ToolContext) -> Path:
    if directory is None or not directory.strip():
        return ctx.workspace.root
    path = ctx.workspace.resolve(directory, must_exist=True)
    if not path.is_dir():
        raise ToolError(f"{ctx.workspace.display(path)!r} is not a directory.")
    return path


def _timeout_seconds(timeout_ms: float | None, limits: ToolLimits) -> float:
    if timeout_ms is None:
        return limits.shell_default_timeout_s
    return min(timeout_ms / 1000.0, limits.shell_max_timeout_s)


def _shell_argv(command: str) -> list[str]:
    return [shutil.which("bash") or "/bin/sh", "-c", command]


def _shell_env() -> dict[str, str]:
    return {**os.environ, **_SHELL_ENV}


def _new_log(ctx: ToolContext, prefix: str) -> tuple[Path, IO[bytes]]:
    """A fresh, uniquely named file under the scratch directory, open for writing."""
    fd, name = tempfile.mkstemp(prefix=f"{prefix}-", suffix=".log", dir=ctx.scratch())
    return Path(name), os.fdopen(fd, "wb")


async def _wait(proc: asyncio.subprocess.Process, timeout_s: float) -> tuple[int | None, bool]:
    """Wait for the shell: (exit code, timed out). A timeout or a cancel kills the whole
    process group, so grandchildren (`sleep 100 &`) do not outlive the command."""
    try:
        return await asyncio.wait_for(proc.wait(), timeout_s), False
    except TimeoutError:
        await terminate_groups([proc.pid])
        return await proc.wait(), True
    except asyncio.CancelledError:
        await terminate_groups([proc.pid])
        raise


def _adopt_leftovers(command: str, pgid: int, log_path: Path) -> BackgroundJob:
    """The shell exited but processes it started (`server &`) still run: track them as a
    background job so that the session end stops them."""
    return BackgroundJob(
        command=command, pid=pgid, pgid=pgid, log_path=log_path, started_at=time.time()
    )


async def _run_background(command: str, cwd: Path, ctx: ToolContext) -> ToolOutput:
    """Start `command` in its own group with output to a log and return at once; a
    command that ends within a moment is reported like a foreground one."""
    log_path, out = _new_log(ctx, "background")
    with out:
        proc = _spawn_detached(command, cwd, out)
    if await wait_gone([proc.pid], _BACKGROUND_PROBE_S):
        return _foreground_result(
            log_path,
            ctx,
            exit_code=proc.wait(),
            timed_out=False,
            timeout_s=0.0,
            job=None,
            prefix="The background command has already finished.\n",
        )
    job = BackgroundJob(
        command=command,
        pid=proc.pid,
        pgid=proc.pid,
        log_path=log_path,
        started_at=time.time(),
        process=proc,
    )
    background_jobs(ctx).append(job)
    content = (
        f"Started in the background: pid {job.pid}, process group {job.pgid}.\n"
        f"Output (stdout and stderr) goes to {log_path}; read it with "
        f"`tail -n 50 {log_path}`.\n"
        f"Stop it with `kill -- -{job.pgid}`. It is stopped when the session ends."
    )
    data = {"background": True, "pid": job.pid, "pgid": job.pgid, "log_path": str(log_path)}
    return ToolOutput(content=content, data=data)


def _spawn_detached(command: str, cwd: Path, out: IO[bytes]) -> subprocess.Popen[bytes]:
    """A plain Popen, not tied to the event loop, so the job outlives loop changes."""
    return subprocess.Popen(
        _shell_argv(command),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=_shell_env(),
        start_new_session=True,
    )


@dataclass(slots=True, frozen=True)
class _Excerpt:
    text: str
    truncated: bool
    total_bytes: int
    total_lines: int


def _foreground_result(
    log_path: Path,
    ctx: ToolContext,
    *,
    exit_code: int | None,
    timed_out: bool,
    timeout_s: float,
    job: BackgroundJob | None,
    prefix: str = "",
) -> ToolOutput:
    """The compact result: status line, output excerpt, where the full output is."""
    excerpt = _read_output(log_path, ctx.limits)
    if timed_out:
        status = f"Killed: timed out after {_seconds(timeout_s)}"
    else:
        status = f"Exit code: {_exit_text(exit_code)}"
    parts = [f"{prefix}{status}", "Output:", excerpt.text.rstrip("\n") or "(no output)"]
    data: dict[str, object] = {"exit_code": exit_code, "timed_out": timed_out}
    if excerpt.truncated:
        parts.append(_saved_note(log_path, excerpt, ctx))
        data["output_path"] = str(log_path)
    if timed_out:
        parts.append(
            "If it is a server or watcher, run it with is_background=true; if it waits "
            "for input, pass non-interactive flags; otherwise raise `timeout`."
        )
    if job is not None:
        parts.append(
            f"Processes it started are still running in process group {job.pgid} "
            f"(output goes to {log_path}). Stop them with `kill -- -{job.pgid}`."
        )
        data.update(background=True, pgid=job.pgid, log_path=str(log_path))
    if not excerpt.truncated and job is None:
        log_path.unlink(missing_ok=True)
    is_error = timed_out or exit_code != 0
    return ToolOutput(content="\n".join(parts), is_error=is_error, data=data)


def _saved_note(log_path: Path, excerpt: _Excerpt, ctx: ToolContext) -> str:
    """Where the full output is and how to read it: with read_file/grep_search when the
    scratch directory is one of the workspace roots, else with shell commands."""
    if ctx.workspace.allow_outside or ctx.workspace.contains(log_path):
        how = "read_file (offset/limit) or grep_search"
    else:
        how = "`sed -n 'START,ENDp' FILE`, `grep -n PATTERN FILE` or `tail -n N FILE`"
    return (
        f"[Output truncated: {excerpt.total_lines:,} lines, {_size(excerpt.total_bytes)} "
        f"in total. Full output saved to {log_path}; read parts of it with {how}.]"
    )


def _read_output(path: Path, limits: ToolLimits) -> _Excerpt:
    """The output capped to the limits (head and tail). Small files are read whole and
    cut with `truncate_text`; big ones are never read whole."""
    size = path.stat().st_size
    if size <= max(_WHOLE_READ_BYTES, limits.max_output_chars * 8):
        raw = path.read_bytes()
        lines = raw.count(b"\n") + (1 if raw and not raw.endswith(b"\n") else 0)
        text, truncated = truncate_text(
            raw.decode("utf-8", errors="replace"),
            max_chars=limits.max_output_chars,
            max_lines=limits.max_output_lines,
        )
        return _Excerpt(text, truncated, size, lines)
    return _Excerpt(_head_tail(path, size, limits), True, size, _count_lines(path))


def _head_tail(path: Path, size: int, limits: ToolLimits) -> str:
    """Head 1/5 and tail 4/5 of the caps, as `truncate_text` keeps, read from the file."""
    head_c = limits.max_output_chars // 5
    tail_c = limits.max_output_chars - head_c
    head_n = limits.max_output_lines // 5
    tail_n = limits.max_output_lines - head_n
    with path.open("rb") as f:
        head_raw = f.read(head_c * 4)
        f.seek(max(size - tail_c * 4, 0))
        tail_raw = f.read()
    head_lines = head_raw.decode("utf-8", errors="replace").splitlines(keepends=True)
    head = "".join(head_lines[:head_n])[:head_c]
    tail_lines = tail_raw.decode("utf-8", errors="replace").splitlines(keepends=True)
    tail = "".join(tail_lines[-tail_n:] if tail_n else [])[-tail_c:]
    omitted = size - len(head.encode()) - len(tail.encode())
    return f"{head}\n... [{_size(omitted)} truncated] ...\n{tail}"


def _count_lines(path: Path) -> int:
    count, last = 0, b""
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk
    return count + (1 if last and not last.endswith(b"\n") else 0)


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"{code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            return str(code)
    return str(code)


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"
