"""Running one command hook: its shell, its input on stdin, its output (capped), its
timeout.

The hook runs in a process group of its own, so a timeout (or the caller's
cancellation) kills it together with everything it started: a hanging hook costs the
session its timeout and no more. Output is read while the hook runs and kept up to
`OUTPUT_CAP` bytes per stream; the rest is read and dropped, so a chatty hook neither
blocks on a full pipe nor fills memory. A hook whose background children keep its
stdout open after it exited is not waited for beyond `PIPE_GRACE_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from qwen_code.processes import POLL_S, signal_group, wait_gone

OUTPUT_CAP = 1 << 20
"""Bytes kept of a hook's stdout and of its stderr."""
PIPE_GRACE_S = 1.0
"""How long, after the hook exited, its output pipes may stay open (a child it left
running in the background holding them) before reading stops."""
KILL_WAIT_S = 2.0
"""Longest wait for a killed hook's process group to be gone."""
_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class HookRun:
    """What one hook process did."""

    exit_code: int | None
    """None when it did not finish: it timed out or could not start (see `error`);
    negative when a signal ended it."""
    stdout: str = ""
    stderr: str = ""
    error: str = ""
    truncated: bool = False
    """Output beyond `OUTPUT_CAP` was dropped."""


def shell_argv(command: str) -> list[str]:
    """How a hook command runs: bash when there is one (hooks written for Claude Code and
    Qwen Code assume it), else the POSIX shell."""
    return [shutil.which("bash") or "/bin/sh", "-c", command]


class _Capture:
    """One output stream, read to the end and kept up to the cap."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.truncated = False

    async def drain(self, stream: asyncio.StreamReader | None) -> None:
        if stream is None:
            return
        while chunk := await stream.read(_CHUNK):
            room = OUTPUT_CAP - len(self.data)
            if len(chunk) > room:
                self.truncated = True
            if room > 0:
                self.data += chunk[:room]

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


async def _feed(stdin: asyncio.StreamWriter | None, data: bytes) -> None:
    """Write the input and close stdin; a hook that does not read it is fine."""
    if stdin is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stdin.write(data)
        await stdin.drain()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
        stdin.close()


async def run_hook(
    command: str, *, stdin: bytes, cwd: Path, env: dict[str, str], timeout_s: float
) -> HookRun:
    """Run `command` with `stdin` as its input; never raises for the hook's failure (only
    `CancelledError`, after killing the hook)."""
    try:
        proc = await _spawn(command, cwd=cwd, env=env)
    except OSError as exc:
        return HookRun(None, error=f"could not start: {exc.strerror or exc}")
    out, err = _Capture(), _Capture()
    feeder = asyncio.create_task(_feed(proc.stdin, stdin))
    readers = [
        asyncio.create_task(out.drain(proc.stdout)),
        asyncio.create_task(err.drain(proc.stderr)),
    ]
    error = ""
    try:
        async with asyncio.timeout(timeout_s):
            await _wait_exit(proc, readers)
    except TimeoutError:
        if proc.returncode is None:  # not when only its leftover children held the pipes
            error = f"timed out after {timeout_s:g} s"
    finally:
        await _finish(proc, [feeder, *readers])
    code = None if error else proc.returncode
    truncated = out.truncated or err.truncated
    return HookRun(code, out.text(), err.text(), error, truncated)


async def _spawn(command: str, *, cwd: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    """Start the hook in a process group of its own. Cancelled while starting, it still
    finishes starting (a moment) and is then killed: asyncio's own cleanup would wait
    for the pipes, which a child of the hook may hold for as long as it runs."""
    spawn = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *shell_argv(command),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    )
    try:
        return await asyncio.shield(spawn)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await _finish(await spawn, [])
        raise


async def _wait_exit(proc: asyncio.subprocess.Process, readers: list[asyncio.Task[None]]) -> None:
    """Until the hook exited and its output is read, or `PIPE_GRACE_S` after it exited
    while something it left running still holds its pipes. (`Process.wait()` alone
    would wait for the pipes too.)"""
    while proc.returncode is None:
        done, _ = await asyncio.wait(readers, timeout=POLL_S)
        if len(done) == len(readers):
            await proc.wait()  # the pipes are closed: this is the exit itself
            return
    await asyncio.wait(readers, timeout=PIPE_GRACE_S)


async def _finish(proc: asyncio.subprocess.Process, tasks: list[asyncio.Task[None]]) -> None:
    """Kill the hook's group if it is still running, stop the I/O tasks, release the
    pipes. Runs on cancellation too: the awaits here are short."""
    if proc.returncode is None:
        signal_group(proc.pid, signal.SIGKILL)
        await wait_gone([proc.pid], KILL_WAIT_S)  # not proc.wait(): see _wait_exit
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    transport = getattr(proc, "_transport", None)
    if transport is not None:
        transport.close()
