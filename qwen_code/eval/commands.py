"""Running one process of a run (setup, the agent, the test) with a deadline, stoppable
from another thread, its output to a file; setup and test commands inside the sandbox."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from qwen_code.processes import group_alive, stop_group
from qwen_code.sandbox.manager import Sandbox, SandboxUnavailable
from qwen_code.sandbox.policy import CREDENTIAL_PATHS, expand_paths, parse_network

KILL_GRACE_S = 5.0
POLL_S = 0.05


class Stopped(Exception):
    """The eval is stopping (Ctrl+C): the run is abandoned, not recorded."""


@dataclass(slots=True)
class Finished:
    exit_code: int | None
    """None when it was killed at its deadline."""
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None


def wait(proc: subprocess.Popen[bytes], deadline_s: float, stop: threading.Event) -> Finished:
    """Wait for `proc` (its own process group) until it exits or `deadline_s` passes (then
    the group is stopped); raises Stopped, after stopping the group, when `stop` is set."""
    started = time.monotonic()
    try:
        while True:
            code = proc.poll()
            if code is not None:
                if group_alive(proc.pid):  # what it left running (a server) goes too
                    stop_group(proc.pid, KILL_GRACE_S)
                return Finished(code, time.monotonic() - started)
            if stop.is_set():
                raise Stopped
            if time.monotonic() - started > deadline_s:
                stop_group(proc.pid, KILL_GRACE_S)
                proc.wait()
                return Finished(None, time.monotonic() - started)
            stop.wait(POLL_S)
    except BaseException:  # Stopped, or a KeyboardInterrupt (Ray cancels tasks so)
        stop_group(proc.pid, KILL_GRACE_S)
        proc.wait()
        raise


def task_sandbox(mode: str, network: object, hidden: list[str]) -> Sandbox:
    """The sandbox of a run's setup and test commands: the agent's own policy (the
    workspace writable, the task's network, credentials and `hidden` out of sight)."""
    home = Path.home()
    paths = expand_paths([*CREDENTIAL_PATHS, *hidden], home, dict(os.environ))
    return Sandbox(
        setting="off" if mode == "off" else "workspace-write",
        network=parse_network(network),
        hidden=paths,
        headless=True,
    )


def run_shell(
    sandbox: Sandbox,
    command: str,
    *,
    workspace: Path,
    scratch: Path,
    output: IO[bytes],
    deadline_s: float,
    stop: threading.Event,
    env: dict[str, str] | None = None,
) -> Finished:
    """`command` under bash in the workspace, sandboxed as `sandbox` says."""
    try:
        launch = sandbox.launch(
            command,
            approval_mode="yolo",
            env=dict(os.environ if env is None else env),
            cwd=workspace,
            roots=[workspace],
            scratch=scratch,
        )
    except SandboxUnavailable as exc:
        raise OSError(str(exc)) from exc
    proc = launch.spawn(workspace, output)
    return wait(proc, deadline_s, stop)


def tail(path: Path, limit: int = 4000) -> str:
    """The last `limit` characters of a file (bad bytes replaced)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit * 4))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return text[-limit:]
