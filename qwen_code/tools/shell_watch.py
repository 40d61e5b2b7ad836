"""Watching a foreground shell command: exit, timeout, waiting for input, or a server.

`watch` polls the command's process group until one of these happens:

- **exit**: the shell ended (processes it left running are the caller's business);
- **timeout**: the group is killed;
- **waiting for input**: the output file has not grown for `input_wait_s`, no process
  of the group used CPU since the previous check, and one of them is blocked reading a
  terminal (`/dev/pts/*`, `/dev/tty*`) or a named pipe, or opening a named pipe. Read
  from `/proc/<pid>/syscall` (the syscall number and the fd, resolved through
  `/proc/<pid>/fd`), with `/proc/<pid>/wchan` as a fallback. Anonymous pipes do not
  count (`make | tee log` is a quiet pipeline, not a prompt), nor do sockets. The group
  is killed. Commands run with stdin from /dev/null and no controlling terminal
  (`setsid`), so `input()` gets EOF and opening /dev/tty fails at once with ENXIO; this
  check catches what is left (a pty or fifo of the command's own making);
- **server**: after `auto_background_s` the command still runs and either looks like a
  dev server or watcher by its text (`npm run dev`, `uvicorn`, `--watch`, ...), or holds
  a listening TCP socket (unless it looks like a test run). The caller keeps it running
  as a background job.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeAlias

from qwen_code.processes import terminate_groups
from qwen_code.tools import proc_info

if TYPE_CHECKING:
    from qwen_code.tools.base import ToolContext

SHELL_OPTIONS_KEY = "shell_options"
_CHECK_S = 0.5
"""How often the slower /proc checks run once they are due."""
_POLL_MAX_S = 0.1
Outcome: TypeAlias = Literal["exited", "timed_out", "waiting_for_input", "backgrounded"]

_SERVER_COMMAND = re.compile(
    r"""
      \b(?:npm|pnpm|yarn|bun)\s+(?:run\s+)?(?:dev|start|serve|watch|preview)\b
    | \b(?:nodemon|live-server|http-server|webpack-dev-server|browser-sync)\b
    | \bvite\b(?!\s+build)
    | \b(?:next|nuxt|astro|remix|gatsby|svelte-kit)\s+(?:dev|start|develop|preview)\b
    | \b(?:ng|webpack)\s+serve\b
    | \bhttp\.server\b | \b(?:uvicorn|gunicorn|hypercorn|daphne|waitress-serve)\b
    | \bflask\s+run\b | \brunserver\b | \bstreamlit\s+run\b | \bjupyter\s+(?:notebook|lab)\b
    | \b(?:mkdocs|jekyll)\s+serve\b | \bhugo\s+serve(?:r)?\b
    | \brails\s+(?:s|server)\b | \bphp\s+-S\b | \bartisan\s+serve\b
    | \bdocker[- ]compose\s+up\b | \bcargo\s+watch\b | --watch\b | \btsc\s+-w\b
    """,
    re.VERBOSE,
)
_TEST_COMMAND = re.compile(r"\b(?:pytest|tox|nox|jest|vitest|mocha|rspec|test)\b")
_NEEDS_TERMINAL = re.compile(
    r"/dev/tty|not a tty|not a terminal|terminal is required|no tty present"
    r"|inappropriate ioctl for device|raw mode is not supported|requires a tty"
    r"|must be run (?:in|from) a terminal",
    re.IGNORECASE,
)
NON_INTERACTIVE_HINT = (
    "Commands run without a terminal and nobody can type into them. Pass non-interactive "
    "flags (e.g. `--yes`, `-y`, `--no-input`, `--non-interactive`, `--defaults`), give the "
    "answers as options or environment variables, or feed them on stdin "
    "(`printf 'answer\\n' | command`)."
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ShellOptions:
    """Settings `tools.shell.*`: seconds before the input and server checks; 0 is off."""

    input_wait_s: float = 5.0
    auto_background_s: float = 10.0


def shell_options(ctx: ToolContext) -> ShellOptions:
    options = ctx.state.get(SHELL_OPTIONS_KEY)
    return options if isinstance(options, ShellOptions) else ShellOptions()


@dataclass(frozen=True, slots=True)
class Watched:
    outcome: Outcome
    exit_code: int | None = None
    detail: str = ""
    """What the process was blocked on, or why it looks like a server."""
    ports: tuple[int, ...] = ()


def looks_like_server(command: str) -> bool:
    return _SERVER_COMMAND.search(command) is not None


def needs_terminal(output: str) -> bool:
    """The output says the command wanted a terminal (it failed to open /dev/tty, ...)."""
    return _NEEDS_TERMINAL.search(output) is not None


async def watch(
    proc: subprocess.Popen[bytes],
    log_path: Path,
    command: str,
    timeout_s: float,
    options: ShellOptions,
) -> Watched:
    """Wait for the command in the way described above. A cancel (Ctrl-C) kills the
    whole process group and is re-raised."""
    try:
        return await _Watch(proc, log_path, command, options).run(timeout_s)
    except asyncio.CancelledError:
        await terminate_groups([proc.pid])
        await _reap(proc)
        raise


class _Watch:
    def __init__(
        self, proc: subprocess.Popen[bytes], log_path: Path, command: str, options: ShellOptions
    ) -> None:
        self.proc, self.log_path, self.command, self.options = proc, log_path, command, options
        self.started = time.monotonic()
        self.size, self.last_output = 0, self.started
        self.cpu: int | None = None

    async def run(self, timeout_s: float) -> Watched:
        tick, next_check = 0.005, self.started + _CHECK_S
        with _ExitWake(self.proc.pid) as exited:
            while (code := self.proc.poll()) is None:
                now = time.monotonic()
                if now - self.started >= timeout_s:
                    return Watched("timed_out", await self._kill())
                self._note_output(now)
                if now >= next_check:
                    next_check = now + _CHECK_S
                    found = self._check(now)
                    if found is not None:
                        return await self._settle(found)
                left = self.started + timeout_s - now
                await exited.wait(max(0.0, min(tick, left)))
                tick = min(tick * 2, _POLL_MAX_S)
        return Watched("exited", code)

    def _check(self, now: float) -> Watched | None:
        wait_s, background_s = self.options.input_wait_s, self.options.auto_background_s
        waiting = bool(wait_s) and now - self.last_output >= wait_s
        serving = bool(background_s) and now - self.started >= background_s
        if not waiting:
            self.cpu = None
        if not (waiting or serving):
            return None
        pids = proc_info.group_pids(self.proc.pid)
        blocked = self._blocked_on_input(pids) if waiting else None
        if blocked:
            return Watched("waiting_for_input", detail=blocked)
        return self._server(pids) if serving else None

    def _note_output(self, now: float) -> None:
        try:
            size = self.log_path.stat().st_size
        except OSError:
            return
        if size != self.size:
            self.size, self.last_output = size, now
            self.cpu = None

    def _blocked_on_input(self, pids: list[int]) -> str | None:
        """A description of the read, when the group sat idle (no CPU used since the last
        check) with a process blocked reading a terminal or a named pipe."""
        cpu = proc_info.cpu_ticks(pids)
        idle = self.cpu is not None and cpu == self.cpu
        self.cpu = cpu
        return proc_info.blocked_reader(pids) if idle else None

    def _server(self, pids: list[int]) -> Watched | None:
        named = looks_like_server(self.command)
        ports = proc_info.listening_ports(pids)
        if not named and (not ports or _TEST_COMMAND.search(self.command)):
            return None
        listening = f"listening on port {', '.join(map(str, ports))}" if ports else ""
        detail = "it looks like a server or watcher" if named else "it holds a TCP port"
        detail = f"{detail}, {listening}" if named and listening else listening or detail
        return Watched("backgrounded", detail=detail, ports=tuple(ports))

    async def _settle(self, found: Watched) -> Watched:
        if found.outcome == "backgrounded":
            return found
        code = await self._kill()
        return Watched(found.outcome, code, found.detail, found.ports)

    async def _kill(self) -> int | None:
        await terminate_groups([self.proc.pid])
        return await _reap(self.proc)


class _ExitWake:
    """Wakes the watch loop the moment the process exits (a pidfd readable in the event
    loop, Linux 5.3+), so a short command is not held up by the polling interval; where
    there is no pidfd, `wait` is a plain sleep."""

    def __init__(self, pid: int) -> None:
        self.event = asyncio.Event()
        self.fd: int | None = None
        try:
            self.fd = os.pidfd_open(pid)
            asyncio.get_running_loop().add_reader(self.fd, self.event.set)
        except (AttributeError, OSError, NotImplementedError, RuntimeError):
            # No pidfd here (not Linux 5.3+, or an event loop without add_reader): the
            # loop in `_Watch.run` polls as before, which is all `wait` then does.
            self._close()

    def __enter__(self) -> _ExitWake:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    async def wait(self, timeout_s: float) -> None:
        if self.event.is_set():
            await asyncio.sleep(min(timeout_s, 0.001))
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout_s)

    def _close(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.fd)
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = None


async def _reap(proc: subprocess.Popen[bytes], within_s: float = 2.0) -> int | None:
    """The shell's exit status once it is gone (it was just killed)."""
    for _ in range(int(within_s / 0.01)):
        if (code := proc.poll()) is not None:
            return code
        await asyncio.sleep(0.01)
    return proc.poll()
