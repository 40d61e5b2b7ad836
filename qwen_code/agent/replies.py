"""What the agent keeps about one model reply: its text as it streams (`Streamed`), its
token usage when the server reported none (`usage_of`, `partial_usage`), and replies cut
off at the output limit (`CutOffs`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qwen_code.agent.context import ContextBudget
from qwen_code.agent.conversation import Conversation
from qwen_code.agent.events import Error, Event, TextDelta, UsageInfo
from qwen_code.errors import ModelError
from qwen_code.llm.tokens import EstimatedUsage, estimate_usage, reply_tokens
from qwen_code.llm.types import ModelResponse, RetryNotice, StreamItem, TextChunk

INTERRUPTED = "[The reply was interrupted.]"
REPETITION = "repetition"
"""The `finish_reason` of a reply the agent stopped reading because it repeated itself."""
CONTINUE_PROMPT = "Your reply was cut off at the output limit; continue exactly where you stopped."
"""The user message that asks the model to go on after a reply cut off at the limit."""
CUT_OFF_NOTICE = (
    "The reply was cut off at the output token limit; asking the model to continue where "
    "it stopped."
)
CUT_OFF_ERROR = (
    "The reply was cut off at the output token limit, again after the model was asked to "
    "continue. Ask for a shorter answer, or raise the limit "
    "(model.generationConfig.samplingParams.max_tokens)."
)


@dataclass(slots=True)
class Streamed:
    """What one model request has streamed so far. Its text is what an interrupted reply
    leaves in the history; a restarted reply (`RetryNotice.restart`) voids it."""

    parts: list[str] = field(default_factory=list)
    response: ModelResponse | None = None
    chars: int = 0
    """The length of `text`, kept as it grows."""
    sent: bool = False
    """The request went out: it cost tokens even if no response comes back."""

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def event(self, item: StreamItem) -> Event | ModelResponse:
        """The event that shows `item` (a response is passed on as it is)."""
        match item:
            case TextChunk(text=text):
                self.parts.append(text)
                self.chars += len(text)
                return TextDelta(text=text)
            case RetryNotice(message=message, kind=kind, restart=restart):
                if restart:
                    self.parts.clear()  # the failed attempt's text is void
                    self.chars = 0
                return Error(message=message, kind=kind, retrying=True)
        self.response = item
        return item

    def stopped(self) -> ModelResponse:
        """The reply so far as its response, once the agent stopped reading it."""
        self.response = ModelResponse(text=self.text, finish_reason=REPETITION)
        return self.response

    def check_answered(self) -> None:
        """A stream must end in its response (a model that breaks this is a server error)."""
        if self.response is None:
            raise ModelError("The model stream ended without a response.", kind="server")

    def cost(self, error: BaseException) -> bool:
        """Whether a request that ended in `error` without a response still cost tokens
        worth counting: it went out and was interrupted (cancelled, closed), or it failed
        after the model had written something."""
        if not self.sent or self.response is not None:
            return False
        return not isinstance(error, ModelError) or bool(self.parts)


def close_unanswered(conversation: Conversation, partial: str = "") -> None:
    """A request that got no complete reply (cancelled, failed) still gets an assistant
    message, holding whatever text had streamed, so the history keeps alternating."""
    messages = conversation.messages
    if messages and messages[-1]["role"] == "user":
        partial = partial.rstrip()
        conversation.add_assistant(f"{partial}\n\n{INTERRUPTED}" if partial else INTERRUPTED)


def system_text(messages: Sequence[dict[str, Any]]) -> str:
    """The system prompt's text (the first message, when it is one)."""
    if not messages or messages[0].get("role") != "system":
        return ""
    content = messages[0].get("content")
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def usage_of(
    response: ModelResponse,
    budget: ContextBudget,
    messages: list[dict[str, Any]],
    tools: Sequence[dict[str, Any]] | None,
) -> UsageInfo:
    """The server's usage of `response`, or, when it sent none, an estimate: `messages`
    (the request's: the reply is not among them yet) and `tools` in, the reply out."""
    if response.usage is not None:
        return response.usage
    return partial_usage(budget, messages, tools, response)


def partial_usage(
    budget: ContextBudget,
    messages: list[dict[str, Any]],
    tools: Sequence[dict[str, Any]] | None,
    reply: ModelResponse | str,
) -> EstimatedUsage:
    """The estimated usage of a request with `messages` and `tools`, and of its reply (a
    response, or the text of one cut short)."""
    ratio = budget.chars_per_token
    if isinstance(reply, str):
        out = reply_tokens(reply, (), ratio) if reply else 0
    else:
        out = reply_tokens(reply.text, reply.tool_calls, ratio)
    return estimate_usage(budget.estimate(messages, tools), out)


@dataclass(slots=True)
class CutOffs:
    """Replies cut off at the output limit with no tool call, within one user message: the
    model is asked once to continue where it stopped (`cut` is True); a continuation cut
    off too ends the turn. `prefix` holds the cut text, which the final answer begins with."""

    asked: bool = False
    prefix: str = ""

    def cut(self, text: str) -> bool:
        """Record a cut-off reply; True when the model is to be asked to continue."""
        self.prefix += text
        if self.asked:
            return False
        self.asked = True
        return True

    def take(self, text: str) -> str:
        """A reply that was not cut off: `text` after the cut text it continues; the count
        starts afresh."""
        joined = self.prefix + text
        self.asked, self.prefix = False, ""
        return joined
