"""The agent loop: send the conversation, run the tools it asks for, repeat.

`Agent.run(prompt)` is an async generator of events. It knows nothing of screens: the
REPL, the headless printers and tests all consume the same stream.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from qwen_code.agent.compress import Compressor
from qwen_code.agent.context import ContextBudget
from qwen_code.agent.conversation import Conversation
from qwen_code.agent.events import (
    AssistantMessage,
    Compressed,
    CompressionReason,
    Error,
    Event,
    TextDelta,
    ToolCallStarted,
    ToolResult,
    TurnEnd,
    Usage,
    UsageInfo,
)
from qwen_code.agent.loop_detection import LoopDetector, Stop
from qwen_code.agent.tool_runner import ToolRunner
from qwen_code.errors import ModelError
from qwen_code.llm.types import ModelResponse, RetryNotice, StreamItem, TextChunk

log = logging.getLogger(__name__)

T = TypeVar("T")


class ChatModel(Protocol):
    def stream_chat(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> AsyncIterator[StreamItem]: ...


_TEXT_LOOP_NOTICE = "The reply repeated itself; asking the model to go on without repeating."


@dataclass(slots=True)
class _Step:
    """What one model request came to: its text, and `end` when the turn is over."""

    text: str = ""
    end: TurnEnd | None = None


class Agent:
    """One session's loop over a conversation, a model and the tools."""

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
        self._partial: list[str] = []
        """Text streamed so far in the current request."""

    @property
    def budget(self) -> ContextBudget:
        return self.compressor.budget

    async def run(self, prompt: str) -> AsyncIterator[Event | Compressed]:
        """Work on one user message until the model is done or a limit stops it."""
        self.conversation.add_user(prompt)
        self.loops.reset()
        turns, last_text = 0, ""
        try:
            while True:
                if 0 <= self.max_turns <= turns:
                    yield TurnEnd(reason="max_turns", final_text=last_text, num_turns=turns)
                    return
                turns += 1
                step = _Step()
                async for event in self._step(step):
                    yield event
                last_text = step.text or last_text
                if step.end is not None:
                    final = step.text if step.end.reason == "completed" else last_text
                    yield dataclasses.replace(step.end, final_text=final, num_turns=turns)
                    return
        except ModelError as exc:
            yield Error(message=str(exc), kind=exc.kind)
            yield TurnEnd(reason="error", final_text=last_text, num_turns=turns, error=str(exc))
        finally:
            self.conversation.close_pending()
            self._close_unanswered()

    async def _step(self, step: _Step) -> AsyncIterator[Event | Compressed]:
        """One model request and what follows from it: the tools it asks for, or the end
        of the turn (`step.end`)."""
        response: ModelResponse | None = None
        self._partial.clear()
        async for event in self._request():
            if isinstance(event, ModelResponse):
                response = event
            else:
                if isinstance(event, TextDelta):
                    self._partial.append(event.text)
                yield event
        if response is None:
            raise ModelError("The model stream ended without a response.", kind="server")
        self._partial.clear()
        text_loop = self.loops.check_text(response.text)
        if text_loop is not None:
            response = dataclasses.replace(response, text=text_loop.kept)
        step.text = response.text
        async for event in self._record(response):
            yield event
        stop = text_loop.stop if text_loop else None
        stop = stop or self.loops.check_calls(response.tool_calls)
        if stop is not None:
            async for event in self._stop(response, stop, step):
                yield event
        elif response.tool_calls:
            note = text_loop.note if text_loop else None
            async for event in self._run_tools(response, note):
                yield event
        elif text_loop is not None:
            self.conversation.add_user(text_loop.note)
            yield Error(message=_TEXT_LOOP_NOTICE, kind="loop", retrying=True)
        else:
            step.end = TurnEnd(reason="completed")

    async def _stop(self, response: ModelResponse, stop: Stop, step: _Step) -> AsyncIterator[Event]:
        """End the turn for a loop: the calls of the response are answered, not run."""
        for call in response.tool_calls:
            yield ToolCallStarted(call=call)
            self.conversation.add_tool_result(call.id, stop.result)
            yield ToolResult(call=call, output=stop.result, is_error=True)
        yield Error(message=stop.reason, kind="loop")
        step.end = TurnEnd(reason="error", error=stop.reason)

    def _close_unanswered(self) -> None:
        """A request that got no complete reply (cancelled, failed) still gets an assistant
        message, holding whatever text had streamed, so the history keeps alternating."""
        messages = self.conversation.messages
        if messages and messages[-1]["role"] == "user":
            partial = "".join(self._partial).rstrip()
            note = "[The reply was interrupted.]"
            self.conversation.add_assistant(f"{partial}\n\n{note}" if partial else note)
        self._partial.clear()

    async def compress(self, *, force: bool = True, focus: str = "") -> Compressed | None:
        """Compress the history now (`/compress`), or only when over budget (`force=False`).
        None when there was nothing worth compressing."""
        tools = self.tools.registry.schemas()
        if not force:
            return await self._timed(self.compressor.fit(self.conversation, self.model, tools))
        return await self._compress("manual", tools, focus=focus)

    async def _request(self) -> AsyncIterator[Event | Compressed | ModelResponse]:
        """One model request that fits the context budget (compressing first when needed).
        An overflow error from the server is answered once: compress, then retry."""
        tools = self.tools.registry.schemas()
        for fix in self.conversation.repair():
            log.warning("conversation repaired before the request: %s", fix)
        fitted = await self._timed(self.compressor.fit(self.conversation, self.model, tools))
        if fitted is not None:
            yield self._count(fitted)
        try:
            async for item in self._query(tools):
                yield item
            return
        except ModelError as exc:
            if exc.kind != "context_overflow" or self._partial:
                raise
            overflow = exc
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
        async for item in self._query(tools):
            yield item

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
            self.usage = self.usage + compressed.usage
        return compressed

    async def _timed(self, work: Awaitable[T]) -> T:
        started = time.monotonic()
        try:
            return await work
        finally:
            self.api_seconds += time.monotonic() - started

    async def _query(self, tools: list[dict[str, Any]]) -> AsyncIterator[Event | ModelResponse]:
        stream = self.model.stream_chat(self.conversation.messages, tools)
        started = time.monotonic()
        try:
            async for item in stream:
                match item:
                    case TextChunk(text=text):
                        yield TextDelta(text=text)
                    case RetryNotice(message=message, kind=kind):
                        if getattr(item, "restart", False):
                            self._partial.clear()  # the failed attempt's text is void
                        yield Error(message=message, kind=kind, retrying=True)
                    case ModelResponse():
                        yield item
        finally:
            self.api_seconds += time.monotonic() - started

    async def _record(self, response: ModelResponse) -> AsyncIterator[Event]:
        self.conversation.add_assistant(response.text, response.tool_calls)
        self.budget.observe(
            self.conversation.messages, self.tools.registry.schemas(), response.usage
        )
        yield AssistantMessage(
            text=response.text,
            tool_calls=response.tool_calls,
            finish_reason=response.finish_reason,
            usage=response.usage,
        )
        if response.usage is not None:
            self.usage = self.usage + response.usage
            yield Usage(request=response.usage, total=self.usage)

    async def _run_tools(
        self, response: ModelResponse, note: str | None = None
    ) -> AsyncIterator[Event]:
        """Run the calls and record their results; loop warnings (and `note`) go at the
        end of the last result, so the history stays a valid call/result sequence."""
        last_id = response.tool_calls[-1].id
        async for event in self.tools.run(response.tool_calls):
            if isinstance(event, ToolResult):
                event = self._fit_result(event)
                notes = [self.loops.note_for(event), note if event.call.id == last_id else None]
                extra = "\n\n".join(n for n in notes if n)
                if extra:
                    event = dataclasses.replace(event, output=f"{event.output}\n\n{extra}")
                self.conversation.add_tool_result(event.call.id, event.output)
            yield event

    def _fit_result(self, result: ToolResult) -> ToolResult:
        """Cap one tool result at a safe share of the context window (head and tail)."""
        path = result.data.get("output_path")
        output = self.budget.cap_tool_output(result.output, path if isinstance(path, str) else None)
        return result if output is result.output else dataclasses.replace(result, output=output)
