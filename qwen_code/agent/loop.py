"""The agent loop: send the conversation, run the tools it asks for, repeat.

`Agent.run(prompt)` is an async generator of events. It knows nothing of screens: the
REPL, the headless printers and tests all consume the same stream.

Each model request is one step (`Agent._step`), an async generator too: it yields the
events as they happen and, last, a `StepResult` that says how the turn goes on.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from qwen_code.agent.compress import Compressor
from qwen_code.agent.context import ContextBudget
from qwen_code.agent.conversation import Conversation
from qwen_code.agent.events import (
    AssistantMessage,
    Compressed,
    CompressionReason,
    Error,
    Event,
    SideUsage,
    SubagentEvent,
    ToolCallStarted,
    ToolResult,
    TurnEnd,
    Usage,
    UsageInfo,
)
from qwen_code.agent.hook_points import STOP_BLOCK_CAP, notices, on_prompt, on_stop
from qwen_code.agent.loop_detection import LoopDetector, Stop, StreamWatch, TextLoop
from qwen_code.agent.replies import (
    CONTINUE_PROMPT,
    CUT_OFF_ERROR,
    CUT_OFF_NOTICE,
    CutOffs,
    Streamed,
    close_unanswered,
    partial_usage,
    system_text,
    usage_of,
)
from qwen_code.agent.tool_runner import ToolRunner
from qwen_code.errors import ModelError
from qwen_code.llm.tokens import add_usage, is_estimate
from qwen_code.llm.types import ChatModel, ModelResponse, TextChunk

if TYPE_CHECKING:
    from qwen_code.hooks import Hooks

log = logging.getLogger(__name__)

T = TypeVar("T")

_TEXT_LOOP_NOTICE = "The reply repeated itself; asking the model to go on without repeating."
MEDIA_NOTE = "The images returned by the tool calls above:"
PLAN_REMINDER = (
    "<system-reminder>Plan mode is on: research with read-only tools and make no changes. "
    "When the plan is ready, present it with exit_plan_mode.</system-reminder>"
)


@dataclass(frozen=True, slots=True)
class StepResult:
    """How one model request ended (one of the subclasses); `text` is its reply's text."""

    text: str


@dataclass(frozen=True, slots=True)
class Continue(StepResult):
    """The tool results (or a note that the reply repeated itself) were recorded: the
    turn goes on with the next request."""


@dataclass(frozen=True, slots=True)
class Finished(StepResult):
    """The model answered without asking for tools: the turn is complete."""


@dataclass(frozen=True, slots=True)
class Stopped(StepResult):
    """A loop detector or a model error ended the turn; `end` says why."""

    end: TurnEnd


class Inbox(Protocol):
    """Messages that arrive for the model while it works or between prompts (a
    background subagent's result): given to it before its next request."""

    def take(self) -> list[str]:
        """The messages that have arrived (each once)."""
        ...

    def waiting(self) -> bool:
        """Whether a turn that is done should rather wait for more (headless: the run
        ends only when the background work it started has reported)."""
        ...

    async def wait(self) -> None:
        """Until a message arrives or nothing is left to wait for."""
        ...


class Agent:
    """One session's loop over a conversation, a model and the tools."""

    inbox: Inbox | None = None
    hooks: Hooks | None = None
    """The user's hooks (`UserPromptSubmit`, `Stop`), if any; the runner has the tool ones."""
    prompt_hooks: bool = True
    """Whether `UserPromptSubmit` fires for this agent's prompts (not for a subagent's)."""
    stop_event: str = "Stop"
    """The hook event of this agent's stop (`SubagentStop` for a subagent)."""
    hook_fields: dict[str, Any] = {}  # noqa: RUF012 (replaced per agent, never mutated)
    """Fields added to this agent's stop event (a subagent's `agent_id`, `agent_type`)."""

    def __init__(
        self,
        *,
        model: ChatModel,
        tools: ToolRunner,
        conversation: Conversation,
        max_turns: int = -1,
        compressor: Compressor | None = None,
        loops: LoopDetector | None = None,
    ) -> None:
        self.model = model
        self.tools = tools
        self.conversation = conversation
        self.max_turns = max_turns
        self.compressor = compressor or Compressor()
        """Keeps the history inside the context budget (`self.budget`)."""
        self.usage = UsageInfo()
        self.api_seconds = 0.0
        """Time spent waiting on the model, for reports."""
        self.loops = loops or LoopDetector()
        """Watches for repeated tool calls and repeated text (`model.skipLoopDetection`)."""
        self.pending_context: list[str] = []
        """Context for the next user message (what `SessionStart` hooks added)."""
        self.unreported: list[UsageInfo] = []
        """Estimated usage of requests cut short (interrupted, failed), which no event
        reported; in `usage` already. A front end takes it with `take_unreported`."""
        self.cut_offs = CutOffs()
        self._stop_blocks = 0

    @property
    def budget(self) -> ContextBudget:
        return self.compressor.budget

    def take_unreported(self) -> list[UsageInfo]:
        """The usage of requests cut short since the last call (see `unreported`)."""
        taken, self.unreported = self.unreported, []
        return taken

    async def run(
        self, prompt: str, *, media: tuple[dict[str, Any], ...] = ()
    ) -> AsyncIterator[Event]:
        """Work on one user message (with `media`: attached images, as content parts)
        until the model is done or a limit stops it."""
        verdict = await on_prompt(self.hooks if self.prompt_hooks else None, prompt)
        for notice in verdict.notices:
            yield notice
        if verdict.blocked is not None:
            yield Error(message=verdict.blocked, kind="hook")
            yield TurnEnd(reason="error", error=verdict.blocked)
            return
        notes = self.inbox.take() if self.inbox is not None else []
        planning = self.tools.mode == "plan" and "exit_plan_mode" in self.tools.registry
        reminder = [PLAN_REMINDER] if planning else []
        context = [*self.pending_context, *verdict.context]
        self.pending_context.clear()
        self.conversation.add_user("\n\n".join([*notes, prompt, *context, *reminder]), media)
        self.loops.reset()
        self.cut_offs = CutOffs()
        self._stop_blocks = 0
        turns, last_text = 0, ""
        try:
            while not 0 <= self.max_turns <= turns:
                turns += 1
                result: StepResult | None = None
                async with aclosing(self._step()) as step:
                    async for item in step:
                        if isinstance(item, StepResult):
                            result = item
                        else:
                            yield item
                assert result is not None, "every step ends in a StepResult"
                last_text = result.text or last_text
                match result:
                    case Finished(text=text):
                        yield TurnEnd(reason="completed", final_text=text, num_turns=turns)
                        return
                    case Stopped(end=end):
                        yield dataclasses.replace(end, final_text=last_text, num_turns=turns)
                        return
            yield TurnEnd(reason="max_turns", final_text=last_text, num_turns=turns)
        finally:
            self.conversation.close_pending()
            close_unanswered(self.conversation)

    async def _step(self) -> AsyncIterator[Event | StepResult]:
        """One model request and what follows from it: the events as they happen, then
        the StepResult. A model error ends the turn."""
        try:
            response: ModelResponse | None = None
            async with aclosing(self._request()) as request:
                async for item in request:
                    if isinstance(item, ModelResponse):
                        response = item
                    else:
                        yield item
            assert response is not None, "a request ends in its response or raises"
            async for item in self._respond(response):
                yield item
        except ModelError as exc:
            yield Error(message=str(exc), kind=exc.kind)
            yield Stopped(text="", end=TurnEnd(reason="error", error=str(exc)))

    async def _respond(self, response: ModelResponse) -> AsyncIterator[Event | StepResult]:
        """Record the response (a repetition the loop detector found cut out; its usage
        estimated when the server sent none), then stop for a loop or go on."""
        messages, tools = self.conversation.messages, self.tools.registry.schemas()
        usage = usage_of(response, self.budget, messages, tools)
        text_loop = self.loops.check_text(response.text, system_text(messages))
        kept = text_loop.kept if text_loop is not None else response.text
        response = dataclasses.replace(response, text=kept, usage=usage)
        async for event in self._record(response):
            yield event
        stop = text_loop.stop if text_loop else None
        stop = stop or self.loops.check_calls(response.tool_calls)
        follow = self._stop(response, stop) if stop else self._go_on(response, text_loop)
        async for item in follow:
            yield item

    async def _go_on(
        self, response: ModelResponse, text_loop: TextLoop | None
    ) -> AsyncIterator[Event | StepResult]:
        """Run the calls, or ask the model to go on without repeating itself or after a
        reply cut off at the output limit, or finish."""
        if response.finish_reason == "length" and not response.tool_calls and not text_loop:
            async for item in self._cut_off(response.text):
                yield item
            return
        text = self.cut_offs.take(response.text)
        if response.tool_calls:
            note = text_loop.note if text_loop else None
            async for event in self._run_tools(response, note):
                yield event
            yield Continue(text=response.text)
        elif text_loop is not None:
            self.conversation.add_user(text_loop.note)
            yield Error(message=_TEXT_LOOP_NOTICE, kind="loop", retrying=True)
            yield Continue(text=response.text)
        elif self.inbox is not None and self.inbox.waiting():
            await self.inbox.wait()  # background agents the run started report first
            yield Continue(text=response.text)
        else:
            async for item in self._finish(text):
                yield item

    async def _cut_off(self, text: str) -> AsyncIterator[Event | StepResult]:
        """A reply cut off at the output limit with no tool call: the model is asked once
        to continue where it stopped; cut off again, the turn ends (a `max_tokens` error)."""
        if self.cut_offs.cut(text):
            self.conversation.add_user(CONTINUE_PROMPT)
            yield Error(message=CUT_OFF_NOTICE, kind="max_tokens", retrying=True)
            yield Continue(text=text)
            return
        yield Error(message=CUT_OFF_ERROR, kind="max_tokens")
        end = TurnEnd(reason="error", error=CUT_OFF_ERROR)
        yield Stopped(text=self.cut_offs.take(""), end=end)

    async def _finish(self, text: str) -> AsyncIterator[Event | StepResult]:
        """The model is done, unless a `Stop` hook blocks the stop: then its reason goes
        to the model and the turn goes on (at most `STOP_BLOCK_CAP` times in a row)."""
        active = self._stop_blocks > 0
        event, extra = self.stop_event, self.hook_fields
        outcome = await on_stop(self.hooks, text, active=active, event=event, extra=extra)
        if outcome is not None:
            for notice in notices(outcome, event):
                yield notice
        if outcome is None or not outcome.blocked or outcome.stop:
            yield Finished(text=text)
            return
        self._stop_blocks += 1
        if self._stop_blocks > STOP_BLOCK_CAP:
            message = f"A {event} hook blocked the stop {STOP_BLOCK_CAP} times; ending the turn."
            yield Error(message=message, kind="hook")
            yield Finished(text=text)
            return
        reason = outcome.reason or f"a {event} hook asked to continue"
        self.conversation.add_user(f"{event} hook feedback: {reason}")
        yield Continue(text=text)

    async def _stop(self, response: ModelResponse, stop: Stop) -> AsyncIterator[Event | StepResult]:
        """End the turn for a loop: the calls of the response are answered, not run."""
        for call in response.tool_calls:
            yield ToolCallStarted(call=call)
            self.conversation.add_tool_result(call.id, stop.result)
            yield ToolResult(call=call, output=stop.result, is_error=True)
        yield Error(message=stop.reason, kind="loop")
        yield Stopped(text=response.text, end=TurnEnd(reason="error", error=stop.reason))

    async def compress(
        self, *, force: bool = True, focus: str = ""
    ) -> Compressed | SideUsage | None:
        """Compress the history now (`/compress`), or only when over budget (`force=False`).
        None when there was nothing worth compressing; `SideUsage` when a summary was
        asked for and turned out no shorter (nothing changed, but the request was paid)."""
        tools = self.tools.registry.schemas()
        if not force:
            return await self._timed(self.compressor.fit(self.conversation, self.model, tools))
        compressed = await self._compress("manual", tools, focus=focus)
        unused = self.compressor.take_unused_usage()
        if compressed is None and unused is not None:
            self.usage = add_usage(self.usage, unused)
            return SideUsage(usage=unused)
        return compressed

    async def _request(self) -> AsyncIterator[Event | Compressed | ModelResponse]:
        """One model request that fits the context budget (compressing first when needed):
        its events as they stream, then its ModelResponse. An overflow error from the
        server is answered once: compress, then retry. A reply cut short (cancelled,
        failed) is still recorded, with the text it had streamed, and its usage estimated
        (`unreported`)."""
        streamed = Streamed()
        tools = self.tools.registry.schemas()
        try:
            fitted = await self._prepare(tools)
            if fitted is not None:
                yield fitted
            for last_try in (False, True):
                try:
                    async for item in self._query(tools, streamed):
                        yield item
                    break
                except ModelError as exc:
                    if last_try or exc.kind != "context_overflow" or streamed.text:
                        raise
                    overflow = exc
                async for item in self._make_room(overflow, tools):
                    yield item
            streamed.check_answered()
        except BaseException as exc:
            self._cut_short(streamed, tools, exc)
            raise

    def _cut_short(
        self, streamed: Streamed, tools: list[dict[str, Any]], exc: BaseException
    ) -> None:
        """A request that got no response: its usage estimated (when it cost any), and its
        text so far recorded."""
        if streamed.cost(exc):
            used = partial_usage(self.budget, self.conversation.messages, tools, streamed.text)
            self.usage = add_usage(self.usage, used)
            self.unreported.append(used)
        close_unanswered(self.conversation, streamed.text)

    async def _prepare(self, tools: list[dict[str, Any]]) -> Compressed | None:
        """Before a request: messages that arrived are added, the history repaired, and
        compressed when the budget says so."""
        notes = self.inbox.take() if self.inbox is not None else []
        if notes:
            self.conversation.add_user("\n\n".join(notes))
        for fix in self.conversation.repair():
            log.warning("conversation repaired before the request: %s", fix)
        fitted = await self._timed(self.compressor.fit(self.conversation, self.model, tools))
        return self._count(fitted) if fitted is not None else None

    async def _make_room(
        self, overflow: ModelError, tools: list[dict[str, Any]]
    ) -> AsyncIterator[Error | Compressed]:
        """Compress after the server said the request overflowed its context (sized by
        what the server reported); the overflow stands when nothing could be compressed."""
        yield Error(
            message=f"{overflow.message} Compressing the conversation and retrying.",
            kind=overflow.kind,
            retrying=True,
        )
        actual = self.budget.learn_overflow(overflow.message, self.conversation.messages, tools)
        before = max(actual or 0, self.budget.estimate(self.conversation.messages, tools))
        compressed = await self._compress("overflow", tools, before=before)
        if compressed is None:
            raise overflow
        yield compressed

    async def _compress(
        self,
        reason: CompressionReason,
        tools: list[dict[str, Any]],
        *,
        before: int | None = None,
        focus: str = "",
    ) -> Compressed | None:
        compressed = await self._timed(
            self.compressor.compress(
                self.conversation, self.model, tools, reason=reason, before=before, focus=focus
            )
        )
        return self._count(compressed) if compressed is not None else None

    def _count(self, compressed: Compressed) -> Compressed:
        """Add what the summarizing request cost to the session's usage."""
        if compressed.usage is not None:
            self.usage = add_usage(self.usage, compressed.usage)
        return compressed

    async def _timed(self, work: Awaitable[T]) -> T:
        started = time.monotonic()
        try:
            return await work
        finally:
            self.api_seconds += time.monotonic() - started

    async def _query(
        self, tools: list[dict[str, Any]], streamed: Streamed
    ) -> AsyncIterator[Event | ModelResponse]:
        """The reply's events as they stream, then its response. A reply that repeats
        itself (`StreamWatch`) is not read to its end: its text so far is the response."""
        started = time.monotonic()
        watch = StreamWatch(self.loops, system_text(self.conversation.messages))
        streamed.sent = True
        stream = self.model.stream_chat(self.conversation.messages, tools)
        try:
            async for item in stream:
                yield streamed.event(item)
                if isinstance(item, TextChunk) and watch.looping(
                    streamed.chars, lambda: streamed.text
                ):
                    yield streamed.stopped()
                    return
        finally:
            self.api_seconds += time.monotonic() - started
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()  # the stream stops at once (the connection is closed)

    async def _record(self, response: ModelResponse) -> AsyncIterator[Event]:
        self.conversation.add_assistant(response.text, response.tool_calls)
        server = None if is_estimate(response.usage) else response.usage  # never calibrate on ours
        self.budget.observe(self.conversation.messages, self.tools.registry.schemas(), server)
        yield AssistantMessage(
            text=response.text,
            tool_calls=response.tool_calls,
            finish_reason=response.finish_reason,
            usage=response.usage,
        )
        if response.usage is not None:
            self.usage = add_usage(self.usage, response.usage)
            yield Usage(request=response.usage, total=self.usage)

    async def _run_tools(
        self, response: ModelResponse, note: str | None = None
    ) -> AsyncIterator[Event]:
        """Run the calls and record their results; loop warnings (and `note`) go at the
        end of the last result, so the history stays a valid call/result sequence."""
        last_id = response.tool_calls[-1].id
        media: list[dict[str, Any]] = []
        async for event in self.tools.run(response.tool_calls):
            if isinstance(event, SubagentEvent | SideUsage):
                self.count_subagent(event)
            if isinstance(event, ToolResult):
                event = self._fit_result(event)
                notes = [self.loops.note_for(event), note if event.call.id == last_id else None]
                extra = "\n\n".join(n for n in notes if n)
                if extra:
                    event = dataclasses.replace(event, output=f"{event.output}\n\n{extra}")
                self.conversation.add_tool_result(event.call.id, event.output)
                media.extend(event.media)
            yield event
        if media:  # images cannot go in `role: tool` messages on strict servers
            self.conversation.add_user(MEDIA_NOTE, tuple(media))

    def count_subagent(self, event: SubagentEvent | SideUsage) -> None:
        """A subagent's requests, and those a tool made for its own use, count in this
        agent's usage (and so in the session's)."""
        inner = event.innermost()[1] if isinstance(event, SubagentEvent) else event
        if isinstance(inner, AssistantMessage | Compressed | SideUsage) and inner.usage:
            self.usage = add_usage(self.usage, inner.usage)

    def _fit_result(self, result: ToolResult) -> ToolResult:
        """Cap one tool result at a safe share of the context window (head and tail)."""
        path = result.data.get("output_path")
        output = self.budget.cap_tool_output(result.output, path if isinstance(path, str) else None)
        return result if output is result.output else dataclasses.replace(result, output=output)
