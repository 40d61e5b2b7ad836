"""`run_shell_command`: run a bash command in the workspace, non-interactively.

Every command runs in its own process group with stdin closed, so a command that waits
for input gets EOF at once, and a timeout, a cancel (Ctrl-C) or the end of the session can
kill the command together with everything it started. Output goes straight to a file
under the session's scratch directory (stdout and stderr interleaved, nothing held in
memory while it runs); the model gets a head+tail excerpt and, when that excerpt is cut,
the path of the full output.

While a foreground command runs, `shell_watch.watch` ends it when it waits for input
that cannot come, and moves it to the background when it turns out to be a server.
Commands get the process environment without the provider credentials (see
`qwen_code.credentials`; `security.passCredentialsToCommands` lets them through).
With a sandbox on (`qwen_code.sandbox`), the command runs inside bubblewrap; when the
sandbox blocked something the result says what, and the model may ask to run the command
outside it (`dangerously_disable_sandbox`), which the user must approve every time.
Background commands (`is_background`), such servers and processes a foreground command
left running (`server &`) are kept in `ctx.state["background_jobs"]`;
`shutdown_background_jobs` stops them all when the session ends.
"""

from __future__ import annotations

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

from qwen_code.processes import (
    group_alive,
    terminate_groups,
    wait_gone,
)
from qwen_code.sandbox.launch import Launch, SandboxedPopen
from qwen_code.sandbox.manager import SandboxUnavailable
from qwen_code.tools.base import (
    Tool,
    ToolContext,
    ToolError,
    ToolLimits,
    ToolOutput,
    ToolParams,
)
from qwen_code.tools.events import ToolNotice
from qwen_code.tools.shell_output import Excerpt, read_output, size_text
from qwen_code.tools.shell_watch import (
    NON_INTERACTIVE_HINT,
    Watched,
    needs_terminal,
    shell_options,
    watch,
)

JOBS_KEY = "background_jobs"
_BACKGROUND_PROBE_S = 0.3
"""How long a background start waits to catch commands that fail at once."""
_POLL_S = 0.05
_SHELL_ENV = {
    "QWEN_CODE": "1",
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "GIT_TERMINAL_PROMPT": "0",
    "DEBIAN_FRONTEND": "noninteractive",
    "PIP_NO_INPUT": "1",
    "npm_config_yes": "true",
}
"""No pagers, and package tools that take their defaults instead of asking."""


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
        dangerously_disable_sandbox: bool = False
        """Run outside the sandbox. Only after the sandbox blocked something the task
        truly needs; the user must approve each such call."""

    def escalation(self, params: ShellTool.Params, ctx: ToolContext) -> str | None:
        if not params.dangerously_disable_sandbox or ctx.sandbox is None:
            return None
        if ctx.sandbox.mode_for(ctx.approval_mode) == "off":
            return None
        return "it asks to run a command outside the sandbox"

    def summary(self, params: ShellTool.Params) -> str:
        text = " ".join(params.command.split())
        if len(text) > 80:
            text = text[:79] + "…"
        return f"{text} (background)" if params.is_background else text

    async def run(self, params: ShellTool.Params, ctx: ToolContext) -> ToolOutput:
        if not params.command.strip():
            raise ToolError("The command is empty.")
        cwd = _working_directory(params.directory, ctx)
        launch = _launch(params, cwd, ctx)
        if params.is_background:
            return _sandbox_notes(
                await _run_background(launch, params.command, cwd, ctx), launch, ctx
            )
        return _sandbox_notes(await self._foreground(launch, params, cwd, ctx), launch, ctx)

    async def _foreground(
        self, launch: Launch, params: ShellTool.Params, cwd: Path, ctx: ToolContext
    ) -> ToolOutput:
        timeout_s = _timeout_seconds(params.timeout, ctx.limits)
        log_path, out = _new_log(ctx, "shell")
        with out:
            proc = launch.spawn(cwd, out)
        watched = await watch(proc, log_path, params.command, timeout_s, shell_options(ctx))
        if watched.outcome == "backgrounded":
            return _auto_backgrounded(params.command, proc, log_path, watched, ctx)
        job = None
        if watched.outcome == "exited" and _left_running(proc):
            job = _adopt_leftovers(params.command, proc.pid, log_path)
            background_jobs(ctx).append(job)
        return _foreground_result(
            log_path,
            ctx,
            exit_code=watched.exit_code,
            timed_out=watched.outcome == "timed_out",
            timeout_s=timeout_s,
            job=job,
            waiting=watched.detail if watched.outcome == "waiting_for_input" else None,
        )


def _left_running(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the command left processes running (`server &`): the sandbox's wrapper
    reports it; unsandboxed, anything alive in its process group."""
    if isinstance(proc, SandboxedPopen):
        return proc.left_running
    return group_alive(proc.pid)


def _launch(params: ShellTool.Params, cwd: Path, ctx: ToolContext) -> Launch:
    """How to start the command: in the session's sandbox when it is on (and the call
    did not ask, with the user's approval, to run outside it)."""
    env = _shell_env(ctx)
    if ctx.sandbox is None or params.dangerously_disable_sandbox:
        return Launch(argv=_shell_argv(params.command), env=env)
    try:
        return ctx.sandbox.launch(
            params.command,
            approval_mode=ctx.approval_mode,
            env=env,
            cwd=cwd,
            roots=ctx.workspace.roots,
            scratch=ctx.scratch(),
        )
    except SandboxUnavailable as exc:
        raise ToolError(str(exc)) from exc


def _sandbox_notes(output: ToolOutput, launch: Launch, ctx: ToolContext) -> ToolOutput:
    """Say what the sandbox blocked (to the model) and what the user should know once."""
    if launch.mode != "off":
        output.data["sandbox"] = launch.mode
    if ctx.sandbox is not None:
        note = ctx.sandbox.explain(output.content, launch, failed=output.is_error)
        if note:
            output.content = f"{output.content}\n{note}"
            output.data["sandbox_blocked"] = True
    if launch.notes:
        output.events = (*output.events, *(ToolNotice(message=n) for n in launch.notes))
    return output


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


def _shell_env(ctx: ToolContext) -> dict[str, str]:
    """The process environment without the provider credentials (unless the user lets
    commands have them), with no pagers and no prompts."""
    return ctx.credentials.child_environment(extra=_SHELL_ENV)


def _new_log(ctx: ToolContext, prefix: str) -> tuple[Path, IO[bytes]]:
    """A fresh, uniquely named file under the scratch directory, open for writing."""
    fd, name = tempfile.mkstemp(prefix=f"{prefix}-", suffix=".log", dir=ctx.scratch())
    return Path(name), os.fdopen(fd, "wb")


def _adopt_leftovers(command: str, pgid: int, log_path: Path) -> BackgroundJob:
    """The shell exited but processes it started (`server &`) still run: track them as a
    background job so that the session end stops them."""
    return BackgroundJob(
        command=command, pid=pgid, pgid=pgid, log_path=log_path, started_at=time.time()
    )


async def _run_background(launch: Launch, command: str, cwd: Path, ctx: ToolContext) -> ToolOutput:
    """Start `command` in its own group with output to a log and return at once; a
    command that ends within a moment is reported like a foreground one."""
    log_path, out = _new_log(ctx, "background")
    with out:
        proc = launch.spawn(cwd, out)
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
    job = _track(command, proc, log_path, ctx)
    content = f"Started in the background: pid {job.pid}, process group {job.pgid}.\n"
    return ToolOutput(content=content + _manage_note(job), data=_job_data(job))


def _track(
    command: str, proc: subprocess.Popen[bytes], log_path: Path, ctx: ToolContext
) -> BackgroundJob:
    """Keep a running command as a background job of the session."""
    job = BackgroundJob(
        command=command,
        pid=proc.pid,
        pgid=proc.pid,
        log_path=log_path,
        started_at=time.time(),
        process=proc,
    )
    background_jobs(ctx).append(job)
    return job


def _manage_note(job: BackgroundJob) -> str:
    log = job.log_path
    return (
        f"Output (stdout and stderr) goes to {log}; read the latest with `tail -n 50 {log}` "
        f"or search it with `grep -n PATTERN {log}`.\n"
        f"Stop it with `kill -- -{job.pgid}`. It is stopped when the session ends."
    )


def _job_data(job: BackgroundJob) -> dict[str, object]:
    return {"background": True, "pid": job.pid, "pgid": job.pgid, "log_path": str(job.log_path)}


def _auto_backgrounded(
    command: str,
    proc: subprocess.Popen[bytes],
    log_path: Path,
    watched: Watched,
    ctx: ToolContext,
) -> ToolOutput:
    """A foreground command that turned out to be a server: it keeps running as a
    background job and the model learns how to follow and stop it."""
    job = _track(command, proc, log_path, ctx)
    after = _seconds(shell_options(ctx).auto_background_s)
    excerpt = read_output(log_path, ctx.limits)
    content = (
        f"Moved to the background after {after} ({watched.detail}): it keeps "
        f"running as pid {job.pid}, process group {job.pgid}.\n"
        f"Output so far:\n{excerpt.text.rstrip() or '(no output yet)'}\n"
        f"{_manage_note(job)}\n"
        "Next time, start servers and watchers with is_background=true."
    )
    data = {**_job_data(job), "auto_background": True, "ports": list(watched.ports)}
    return ToolOutput(content=content, data=data)


def _foreground_result(
    log_path: Path,
    ctx: ToolContext,
    *,
    exit_code: int | None,
    timed_out: bool,
    timeout_s: float,
    job: BackgroundJob | None,
    prefix: str = "",
    waiting: str | None = None,
) -> ToolOutput:
    """The compact result: status line, output excerpt, where the full output is, and
    what to do about a timeout or a command that waited for input."""
    excerpt = read_output(log_path, ctx.limits)
    if timed_out:
        status = f"Killed: timed out after {_seconds(timeout_s)}"
    elif waiting:
        quiet = _seconds(shell_options(ctx).input_wait_s)
        status = f"Killed: waiting for input ({waiting}, no new output for {quiet})"
    else:
        status = f"Exit code: {_exit_text(exit_code)}"
    parts = [f"{prefix}{status}", "Output:", excerpt.text.rstrip("\n") or "(no output)"]
    data: dict[str, object] = {"exit_code": exit_code, "timed_out": timed_out}
    if excerpt.truncated:
        parts.append(_saved_note(log_path, excerpt, ctx))
        data["output_path"] = str(log_path)
    parts.extend(_hints(excerpt.text, exit_code, timed_out, waiting, data))
    if job is not None:
        parts.append(
            f"Processes it started are still running in process group {job.pgid} "
            f"(output goes to {log_path}). Stop them with `kill -- -{job.pgid}`."
        )
        data.update(background=True, pgid=job.pgid, log_path=str(log_path))
    if not excerpt.truncated and job is None:
        log_path.unlink(missing_ok=True)
    is_error = timed_out or bool(waiting) or exit_code != 0
    return ToolOutput(content="\n".join(parts), is_error=is_error, data=data)


def _hints(
    output: str,
    exit_code: int | None,
    timed_out: bool,
    waiting: str | None,
    data: dict[str, object],
) -> list[str]:
    if waiting:
        data["waiting_for_input"] = True
        return [NON_INTERACTIVE_HINT]
    if timed_out:
        return [
            "If it is a server or watcher, run it with is_background=true; if it waits "
            "for input, pass non-interactive flags; otherwise raise `timeout`."
        ]
    if exit_code not in (0, None) and needs_terminal(output):
        data["needs_terminal"] = True
        return ["It seems to need a terminal (there is none here). " + NON_INTERACTIVE_HINT]
    return []


def _saved_note(log_path: Path, excerpt: Excerpt, ctx: ToolContext) -> str:
    """Where the full output is and how to read it: with read_file/grep_search when the
    scratch directory is one of the workspace roots, else with shell commands."""
    if ctx.workspace.allow_outside or ctx.workspace.contains(log_path):
        how = "read_file (offset/limit) or grep_search"
    else:
        how = "`sed -n 'START,ENDp' FILE`, `grep -n PATTERN FILE` or `tail -n N FILE`"
    return (
        f"[Output truncated: {excerpt.total_lines:,} lines, {size_text(excerpt.total_bytes)} "
        f"in total. Full output saved to {log_path}; read parts of it with {how}.]"
    )


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"{code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            return str(code)
    return str(code)


def _seconds(value: float) -> str:
    return f"{value:g} s"
