"""Headless mode: `qwen-code -p "task"` runs one prompt and prints text or JSON.

Approvals are never read from stdin: whatever needs approval is denied with a message
the model sees, and the final output reports it.

A prompt that starts with the name of a custom command (`/git:commit fix typo`) is
expanded first (see `qwen_code.custom_commands`); its `!{…}` commands follow the same
approval policy, and what could not be done is noted on stderr. Any other `/text` is
sent as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import sys
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from qwen_code import __version__
from qwen_code.agent.approval import HeadlessApprover
from qwen_code.agent.events import Event
from qwen_code.config import Provider, Settings, qwen_home
from qwen_code.errors import ExitCode
from qwen_code.session.store import LoadedSession
from qwen_code.ui.headless_output import Outcome, Printer, Recorder, RunInfo, printer_for

if TYPE_CHECKING:
    from qwen_code.agent.setup import Session

STDIN_CAP = 8 * 1024 * 1024
STDIN_FIRST_BYTE_WAIT_S = 0.5


def read_piped_stdin(
    stream: BinaryIO | None = None, *, cap: int = STDIN_CAP, wait_s: float = STDIN_FIRST_BYTE_WAIT_S
) -> tuple[str, bool]:
    """Read piped stdin (not a TTY), up to `cap` bytes. Returns (text, truncated).

    If no byte arrives within `wait_s`, stdin is treated as empty: CI runners and
    editors often leave a pipe open that nobody writes to.
    """
    stream = stream or sys.stdin.buffer
    with contextlib.suppress(OSError, ValueError):
        ready, _, _ = select.select([stream], [], [], wait_s)
        if not ready:
            return "", False
    data = stream.read(cap + 1) or b""
    truncated = len(data) > cap
    return data[:cap].decode("utf-8", errors="replace"), truncated


def compose_prompt(prompt: str | None, piped: str, *, cwd: Path | None = None) -> str:
    """Piped input goes before the prompt, as Qwen Code does; except after a custom
    command (`git diff | qwen-code -p /review`), where it becomes part of the command's
    arguments."""
    parts = [p for p in (piped.strip("\n"), (prompt or "").strip()) if p]
    if len(parts) == 2 and _names_custom_command(parts[1], cwd or Path.cwd()):
        parts.reverse()
    return "\n\n".join(parts)


def _names_custom_command(prompt: str, cwd: Path) -> bool:
    from qwen_code.custom_commands import CustomCommand, find_command, split_invocation

    invocation = split_invocation(prompt)
    if invocation is None:
        return False
    return isinstance(find_command(invocation[0], cwd, qwen_home()), CustomCommand)


async def expand_custom_command(session: Session, prompt: str, err: IO[str]) -> str:
    """`prompt` with a leading custom command expanded; unchanged when it names none. The
    notes (unreadable file, command denied or failed, broken command file) go to `err`."""
    from qwen_code.custom_commands import (
        CommandProblem,
        expand,
        find_command,
        split_invocation,
        tool_runner_shell,
    )

    invocation = split_invocation(prompt)
    if invocation is None:
        return prompt
    name, args = invocation
    home = session.tool_ctx.home or qwen_home()
    found = await asyncio.to_thread(find_command, name, session.cwd, home)
    if found is None:
        return prompt
    if isinstance(found, CommandProblem):
        _note(err, f"custom command {found}; sending the prompt as it is.")
        return prompt
    expansion = await expand(
        found,
        args,
        workspace=session.tool_ctx.workspace,
        shell=tool_runner_shell(session.runner),
    )
    for note in expansion.notes:
        _note(err, f"/{name}: {note}")
    return expansion.text


def startup_notes(session: Session, resume: LoadedSession | None) -> list[str]:
    """What start-up left out: damaged lines of a resumed session file, context files."""
    from qwen_code.memory import notices
    from qwen_code.session.resume import damage_notice

    damaged = damage_notice(resume)
    return [*([damaged] if damaged else []), *notices(session.context_files)]


def _note(err: IO[str], line: str) -> None:
    err.write(f"qwen-code: {line}\n")
    err.flush()


async def _drive(events: AsyncIterator[Event], printer: Printer, recorder: Recorder) -> None:
    async for event in events:
        recorder.observe(event)
        printer.event(event)


async def run_headless(
    settings: Settings,
    provider: Provider,
    prompt: str,
    *,
    output_format: str,
    partial: bool = False,
    cwd: Path | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    resume: LoadedSession | None = None,
) -> int:
    """Run one prompt to completion and return the exit code. With `resume`, the saved
    conversation continues."""
    from qwen_code.agent.setup import open_session

    mode = settings.tools.approval_mode
    session = await open_session(
        settings, provider, cwd=cwd or Path.cwd(), approver=HeadlessApprover(mode), resume=resume
    )
    for line in startup_notes(session, resume):
        _note(err or sys.stderr, line)
    info = RunInfo(
        session_id=session.id,
        model=session.model,
        cwd=str(session.cwd),
        tools=session.registry.names(),
        permission_mode=mode,
        version=__version__,
        pricing=session.pricing,
    )
    printer = printer_for(output_format, out=out, err=err, partial=partial)
    recorder = Recorder()
    printer.start(info)
    try:
        prompt = await expand_custom_command(session, prompt, err or sys.stderr)
        await _drive(session.run(prompt), printer, recorder)
    except asyncio.CancelledError:
        recorder.outcome.reason = "cancelled"
        raise
    finally:
        recorder.outcome.api_seconds = session.agent.api_seconds
        await session.aclose()
        printer.finish(info, recorder.outcome)
    return recorder.outcome.exit_code()


def run_until_complete(coro: Coroutine[Any, Any, int]) -> int:
    """Run the headless coroutine; Ctrl-C exits 130, SIGTERM 143, after a clean stop."""
    terminated = False

    async def main() -> int:
        nonlocal terminated
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def on_term() -> None:
            nonlocal terminated
            terminated = True
            if task is not None:
                task.cancel()

        # asyncio raises NotImplementedError where loops cannot take signal handlers
        # (Windows): SIGTERM then just ends the process, as it would anyway.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, on_term)
        return await coro

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except asyncio.CancelledError:
        return 128 + signal.SIGTERM if terminated else ExitCode.INTERRUPTED


def stdin_is_piped() -> bool:
    try:
        return not os.isatty(sys.stdin.fileno())
    except (OSError, ValueError, AttributeError):
        return False


__all__ = [
    "Outcome",
    "compose_prompt",
    "expand_custom_command",
    "read_piped_stdin",
    "run_headless",
    "run_until_complete",
]
