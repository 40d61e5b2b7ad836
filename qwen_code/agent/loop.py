"""The agent loop: send the conversation, run the tools it asks for, repeat.

`Agent.run(prompt)` is an async generator of events. It knows nothing of screens: the
REPL, the headless printers and tests all consume the same stream.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from qwen_code.agent.conversation import Conversation
from qwen_code.agent.events import (
    AssistantMessage,
    Error,
    Event,
    TextDelta,
    ToolResult,
    TurnEnd,
    Usage,
    UsageInfo,
)
from qwen_code.agent.tool_runner import ToolRunner
from qwen_code.errors import ModelError
from qwen_code.llm.types import ModelResponse, RetryNotice, StreamItem, TextChunk


class ChatModel(Protocol):
    def stream_chat(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> AsyncIterator[StreamItem]: ...


@dataclass(frozen=True, slots=True)
class Continue:
    """The model asked for tools: run them and ask again."""


@dataclass(frozen=True, slots=True)
class Done:
    """The model answered without tool calls."""

    text: str


class Agent:
    """One session's loop over a conversation, a model and the tools."""

    def __init__(
        self,
        *,
        model: ChatModel,
        tools: ToolRunner,
        conversation: Conversation,
        max_turns: int = -1,
    ) -> None:
        self.model = model
        self.tools = tools
        self.conversation = conversation
        self.max_turns = max_turns
        self.usage = UsageInfo()
        self.api_seconds = 0.0
        """Time spent waiting on the model, for reports."""
        self._partial: list[str] = []
        """Text streamed so far in the current request."""

    async def run(self, prompt: str) -> AsyncIterator[Event]:
        """Work on one user message until the model is done or a limit stops it."""
        self.conversation.add_user(prompt)
        turns, last_text = 0, ""
        try:
            while True:
                if 0 <= self.max_turns <= turns:
                    yield TurnEnd(reason="max_turns", final_text=last_text, num_turns=turns)
                    return
                turns += 1
                response: ModelResponse | None = None
                self._partial.clear()
                async for event in self._query():
                    if isinstance(event, ModelResponse):
                        response = event
                    else:
                        if isinstance(event, TextDelta):
                            self._partial.append(event.text)
                        yield event
                if response is None:
                    raise ModelError("The model stream ended without a response.", kind="server")
                last_text = response.text or last_text
                async for event in self._record(response):
                    yield event
                step = self._next_step(response)
                if isinstance(step, Done):
                    yield TurnEnd(reason="completed", final_text=step.text, num_turns=turns)
                    return
                async for event in self._run_tools(response):
                    yield event
        except ModelError as exc:
            yield Error(message=str(exc), kind=exc.kind)
            yield TurnEnd(reason="error", final_text=last_text, num_turns=turns, error=str(exc))
        finally:
            self.conversation.close_pending()
            self._close_unanswered()

    def _close_unanswered(self) -> None:
        """A request that got no complete reply (cancelled, failed) still gets an assistant
        message, holding whatever text had streamed, so the history keeps alternating."""
        messages = self.conversation.messages
        if messages and messages[-1]["role"] == "user":
            partial = "".join(self._partial).rstrip()
            note = "[The reply was interrupted.]"
            self.conversation.add_assistant(f"{partial}\n\n{note}" if partial else note)
        self._partial.clear()

    async def _query(self) -> AsyncIterator[Event | ModelResponse]:
        stream = self.model.stream_chat(self.conversation.messages, self.tools.registry.schemas())
        started = time.monotonic()
        try:
            async for item in stream:
                match item:
                    case TextChunk(text=text):
                        yield TextDelta(text=text)
                    case RetryNotice(message=message, kind=kind):
                        yield Error(message=message, kind=kind, retrying=True)
                    case ModelResponse():
                        yield item
        finally:
            self.api_seconds += time.monotonic() - started

    async def _record(self, response: ModelResponse) -> AsyncIterator[Event]:
        self.conversation.add_assistant(response.text, response.tool_calls)
        yield AssistantMessage(
            text=response.text,
            tool_calls=response.tool_calls,
            finish_reason=response.finish_reason,
            usage=response.usage,
        )
        if response.usage is not None:
            self.usage = self.usage + response.usage
            yield Usage(request=response.usage, total=self.usage)

    @staticmethod
    def _next_step(response: ModelResponse) -> Continue | Done:
        return Continue() if response.tool_calls else Done(response.text)

    async def _run_tools(self, response: ModelResponse) -> AsyncIterator[Event]:
        async for event in self.tools.run(response.tool_calls):
            if isinstance(event, ToolResult):
                self.conversation.add_tool_result(event.call.id, event.output)
            yield event
