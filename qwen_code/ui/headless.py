"""Headless mode: `qwen-code -p "task"` runs one prompt and prints text or JSON.

Approvals are never read from stdin: whatever needs approval is denied with a message
the model sees, and the final output reports it.

A prompt that starts with the name of a custom command (`/git:commit fix typo`) is
expanded first (see `qwen_code.custom_commands`); its `!{…}` commands follow the same
approval policy, and what could not be done is noted on stderr. Any other `/text` is
sent as it is.

`main` is the one headless entry the command line calls: it reads piped stdin, composes
the prompt, loads the settings, resolves `--continue`/`--resume`, and runs to the end,
with every stream, the working directory and the home taken from the `Environment`.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import signal
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from qwen_code import __version__
from qwen_code.agent.approval import HeadlessApprover
from qwen_code.agent.events import Event
from qwen_code.config import Flags, Provider, Settings
from qwen_code.environment import Environment
from qwen_code.errors import ExitCode, InputError
from qwen_code.processes import on_signal
from qwen_code.session.store import LoadedSession
from qwen_code.tools.structured_output import PROMPT_NOTE
from qwen_code.ui.headless_outcome import Outcome, Recorder, RunInfo
from qwen_code.ui.headless_output import Printer, printer_for
from qwen_code.ui.run_limits import RunGuard, RunLimits, limits_from_flags, settle

if TYPE_CHECKING:
    from qwen_code.session.live import Session

STDIN_CAP = 8 * 1024 * 1024
STDIN_FIRST_BYTE_WAIT_S = 0.5
NO_PROMPT = (
    'No prompt given. Pass one as an argument (qwen-code "fix the test"), with -p, '
    "or pipe it on stdin; run qwen-code in a terminal without one for a session."
)


def main(
    env: Environment,
    flags: Flags,
    prompt: str,
    *,
    output_format: str,
    partial: bool = False,
    latest: bool = False,
    session_id: str | None = None,
    new_session_id: str | None = None,
    fork: bool = False,
) -> int:
    """`qwen-code -p …`: run `prompt` (after piped stdin, when stdin is not a terminal)
    to completion and return the exit code. `latest`/`session_id` continue a saved
    session (`-c`, `-r ID`); `new_session_id` names a new one (`--session-id`), `fork`
    saves a continued one under a new id. Raises `QwenCodeError` for bad input or
    settings."""
    piped = "" if env.stdin_isatty else _read_piped(env)
    full_prompt = compose_prompt(prompt, piped, cwd=env.cwd, home=env.home)
    if not full_prompt:
        raise InputError(NO_PROMPT)
    start = prepare(env, flags, latest=latest, session_id=session_id, new_session_id=new_session_id)
    return run_until_complete(
        run_headless(
            start.settings,
            start.provider,
            full_prompt,
            output_format=output_format,
            partial=partial,
            cwd=env.cwd,
            home=env.home,
            out=env.stdout,
            err=env.stderr,
            resume=start.resume,
            limits=start.limits,
            new_session_id=new_session_id,
            fork=fork,
            title=prompt,
        )
    )


@dataclass(frozen=True, slots=True)
class Start:
    """What a headless run starts from: settings, provider, limits, a saved session."""

    settings: Settings
    provider: Provider
    limits: RunLimits
    resume: LoadedSession | None


def prepare(
    env: Environment,
    flags: Flags,
    *,
    latest: bool,
    session_id: str | None,
    new_session_id: str | None = None,
) -> Start:
    """Settings (their notices on stderr), provider, limits and the session to continue;
    `QwenCodeError` for what cannot be used."""
    from qwen_code.config import load_settings, resolve_provider
    from qwen_code.session import resume
    from qwen_code.session.store import find_session

    if session_id == resume.PICK:
        raise InputError(
            "-r/--resume needs a session id here; `qwen-code sessions list` shows them."
        )
    limits = limits_from_flags(
        json_schema=flags.json_schema,
        max_budget_usd=flags.max_budget_usd,
        max_wall_time=flags.max_wall_time,
        max_tool_calls=flags.max_tool_calls,
        cwd=env.cwd,
    )
    settings = load_settings(flags, cwd=env.cwd, home=env.home)
    for notice in settings.notices:
        _note(env.stderr, notice)
    provider = resolve_provider(settings, home=env.home)
    if new_session_id and find_session(env.home, env.cwd, new_session_id) is not None:
        raise InputError(f"--session-id: session {new_session_id} already exists; use --resume.")
    saved = resume.resolve(env.home, env.cwd, latest=latest, session_id=session_id)
    return Start(settings, provider, limits, saved)


def _read_piped(env: Environment) -> str:
    text, truncated = read_piped_stdin(env.stdin)
    if truncated:
        _note(env.stderr, "stdin was cut at 8 MB.")
    return text


def read_piped_stdin(
    stream: IO[bytes] | IO[str], *, cap: int = STDIN_CAP, wait_s: float = STDIN_FIRST_BYTE_WAIT_S
) -> tuple[str, bool]:
    """Read piped stdin (not a TTY), up to `cap` bytes. Returns (text, truncated).

    A text stream is read through its bytes (`.buffer`) when it has them; one without
    (a StringIO) is read as text and measured in UTF-8. If no byte arrives within
    `wait_s`, stdin is treated as empty: CI runners and editors often leave a pipe open
    that nobody writes to.
    """
    source: IO[Any] = getattr(stream, "buffer", stream)
    with contextlib.suppress(OSError, ValueError):
        ready, _, _ = select.select([source], [], [], wait_s)
        if not ready:
            return "", False
    data = source.read(cap + 1) or b""
    if isinstance(data, str):
        data = data.encode("utf-8", errors="surrogateescape")
    truncated = len(data) > cap
    return data[:cap].decode("utf-8", errors="replace"), truncated


def compose_prompt(prompt: str | None, piped: str, *, cwd: Path, home: Path) -> str:
    """Piped input goes before the prompt, as Qwen Code does; except after a custom
    command (`git diff | qwen-code -p /review`), where it becomes part of the command's
    arguments. Custom commands are looked up for the project at `cwd` and in `home`
    (the qwen-code home)."""
    parts = [p for p in (piped.strip("\n"), (prompt or "").strip()) if p]
    if len(parts) == 2 and _names_custom_command(parts[1], cwd, home):
        parts.reverse()
    return "\n\n".join(parts)


def _names_custom_command(prompt: str, cwd: Path, home: Path) -> bool:
    from qwen_code.custom_commands import CustomCommand, find_command, split_invocation

    invocation = split_invocation(prompt)
    if invocation is None:
        return False
    return isinstance(find_command(invocation[0], cwd, home), CustomCommand)


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
    home = session.tool_ctx.home
    if home is None:  # a session from `open_session` always has one
        return prompt
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
    mcp = session.mcp.notes if session.mcp is not None else []
    own = [*notices(session.context_files), *mcp, *session.notes]
    return [*([damaged] if damaged else []), *own]


def mcp_servers(session: Session) -> list[dict[str, str]]:
    """Each MCP server's name and status, as the stream-json `init` message lists them."""
    if session.mcp is None:
        return []
    return [{"name": s.name, "status": s.status} for s in session.mcp.statuses()]


def _note(err: IO[str], line: str) -> None:
    err.write(f"qwen-code: {line}\n")
    err.flush()


def _drive_one(event: Event, printer: Printer, recorder: Recorder) -> None:
    recorder.observe(event)
    printer.event(event)


async def _drive(
    events: AsyncIterator[Event], printer: Printer, recorder: Recorder, guard: RunGuard
) -> None:
    """Show and record every event until the run ends or the guard stops it (the run's
    generator is closed then: what was in progress is cancelled)."""
    async with contextlib.aclosing(events):  # type: ignore[type-var]
        async for event in events:
            _drive_one(event, printer, recorder)
            if guard.observe(event) is not None:
                return


async def _drive_limited(
    events: AsyncIterator[Event], printer: Printer, recorder: Recorder, guard: RunGuard
) -> None:
    """`_drive` within `--max-wall-time`, when one is set."""
    from qwen_code.ui.run_limits import wall_time_stop

    seconds = guard.limits.max_wall_time_s
    try:
        async with asyncio.timeout(seconds):
            await _drive(events, printer, recorder, guard)
    except TimeoutError:
        guard.stop = wall_time_stop(guard.limits)


def _open_guard(session: Session, limits: RunLimits, recorder: Recorder) -> RunGuard:
    """The run's guard; with `--json-schema`, the structured_output tool is registered."""
    from qwen_code.llm.pricing import PriceTable
    from qwen_code.tools.structured_output import StructuredOutputTool
    from qwen_code.ui.run_limits import check_price_known

    pricing = session.pricing
    check_price_known(limits, session.model, pricing or PriceTable.builtin())
    if limits.json_schema is not None:
        session.registry.register(StructuredOutputTool(limits.json_schema), replace=True)
    return RunGuard(limits, session.model, pricing, recorder.outcome.requests)


async def run_headless(
    settings: Settings,
    provider: Provider,
    prompt: str,
    *,
    output_format: str,
    partial: bool = False,
    cwd: Path,
    out: IO[str],
    err: IO[str],
    home: Path,
    resume: LoadedSession | None = None,
    limits: RunLimits | None = None,
    new_session_id: str | None = None,
    fork: bool = False,
    title: str | None = None,
) -> int:
    """Run one prompt in `cwd` to completion, printing to `out` and `err`, and return the
    exit code. `home`: qwen-code's own directory (QWEN_HOME). With `resume`, the saved
    conversation continues. `limits`: `--json-schema`, budgets (see `run_limits`)."""
    mode = settings.tools.approval_mode
    where = {"cwd": cwd, "home": home, "resume": resume}
    session = await _open_headless(settings, provider, where, new_session_id, fork, title)
    recorder = Recorder()
    try:
        guard = _open_guard(session, limits or RunLimits(), recorder)
    except BaseException:
        await session.aclose()
        raise
    for line in startup_notes(session, resume):
        _note(err, line)
    info = run_info(session, mode)
    printer = printer_for(
        output_format, out=out, err=err, partial=partial, structured=guard.structured
    )
    if session.subagents is not None:  # background agents' steps, outside any call
        session.subagents.watchers.append(lambda event: _drive_one(event, printer, recorder))
    started = False
    try:
        # the prompt's own notes (a custom command's, an image's) go before any progress
        prompt, media = await _full_prompt(session, prompt, err, structured=guard.structured)
        printer.start(info)
        started = True
        await _drive_limited(session.run(prompt, media=media), printer, recorder, guard)
    except asyncio.CancelledError:
        recorder.outcome.reason = "cancelled"
        raise
    finally:
        recorder.outcome.count_unreported(session.agent.take_unreported())  # cut short
        settle(guard, recorder.outcome)
        recorder.outcome.api_seconds = session.agent.api_seconds
        await session.aclose()
        if not started:  # stream-json's `init` comes before its `result`, always
            printer.start(info)
        printer.finish(info, recorder.outcome)
    return recorder.outcome.exit_code()


async def _open_headless(
    settings: Settings,
    provider: Provider,
    where: dict[str, Any],
    session_id: str | None,
    fork: bool,
    title: str | None,
) -> Session:
    """The run's session (`where`: its cwd, home and resumed conversation): nobody can be
    asked, so the headless approver; titled by the `-p` text, not by piped stdin."""
    from qwen_code.session.persistence import name_session
    from qwen_code.session.setup import open_session

    session = await open_session(
        settings,
        provider,
        **where,
        approver=HeadlessApprover(settings.tools.approval_mode),
        headless=True,
        session_id=session_id,
        fork=fork,
    )
    name_session(session, title)
    return session


def run_info(session: Session, mode: str) -> RunInfo:
    return RunInfo(
        session_id=session.id,
        model=session.model,
        cwd=str(session.cwd),
        tools=session.registry.names(),
        permission_mode=mode,
        version=__version__,
        mcp_servers=mcp_servers(session),
        pricing=session.pricing,
        server=session.server.to_json() if session.server is not None else None,
    )


async def _full_prompt(
    session: Session, prompt: str, err: IO[str], *, structured: bool
) -> tuple[str, tuple[dict[str, Any], ...]]:
    """The prompt as sent: a custom command expanded, `@image`s as media parts, and the
    `--json-schema` instruction."""
    from qwen_code.ui.attachments import prompt_with_images

    prompt = await expand_custom_command(session, prompt, err)
    prompt, media, notes = await prompt_with_images(session.tool_ctx, prompt)
    for line in notes:
        _note(err, line)
    return (f"{prompt}\n\n{PROMPT_NOTE}" if structured else prompt), media


def run_until_complete(coro: Coroutine[Any, Any, int]) -> int:
    """Run the headless coroutine; Ctrl-C exits 130, SIGTERM 143, after a clean stop."""
    terminated = False

    async def main() -> int:
        nonlocal terminated
        task = asyncio.current_task()

        def on_term() -> None:
            nonlocal terminated
            terminated = True
            if task is not None:
                task.cancel()

        on_signal(signal.SIGTERM, on_term)
        return await coro

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except asyncio.CancelledError:
        return 128 + signal.SIGTERM if terminated else ExitCode.INTERRUPTED


__all__ = [
    "Outcome",
    "compose_prompt",
    "expand_custom_command",
    "main",
    "read_piped_stdin",
    "run_headless",
    "run_until_complete",
]
