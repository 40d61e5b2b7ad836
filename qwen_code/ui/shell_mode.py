"""`!command`: run what the user typed directly in their shell, showing output live.

Unlike the model's `run_shell_command`, this is the user's own command: it runs in
`$SHELL` (falling back to bash, then sh), without a default timeout, and its output is
streamed to the screen line by line. Like the tool, it runs in its own process group with
stdin from /dev/null (a command that waits for input gets EOF at once) and `QWEN_CODE=1`
in its environment, and a cancel (Ctrl-C) kills the whole group. Its environment lacks the
provider credentials (unless the user opted in), and the output kept for the model has
their values redacted (`qwen_code.credentials`); the screen shows the output as printed.

A command that leaves processes behind (`server &`) returns once the shell exits; those
processes keep running (`ShellRun.left_running`) but their output is no longer read.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qwen_code.credentials import Credentials
from qwen_code.processes import group_alive, terminate_groups

OUTPUT_CAP_CHARS = 200_000
"""Output kept in memory (head and tail); the screen got all of it as it arrived."""
CONTEXT_CAP_CHARS = 20_000
"""Output offered to the model by `ShellRun.as_context`."""
_KILL_GRACE_S = 1.0
_DRAIN_S = 0.2
"""How long output is still read after the shell exited (children may hold the pipe)."""
_READ_CHUNK = 65536
_MAX_PENDING_LINE = 65536
"""A line longer than this is passed to `on_output` in pieces."""
_ANSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


@dataclass(slots=True, kw_only=True)
class ShellRun:
    command: str
    exit_code: int | None
    """The shell's exit status; negative when a signal killed it (-15: SIGTERM)."""
    output: str
    """stdout and stderr interleaved, cut to head and tail past `OUTPUT_CAP_CHARS`, with
    credential values redacted."""
    truncated: bool
    timed_out: bool = False
    pgid: int = 0
    left_running: bool = False
    """Processes the command started in the background were still running at the end."""

    @property
    def status(self) -> str:
        if self.timed_out:
            return "timed out, killed"
        code = self.exit_code
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
        return f"exit {code}"

    def as_context(self, max_chars: int = CONTEXT_CAP_CHARS) -> str:
        """A compact block that tells the model what the user ran and what it printed."""
        output, _ = cap_text(_ANSI_RE.sub("", self.output), max_chars)
        output = output.rstrip("\n") or "(no output)"
        fence = _fence_for(output)
        if "\n" in self.command or "`" in self.command:
            head = f"I ran this command in the shell ({self.status}):\n```sh\n{self.command}\n```"
            head += "\nOutput:"
        else:
            head = f"I ran `{self.command}` in the shell ({self.status}):"
        return f"{head}\n{fence}\n{output}\n{fence}"


def user_shell() -> str:
    """`$SHELL` when it names an executable, else bash, else /bin/sh."""
    shell = os.environ.get("SHELL", "")
    if shell and Path(shell).is_absolute() and Path(shell).is_file() and os.access(shell, os.X_OK):
        return shell
    return shutil.which("bash") or "/bin/sh"


async def run_user_shell(
    command: str,
    *,
    cwd: Path,
    on_output: Callable[[str], None] | None = None,
    timeout_s: float | None = None,
    credentials: Credentials | None = None,
) -> ShellRun:
    """Run `command` with `$SHELL -c` in `cwd`; see the module docstring.

    `on_output` gets each output line as it arrives, without its line ending (a last
    line without one comes at the end). Cancelling the awaiting task kills the process
    group (SIGTERM, then SIGKILL after a second) and re-raises `CancelledError`; an
    exception from `on_output` does the same with that exception. A shell that cannot
    start (missing `cwd`) raises `OSError`.

    `credentials`: the session's (`ToolContext.credentials`), which decide what the
    command's environment leaves out and what the kept output redacts; by default, those
    found in the process environment.
    """
    credentials = credentials if credentials is not None else Credentials.collect()
    env = credentials.child_environment(extra={"QWEN_CODE": "1"})
    proc, stream, pipe = await _spawn(command, cwd, env)
    capture = HeadTail(OUTPUT_CAP_CHARS)
    reader = asyncio.create_task(_pump(stream, _LineSplitter(capture, on_output)))
    try:
        timed_out = await _wait_exit(proc, reader, timeout_s)
        if timed_out:
            await terminate_groups([proc.pid], _KILL_GRACE_S)
        await proc.wait()
        left_running = await _drain(reader, proc.pid)
    except BaseException:
        reader.cancel()
        await terminate_groups([proc.pid], _KILL_GRACE_S)
        await proc.wait()
        raise
    finally:
        pipe.close()
    output, truncated = capture.result()
    return ShellRun(
        command=command,
        exit_code=proc.returncode,
        output=credentials.redact(output),
        truncated=truncated,
        timed_out=timed_out,
        pgid=proc.pid,
        left_running=left_running,
    )


async def _spawn(
    command: str, cwd: Path, env: dict[str, str]
) -> tuple[asyncio.subprocess.Process, asyncio.StreamReader, _Pipe]:
    """Start the shell in a new session (its own process group) with stdin from
    /dev/null and stdout+stderr into one pipe; raises `OSError` (e.g. a missing `cwd`)."""
    stream, pipe = await _open_pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            user_shell(),
            "-c",
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=pipe.write_fd,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    except BaseException:
        pipe.close()
        raise
    finally:
        pipe.close_write_end()
    return proc, stream, pipe


class _Pipe:
    """The output pipe, made by us rather than by asyncio: with asyncio's own pipes,
    `Process.wait()` (3.11) also waits for the pipes to close, which never happens while
    a background child (`server &`) holds them."""

    def __init__(self, write_fd: int) -> None:
        self.write_fd = write_fd
        self.transport: asyncio.ReadTransport | None = None

    def close_write_end(self) -> None:
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def close(self) -> None:
        self.close_write_end()
        if self.transport is not None:
            self.transport.close()


async def _open_pipe() -> tuple[asyncio.StreamReader, _Pipe]:
    read_fd, write_fd = os.pipe()
    pipe = _Pipe(write_fd)
    stream = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    try:
        pipe.transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stream), os.fdopen(read_fd, "rb", buffering=0)
        )
    except BaseException:
        os.close(read_fd)
        pipe.close()
        raise
    return stream, pipe


async def _wait_exit(
    proc: asyncio.subprocess.Process, reader: asyncio.Task[None], timeout_s: float | None
) -> bool:
    """Wait for the shell to exit; True when `timeout_s` passed first. A failure of the
    reader (an exception from `on_output`) is raised at once."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    waiter = asyncio.ensure_future(proc.wait())
    try:
        done, _ = await asyncio.wait(
            {waiter, reader}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        if reader in done:
            reader.result()
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            done, _ = await asyncio.wait({waiter}, timeout=left)
        return waiter not in done
    finally:
        waiter.cancel()


async def _drain(reader: asyncio.Task[None], pgid: int) -> bool:
    """Let the reader finish the output; True when processes the command left behind
    still hold the pipe (their output is then no longer read)."""
    done, _ = await asyncio.wait({reader}, timeout=_DRAIN_S)
    if reader in done:
        reader.result()
        return False
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    return group_alive(pgid)


async def _pump(stream: asyncio.StreamReader, splitter: _LineSplitter) -> None:
    while data := await stream.read(_READ_CHUNK):
        splitter.feed(data)
    splitter.feed(b"", final=True)


class _LineSplitter:
    """Decodes output (UTF-8, bad bytes replaced), keeps it, and hands out lines."""

    def __init__(self, capture: HeadTail, on_output: Callable[[str], None] | None) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._capture = capture
        self._on_output = on_output
        self._pending = ""

    def feed(self, data: bytes, *, final: bool = False) -> None:
        text = self._decoder.decode(data, final)
        self._capture.add(text)
        if self._on_output is None:
            return
        *lines, self._pending = (self._pending + text).split("\n")
        if self._pending and (final or len(self._pending) > _MAX_PENDING_LINE):
            lines.append(self._pending)
            self._pending = ""
        for line in lines:
            self._on_output(line.removesuffix("\r"))


class HeadTail:
    """Text capped to `max_chars`: the first fifth and the last four fifths are kept."""

    def __init__(self, max_chars: int) -> None:
        self.head_cap = max_chars // 5
        self.tail_cap = max_chars - self.head_cap
        self.head = ""
        self.tail = ""
        self.total = 0

    def add(self, text: str) -> None:
        self.total += len(text)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += text[:room]
            text = text[room:]
        if text:
            self.tail += text
            if len(self.tail) > 2 * self.tail_cap:  # trim now and then, not per chunk
                self.tail = self.tail[-self.tail_cap :]

    def result(self) -> tuple[str, bool]:
        """(text, truncated): with a `... [N characters truncated] ...` line when cut."""
        tail = self.tail[-self.tail_cap :] if self.tail_cap else ""
        omitted = self.total - len(self.head) - len(tail)
        if omitted <= 0:
            return self.head + tail, False
        return f"{self.head}\n... [{omitted:,} characters truncated] ...\n{tail}", True


def cap_text(text: str, max_chars: int) -> tuple[str, bool]:
    capped = HeadTail(max_chars)
    capped.add(text)
    return capped.result()


def _fence_for(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)
