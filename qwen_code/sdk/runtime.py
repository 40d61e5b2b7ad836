"""One open session and the turns run on it: what a `Client` drives.

A turn runs as a headless run does (`ui.headless.run_headless`): the same `Recorder`,
`RunGuard` (budget, `json_schema`) and `StreamJsonPrinter`, whose messages go to a sink
instead of stdout. The turn's work runs in a task of its own, so that an interrupt
cancels it and the turn still ends with its result message ("error_interrupted").
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qwen_code.agent.events import Event, SubagentEvent
from qwen_code.errors import QwenCodeError
from qwen_code.sdk.errors import SdkError
from qwen_code.sdk.options import Options, Resolved, resolve
from qwen_code.sdk.permissions import CallbackApprover
from qwen_code.tools.events import ToolNotice
from qwen_code.ui.headless_outcome import Recorder
from qwen_code.ui.headless_output import StreamJsonPrinter
from qwen_code.ui.run_limits import RunGuard, settle

if TYPE_CHECKING:
    from qwen_code.sdk.tools import SdkTool
    from qwen_code.session.checkpoints import Checkpoint
    from qwen_code.session.live import Session

log = logging.getLogger(__name__)
Emit = Callable[[dict[str, Any]], None]


@dataclass(slots=True)
class _Turn:
    printer: StreamJsonPrinter
    recorder: Recorder
    interrupted: bool = False
    task: asyncio.Task[None] | None = None


async def open_runtime(options: Options) -> Runtime:
    """Check the options, open the session, add the custom tools; SdkError when the
    options cannot be used (the session is closed again then)."""
    from qwen_code.session.setup import open_session
    from qwen_code.ui.headless import startup_notes

    resolved = resolve(options)
    approver = CallbackApprover(options.can_use_tool)
    try:
        session = await open_session(
            resolved.settings,
            resolved.provider,
            cwd=resolved.cwd,
            home=resolved.home,
            approver=approver,
            resume=resolved.resume,
            headless=True,
        )
    except QwenCodeError as exc:
        raise SdkError.wrap(exc) from exc
    try:
        notes = [*resolved.settings.notices, *startup_notes(session, resolved.resume)]
        runtime = Runtime(session, resolved, partial=options.include_partial_messages, notes=notes)
        runtime.install(resolved.tools)
    except BaseException:
        await session.aclose()
        raise
    approver.mode_of = lambda: session.runner.mode
    approver.on_interrupt = runtime.interrupt
    return runtime


class Runtime:
    def __init__(
        self, session: Session, resolved: Resolved, *, partial: bool, notes: list[str]
    ) -> None:
        self.session = session
        self.limits = resolved.limits
        self.partial = partial
        self.default_model = session.model
        self._notes = notes
        self._turn: _Turn | None = None
        self._interrupt_next = False

    def install(self, tools: list[SdkTool]) -> None:
        """Register the custom tools (and `structured_output` for `json_schema`)."""
        from qwen_code.tools.structured_output import StructuredOutputTool

        registry = self.session.registry
        for tool in tools:
            if tool.name in registry:
                raise SdkError(
                    f"tools: {tool.name!r} is already a tool of the session (a built-in or "
                    "MCP tool); give yours another name."
                )
            registry.register(tool)
        self.check_price(self.session.model)
        if self.limits.json_schema is not None:
            registry.register(StructuredOutputTool(self.limits.json_schema), replace=True)
        if self.session.subagents is not None:
            self.session.subagents.watchers.append(self._background)

    def check_price(self, model: str) -> None:
        """`max_budget_usd` needs the model's prices."""
        from qwen_code.llm.pricing import PriceTable

        pricing = self.session.pricing or PriceTable.builtin()
        if self.limits.max_budget_usd is not None and not pricing.knows(model):
            raise SdkError(
                f"max_budget_usd: the price of {model!r} is not known, so the budget cannot "
                "be kept. Give its prices in the modelPricing setting (see docs/cost.md)."
            )

    # --- turns ---------------------------------------------------------------------------

    async def run_turn(self, prompt: str, emit: Emit) -> None:
        """Run `prompt` to the end, handing each message to `emit`: `init`, the notices,
        what happens, and the result (also after an interrupt or a failure)."""
        from qwen_code.ui.headless import run_info

        session = self.session
        recorder = Recorder()
        guard = RunGuard(self.limits, session.model, session.pricing, recorder.outcome.requests)
        info = run_info(session, session.runner.mode)
        printer = StreamJsonPrinter(io.StringIO(), io.StringIO(), partial=self.partial, sink=emit)
        turn = _Turn(printer, recorder, interrupted=self._interrupt_next)
        self._turn, self._interrupt_next = turn, False
        api_before = session.agent.api_seconds
        try:
            printer.start(info)
            for note in self._notes:
                printer.event(ToolNotice(message=note))
            self._notes = []
            await self._supervise(turn, self._drive(prompt, turn, guard))
        finally:
            self._turn = None
            settle(guard, recorder.outcome)
            recorder.outcome.api_seconds = session.agent.api_seconds - api_before
            printer.finish(info, recorder.outcome)

    async def _supervise(self, turn: _Turn, work: Any) -> None:
        """Run the turn's work in its own task (what `interrupt` cancels); how it ended
        goes into the outcome. Cancelling the caller cancels the work too."""
        outcome = turn.recorder.outcome
        if turn.interrupted:
            work.close()
            outcome.reason = "cancelled"
            return
        task = turn.task = asyncio.ensure_future(work)
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.wait({task})
            outcome.reason = "cancelled"
            raise
        if task.cancelled():
            outcome.reason = "cancelled"
        elif (exc := task.exception()) is not None:
            if not isinstance(exc, QwenCodeError):
                log.error("the turn failed", exc_info=exc)
            outcome.reason, outcome.error = "error", str(exc) or type(exc).__name__

    async def _drive(self, prompt: str, turn: _Turn, guard: RunGuard) -> None:
        """Send the prompt and pass every event on, until the turn ends or the guard stops
        it (the run's generator is closed then: what was in progress is cancelled)."""
        text, media = await self._full_prompt(prompt, turn.printer, structured=guard.structured)
        events = self.session.run(text, media=media)
        async with contextlib.aclosing(events):  # type: ignore[type-var]
            async for event in events:
                self._show(turn, event)
                if guard.observe(event) is not None:
                    return

    async def _full_prompt(
        self, prompt: str, printer: StreamJsonPrinter, *, structured: bool
    ) -> tuple[str, tuple[dict[str, Any], ...]]:
        """As headless: a custom command expanded, `@image`s attached, and the
        `json_schema` instruction; what could not be done becomes a notice."""
        from qwen_code.tools.structured_output import PROMPT_NOTE
        from qwen_code.ui.attachments import prompt_with_images
        from qwen_code.ui.headless import expand_custom_command

        notes = io.StringIO()
        text = await expand_custom_command(self.session, prompt, notes)
        text, media, more = await prompt_with_images(self.session.tool_ctx, text)
        lines = [line.removeprefix("qwen-code: ") for line in notes.getvalue().splitlines()]
        for line in [*lines, *more]:
            printer.event(ToolNotice(message=line))
        return (f"{text}\n\n{PROMPT_NOTE}" if structured else text), media

    @staticmethod
    def _show(turn: _Turn, event: Event) -> None:
        turn.recorder.observe(event)
        turn.printer.event(event)

    def _background(self, event: SubagentEvent) -> None:
        """A background agent's step, outside any call: shown in the turn running now."""
        if self._turn is not None:
            self._show(self._turn, event)

    def interrupt(self) -> None:
        """Cancel the running turn; between turns, the next one (a prompt already sent)."""
        turn = self._turn
        if turn is None:
            self._interrupt_next = True
            return
        turn.interrupted = True
        if turn.task is not None:
            turn.task.cancel()

    @property
    def running(self) -> bool:
        return self._turn is not None

    # --- between turns -------------------------------------------------------------------

    def set_model(self, model: str | None) -> None:
        """Use `model` from the next request on (None: the one the session started with)."""
        chosen = model or self.default_model
        self.check_price(chosen)
        self.session.switch_model(chosen)

    def set_permission_mode(self, mode: str) -> None:
        from qwen_code.sdk.options import approval_mode

        self.session.runner.set_mode(approval_mode(mode))

    def context_usage(self) -> dict[str, Any]:
        """Tokens the next request would take, of the model's window (None: unknown)."""
        agent = self.session.agent
        used = agent.budget.estimate(agent.conversation.messages, agent.tools.registry.schemas())
        window = agent.budget.window
        return {
            "totalTokens": used,
            "maxTokens": window,
            "percentage": round(100 * used / window, 1) if window else None,
            "model": self.session.model,
        }

    async def checkpoints(self) -> list[Checkpoint]:
        from qwen_code.session.checkpoints import CheckpointError, Checkpoints

        found = Checkpoints(self.session.home, self.session.cwd)
        try:
            return await asyncio.to_thread(found.list, session_id=self.session.id)
        except (CheckpointError, OSError) as exc:
            raise SdkError(f"checkpoints: {exc}") from exc

    async def rewind_files(self, checkpoint_id: str) -> list[str]:
        """Put the workspace's files back as they were at a checkpoint; the files put
        back or removed."""
        from qwen_code.session.checkpoints import CheckpointError, Checkpoints

        if self.running:
            raise SdkError("rewind_files: a turn is running; interrupt it or wait for its result.")
        found = Checkpoints(self.session.home, self.session.cwd)
        try:
            restored = await asyncio.to_thread(found.restore, checkpoint_id)
        except (CheckpointError, OSError) as exc:
            raise SdkError(f"rewind_files: {exc}") from exc
        return [*restored.restored, *restored.deleted]

    async def aclose(self) -> None:
        await self.session.aclose()
