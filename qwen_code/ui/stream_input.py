"""`--input-format stream-json`: a conversation driven by a program over stdin/stdout.

stdin carries JSON lines: user messages (`{"type": "user", "message": {...}}`) and
`control_request`s (`initialize`, `interrupt`, `set_permission_mode`, `set_model`,
`get_context_usage`, `mcp_status`, `rewind_files`, ...); stdout carries the stream-json
messages of `-o stream-json` (an `init` and a `result` per turn), the `control_response`
to each request, and qwen-code's own requests (`can_use_tool` with
`--permission-prompt-tool stdio`). This is the protocol the Claude Agent SDK speaks to its
CLI, so `ClaudeAgentOptions(cli_path="qwen-code")` drives qwen-code; docs/headless.md
describes it message by message.

The process stays up between user messages and runs them in order, one turn each; it
ends when stdin closes and the last turn is done, with the last turn's exit code.
Control requests are answered while a turn runs (an interrupt ends the turn, whose
result then says `error_interrupted`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from typing import IO, TYPE_CHECKING, Any

from qwen_code.agent.approval import Approver, HeadlessApprover
from qwen_code.config import Flags
from qwen_code.environment import Environment
from qwen_code.errors import InputError
from qwen_code.mcp.sdk_channel import PROGRAM
from qwen_code.ui import stream_control
from qwen_code.ui.headless import (
    _drive_limited,
    _full_prompt,
    _note,
    prepare,
    run_info,
    run_until_complete,
    startup_notes,
)
from qwen_code.ui.headless_outcome import Recorder
from qwen_code.ui.headless_output import StreamJsonPrinter
from qwen_code.ui.run_limits import RunGuard, RunLimits, Stop, check_price_known, settle
from qwen_code.ui.stream_approver import ControlFailed, StdioApprover
from qwen_code.ui.stream_messages import MessageProblem, UserTurn, media_for, parse_user_message

if TYPE_CHECKING:
    from qwen_code.agent.events import UsageInfo
    from qwen_code.session.live import Session
    from qwen_code.session.store import LoadedSession


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
    prompt_tool: bool = False,
    replay: bool = False,
) -> int:
    """Serve the conversation on `env`'s stdin/stdout; returns the exit code. `prompt`
    (from -p), when given, is the first user message."""
    if output_format != "stream-json":
        raise InputError("--input-format stream-json needs --output-format stream-json.")
    start = prepare(env, flags, latest=latest, session_id=session_id, new_session_id=new_session_id)
    options = {"partial": partial, "prompt_tool": prompt_tool, "replay": replay}
    return run_until_complete(
        serve(
            env,
            start.settings,
            start.provider,
            first=prompt,
            limits=start.limits,
            resume=start.resume,
            new_session_id=new_session_id,
            fork=fork,
            **options,
        )
    )


async def serve(
    env: Environment,
    settings: Any,
    provider: Any,
    *,
    first: str = "",
    limits: RunLimits,
    resume: LoadedSession | None,
    new_session_id: str | None,
    fork: bool,
    partial: bool,
    prompt_tool: bool,
    replay: bool,
) -> int:
    """Open the session, then read stdin until it closes and the turns are done."""
    from qwen_code.session.setup import open_session

    loop = StreamLoop(env.stdout, env.stderr, limits, partial=partial, replay=replay)
    loop.printer.summary = not prompt_tool  # the program decided; no hints on how to allow
    PROGRAM.set(loop.request)  # the program's own MCP servers (`"type": "sdk"`)
    approver: Approver = (
        StdioApprover(loop.request, loop.interrupt)
        if prompt_tool
        else HeadlessApprover(settings.tools.approval_mode)
    )
    if first.strip():  # the first turn, whatever stdin brings while the session opens
        loop.turns.put_nowait(UserTurn(first))
    reading = loop.start(env.stdin)  # before the session: `sdk` MCP servers answer on it
    try:
        session = await open_session(
            settings,
            provider,
            cwd=env.cwd,
            home=env.home,
            approver=approver,
            resume=resume,
            headless=not prompt_tool,
            session_id=new_session_id,
            fork=fork,
        )
    except BaseException:
        reading.cancel()
        raise
    try:
        loop.attach(session)
        for line in startup_notes(session, resume):
            _note(env.stderr, line)
        return await loop.run(reading)
    finally:
        await session.aclose()


class StreamLoop:
    """Reads stdin, answers control requests, runs user messages one at a time."""

    def __init__(
        self, out: IO[str], err: IO[str], limits: RunLimits, *, partial: bool, replay: bool
    ) -> None:
        self.out, self.err, self.limits, self.replay = out, err, limits, replay
        self.printer = StreamJsonPrinter(out, err, partial=partial, sink=self.emit)
        self.recorder = Recorder()
        self.session: Session | None = None
        self.ready = asyncio.Event()
        self.turns: asyncio.Queue[UserTurn | None] = asyncio.Queue()
        self.turn: asyncio.Task[None] | None = None
        self.interrupted = False
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.spent: list[UsageInfo] = []
        self.exit_code = 0
        self.turn_of: dict[str, int] = {}
        """User message uuid -> the session's turn number (for `rewind_files`)."""
        self.checkpoints: dict[int, str] = {}
        """Turn number -> the checkpoint made before its first change."""
        self._counter = 0
        self._turns = 0
        self._closed = False
        self._input_closed = False

    def attach(self, session: Session) -> None:
        self.session = session
        self.ready.set()
        if self.limits.json_schema is not None:
            from qwen_code.tools.structured_output import StructuredOutputTool

            session.registry.register(StructuredOutputTool(self.limits.json_schema), replace=True)
        if self.limits.max_budget_usd is not None:
            from qwen_code.llm.pricing import PriceTable

            pricing = session.pricing or PriceTable.builtin()
            check_price_known(self.limits, session.model, pricing)
        if session.subagents is not None:  # background agents' steps, outside any call
            session.subagents.watchers.append(self._observe)

    # --- output -------------------------------------------------------------------------

    def emit(self, message: dict[str, Any]) -> None:
        """One JSON line on stdout (a closed stdout: the other end is gone; say nothing).
        A user message's uuid names its turn (for `rewind_files`)."""
        if message.get("type") == "user" and self.turn is not None and message.get("uuid"):
            self.turn_of.setdefault(str(message["uuid"]), self._turns)
        if self._closed:
            return
        try:
            self.out.write(json.dumps(message, ensure_ascii=False) + "\n")
            self.out.flush()
        except (BrokenPipeError, ValueError, OSError):
            self._closed = True

    def _observe(self, event: Any) -> None:
        self.recorder.observe(event)
        self.printer.event(event)

    # --- the main loop ------------------------------------------------------------------

    def start(self, stdin: IO[Any]) -> asyncio.Task[None]:
        """Start reading stdin; control responses are handled at once, control requests
        once the session is there (`attach`)."""
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        _start_reader(stdin, lines, asyncio.get_running_loop())
        return asyncio.create_task(self._read(lines))

    async def _read(self, lines: asyncio.Queue[str | None]) -> None:
        while (line := await lines.get()) is not None:
            self._dispatch(line)
        self._end_of_input()

    async def run(self, reading: asyncio.Task[None]) -> int:
        """Run the user messages until stdin has closed and the last one is done."""
        worker = asyncio.create_task(self._work())
        try:
            await reading
            await worker
        finally:
            reading.cancel()
            worker.cancel()
            for task in list(self.tasks):
                task.cancel()
        return self.exit_code

    def _end_of_input(self) -> None:
        """stdin closed: run what is queued, and refuse what was still being asked."""
        self.turns.put_nowait(None)
        self._input_closed = True
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ControlFailed("stdin was closed before the answer came"))

    def _dispatch(self, line: str) -> None:
        if not line.strip():
            return
        try:
            message = json.loads(line)
        except json.JSONDecodeError as exc:
            _note(self.err, f"stream-json input: not JSON ({exc.msg}); line ignored.")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "user":
            self._user(message)
        elif kind == "control_request":
            self._spawn(self._control(message))
        elif kind == "control_response":
            self._response(message.get("response"))
        elif kind not in ("control_cancel_request", "keep_alive", "update_environment_variables"):
            _note(self.err, f"stream-json input: a message of type {kind!r} was ignored.")

    def _user(self, message: dict[str, Any]) -> None:
        try:
            turn = parse_user_message(message)
        except MessageProblem as exc:
            _note(self.err, f"stream-json input: {exc}; message ignored.")
            return
        if self.replay:
            self.emit({**message, "uuid": turn.uuid, "isReplay": True})
        self.turns.put_nowait(turn)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # --- turns --------------------------------------------------------------------------

    async def _work(self) -> None:
        while (turn := await self.turns.get()) is not None:
            self.interrupted = False
            self.turn = asyncio.create_task(self._run_turn(turn))
            try:
                await self.turn
            finally:
                self.turn = None

    async def _run_turn(self, turn: UserTurn) -> None:
        """One user message to its `result`. Budgets (`--max-budget-usd`) count over the
        whole process; the other limits count per message, as in Qwen Code."""
        session = self.session
        assert session is not None
        self.recorder = recorder = Recorder()
        recorder.outcome.requests.extend(self.spent)
        guard = RunGuard(self.limits, session.model, session.pricing, recorder.outcome.requests)
        info = run_info(session, session.runner.mode)
        self.printer.start(info)
        try:
            if not self._over_budget(guard):
                await self._drive(session, turn, guard)
        except asyncio.CancelledError:
            if not self.interrupted:
                raise
            recorder.outcome.reason = "cancelled"
            _uncancel()
        except MessageProblem as exc:
            recorder.outcome.error = str(exc)
        finally:
            settle(guard, recorder.outcome)
            recorder.outcome.api_seconds = session.agent.api_seconds
            self.printer.finish(info, recorder.outcome)
            self.spent = list(recorder.outcome.requests)
            self.exit_code = recorder.outcome.exit_code()

    async def _drive(self, session: Session, turn: UserTurn, guard: RunGuard) -> None:
        text, media = await media_for(session.tool_ctx, turn)
        prompt, more = await _full_prompt(session, text, self.err, structured=guard.structured)
        self._turns += 1
        number = self.turn_of[turn.uuid] = self._turns
        await _drive_limited(
            session.run(prompt, media=(*media, *more)), self.printer, self.recorder, guard
        )
        checkpoint = _last_checkpoint(session)
        if checkpoint is not None and checkpoint not in self.checkpoints.values():
            self.checkpoints[number] = checkpoint

    def _over_budget(self, guard: RunGuard) -> bool:
        budget = self.limits.max_budget_usd
        spent = guard.cost() if budget is not None else None
        if budget is None or spent is None or spent < budget:
            return False
        from qwen_code.llm.pricing import format_usd

        guard.stop = Stop(
            "max_budget_usd",
            f"this session has cost {format_usd(spent)}, reaching --max-budget-usd "
            f"{format_usd(budget)}; the message was not sent.",
        )
        return True

    def interrupt(self) -> None:
        """Stop the running turn (its result follows); nothing when none runs."""
        if self.turn is not None and not self.turn.done():
            self.interrupted = True
            self.turn.cancel()

    # --- control requests ---------------------------------------------------------------

    async def _control(self, message: dict[str, Any]) -> None:
        request_id = message.get("request_id")
        body = message.get("request")
        if not isinstance(body, dict):
            body = {}
        await self.ready.wait()
        try:
            response = await self._answer(body)
        except (stream_control.BadRequest, InputError, ValueError) as exc:
            self._respond_error(request_id, str(exc))
            return
        except Exception as exc:  # a bug must not end the conversation
            self._respond_error(request_id, f"{type(exc).__name__}: {exc}")
            return
        self.emit(
            {
                "type": "control_response",
                "response": {"subtype": "success", "request_id": request_id, "response": response},
            }
        )

    def _respond_error(self, request_id: Any, error: str) -> None:
        self.emit(
            {
                "type": "control_response",
                "response": {"subtype": "error", "request_id": request_id, "error": error},
            }
        )

    async def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        session = self.session
        assert session is not None
        subtype = body.get("subtype")
        if subtype == "initialize":
            return stream_control.initialize(session, body, self.request)
        if subtype == "interrupt":
            self.interrupt()
            return {}
        if subtype == "set_permission_mode":
            return self._set_mode(session, body)
        if subtype == "set_model":
            return stream_control.set_model(session, body)
        if subtype == "get_context_usage":
            return stream_control.context_usage(session)
        if subtype in ("mcp_status", "mcp_server_status"):  # Claude's name, Qwen Code's
            return stream_control.mcp_status(session)
        if subtype == "supported_commands":
            return {"commands": stream_control.initialize(session, {})["commands"]}
        if subtype == "rewind_files":
            return await self._rewind(session, body)
        raise stream_control.BadRequest(
            f"qwen-code does not support the control request {subtype!r}"
        )

    def _set_mode(self, session: Session, body: dict[str, Any]) -> dict[str, Any]:
        from qwen_code.cli_compat import permission_mode

        mode = permission_mode(str(body.get("mode")))
        session.runner.set_mode(mode)  # type: ignore[arg-type]
        if isinstance(session.approver, HeadlessApprover):
            session.approver.mode = mode  # type: ignore[assignment]
        return {}

    async def _rewind(self, session: Session, body: dict[str, Any]) -> dict[str, Any]:
        from qwen_code.ui.stream_rewind import rewind_files

        message_id = body.get("user_message_id")
        turn = self.turn_of.get(str(message_id))
        if turn is None:
            raise stream_control.BadRequest(
                f"no user message {message_id!r} in this process (send user messages with "
                "a uuid, or use --replay-user-messages to learn theirs)"
            )
        later = [cid for number, cid in sorted(self.checkpoints.items()) if number >= turn]
        dry_run = bool(body.get("dry_run"))
        return await asyncio.to_thread(
            rewind_files, session, later[0] if later else None, dry_run=dry_run
        )

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send our own control request (`can_use_tool`) and wait for its response."""
        if self._input_closed:
            raise ControlFailed("stdin is closed, so no answer can come")
        self._counter += 1
        request_id = f"qwen_{self._counter}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        self.emit({"type": "control_request", "request_id": request_id, "request": body})
        try:
            return await future
        except asyncio.CancelledError:
            self.emit({"type": "control_cancel_request", "request_id": request_id})
            raise
        finally:
            self.pending.pop(request_id, None)

    def _response(self, response: Any) -> None:
        if not isinstance(response, dict):
            return
        future = self.pending.get(str(response.get("request_id")))
        if future is None or future.done():
            return
        if response.get("subtype") == "error":
            future.set_exception(ControlFailed(str(response.get("error") or "error")))
        else:
            body = response.get("response")
            future.set_result(body if isinstance(body, dict) else {})


def _start_reader(
    stdin: IO[Any], lines: asyncio.Queue[str | None], loop: asyncio.AbstractEventLoop
) -> None:
    """Read stdin's lines in a thread (a pipe, a file or a terminal all work); None
    after the last. The thread is a daemon: a process that ends does not wait for it."""
    source = getattr(stdin, "buffer", stdin)

    def read() -> None:
        try:
            while raw := source.readline():
                text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")
                loop.call_soon_threadsafe(lines.put_nowait, text)
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=read, name="stream-json stdin", daemon=True).start()


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def _last_checkpoint(session: Session) -> str | None:
    from qwen_code.session.persistence import Persistence

    persistence = session.observer(Persistence)
    return persistence.last_checkpoint if persistence is not None else None
