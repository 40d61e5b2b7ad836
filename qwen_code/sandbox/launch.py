"""Starting a command, sandboxed or not: the argv, the environment, and how its end is seen.

Inside bubblewrap's pid namespace everything dies with the command's shell, so a server a
command leaves running (`server &`) would be killed as soon as the command ends. A small
shell wrapper runs the command instead; if it leaves processes behind, the wrapper
reports the command's exit status on a pipe and then stays until they are gone, keeping
the namespace alive. `SandboxedPopen.poll()` reads that status, so the command counts as
finished while what it started runs on in its process group, as it would unsandboxed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from qwen_code.sandbox.policy import SandboxMode

_WRAPPER = (
    'b=0; for p in /proc/[0-9]*; do b=$((b+1)); done; "$BASH" -c "$1" {fd}>&-; s=$?; '
    "n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; "
    '[ "$n" -le "$b" ] && exit $s; echo $s >&{fd}; exec {fd}>&-; '
    "while :; do sleep 1; n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; "
    '[ "$n" -le "$b" ] && exit $s; done'
)
"""Run "$1"; if processes are left in the namespace, report the status on fd {fd} and
wait for them. `b` counts what was there before (bwrap's init, a network bridge, this
shell); the loop's `sleep` is not running while the loop counts."""


def wrapped_shell(bash: str, command: str, status_fd: int) -> list[str]:
    return [bash, "-c", _WRAPPER.format(fd=status_fd), "qwen-code-sandbox", command]


@dataclass(slots=True, kw_only=True)
class Launch:
    """How to start one command."""

    argv: list[str]
    env: dict[str, str]
    mode: SandboxMode = "off"
    """The sandbox mode the command runs under ("off": not sandboxed)."""
    status_pipe: tuple[int, int] | None = None
    """(read, write) ends of the wrapper's status pipe, for a sandboxed command."""
    notes: list[str] = field(default_factory=list)
    """Things to tell the user once (e.g. the sandbox could not be had)."""

    def spawn(self, cwd: Path, out: IO[bytes]) -> subprocess.Popen[bytes]:
        """Start it in its own process group, stdin closed, output to `out`."""
        kwargs = {
            "stdin": subprocess.DEVNULL,
            "stdout": out,
            "stderr": subprocess.STDOUT,
            "cwd": cwd,
            "env": self.env,
            "start_new_session": True,
        }
        if self.status_pipe is None:
            return subprocess.Popen(self.argv, **kwargs)  # type: ignore[call-overload,no-any-return]
        read_fd, write_fd = self.status_pipe
        try:
            return SandboxedPopen(self.argv, status_fd=read_fd, pass_fds=(write_fd,), **kwargs)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)


def status_pipe() -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    return read_fd, write_fd


class SandboxedPopen(subprocess.Popen[bytes]):
    """A Popen whose `poll()` also sees the status the wrapper reports when the command
    ended but left processes running."""

    def __init__(self, *args: object, status_fd: int, **kwargs: object) -> None:
        self._status_fd: int | None = status_fd
        self._reported: int | None = None
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def left_running(self) -> bool:
        """The command ended but processes it started run on (the wrapper said so). The
        group itself may still hold bubblewrap's own processes for a moment after a plain
        exit, so this, not the group, tells whether anything was left behind."""
        return self._reported is not None

    def poll(self) -> int | None:
        code = super().poll()
        if self._reported is None and self._status_fd is not None:
            self._read_status(final=code is not None)
        return self._reported if self._reported is not None else code

    def _read_status(self, *, final: bool) -> None:
        try:
            data = os.read(self._status_fd, 64) if self._status_fd is not None else b""
        except BlockingIOError:
            data = b""
        if data.strip():
            with contextlib.suppress(ValueError):
                self._reported = int(data.split()[0])
        if data.strip() or final:
            self._close_status()

    def _close_status(self) -> None:
        if self._status_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._status_fd)
            self._status_fd = None

    def __del__(self) -> None:
        self._close_status()
        super().__del__()
