"""Child processes: run one to completion, kill one, and process groups (is anything in a
group still alive, signal it, stop it for good).

Commands run in their own process group (session) so that a timeout, Ctrl-C or the end of
a session can stop the command together with everything it started. Shared by the shell
tool, the REPL's `!` commands and `serve` (which stops engines from synchronous code).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

KILL_GRACE_S = 2.0
"""Time a process group gets between SIGTERM and SIGKILL."""
POLL_S = 0.02


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    """True while a live (non-zombie) process is in the group. Zombies do not count: in a
    container whose PID 1 does not reap, a killed orphan stays a zombie for good."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    with os.scandir(proc) as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                return True
    return False


async def wait_gone(groups: list[int], timeout_s: float) -> bool:
    """Poll until no process of `groups` is alive (True) or `timeout_s` passed (False).
    Polling, because nothing signals the death of a grandchild we are not the parent of."""
    deadline = time.monotonic() + timeout_s
    while True:
        if not any(group_alive(g) for g in groups):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL_S)


async def terminate_groups(groups: list[int], grace_s: float = KILL_GRACE_S) -> None:
    """SIGTERM each group, then SIGKILL whatever is left after the grace period (also when
    this wait is itself cancelled, e.g. by a second Ctrl-C)."""
    for pgid in groups:
        signal_group(pgid, signal.SIGTERM)
    try:
        await wait_gone(groups, grace_s)
    finally:
        for pgid in groups:
            if group_alive(pgid):
                signal_group(pgid, signal.SIGKILL)


def stop_group(pgid: int, grace_s: float) -> bool:
    """SIGTERM the group, SIGKILL what is left after `grace_s` (at once on a second Ctrl+C).
    True when no process of the group is left."""
    signal_group(pgid, signal.SIGTERM)
    with contextlib.suppress(KeyboardInterrupt):
        _wait_gone_sync(pgid, grace_s)
    if group_alive(pgid):
        signal_group(pgid, signal.SIGKILL)
        _wait_gone_sync(pgid, 5.0)
    return not group_alive(pgid)


def _wait_gone_sync(pgid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)


async def run_process(argv: list[str], cwd: Path | None = None) -> tuple[int, bytes, bytes]:
    """Run a command to completion without blocking the event loop; (rc, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await proc.communicate()
    except BaseException:
        kill_process(proc)
        await proc.wait()
        raise
    return proc.returncode or 0, out, err


def kill_process(proc: asyncio.subprocess.Process) -> None:
    """Kill a child that may still be running.

    Not `proc.kill()`: on Python 3.11 that calls `Popen.poll()`, which can reap the child
    behind asyncio's child watcher (a "Unknown child process" warning, exit code 255).
    """
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(proc.pid, getattr(signal, "SIGKILL", signal.SIGTERM))


def on_signal(sig: signal.Signals, callback: Callable[[], None]) -> bool:
    """Call `callback` in the running loop when `sig` arrives. False where loops take no
    signal handlers (Windows): the signal then does what it does by default there (SIGTERM
    ends the process), which is the intended fallback, not a missing feature."""
    try:
        asyncio.get_running_loop().add_signal_handler(sig, callback)
    except (NotImplementedError, RuntimeError):
        return False
    return True
