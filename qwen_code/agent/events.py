"""Typed events the agent loop yields; every front end consumes the same stream.

Each event is a small frozen dataclass with a literal `type`, so consumers can
`match` on the class and serializers can use `type` as the tag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from qwen_code.llm.types import ToolCall, UsageInfo
from qwen_code.tools.events import SideUsage, TodosUpdated, ToolNotice

_EV = {"frozen": True, "slots": True, "kw_only": True}

# defined below the agent, re-exported
__all__ = ["SideUsage", "TodosUpdated", "ToolCall", "ToolNotice", "UsageInfo"]


@dataclass(**_EV)
class TextDelta:
    """A piece of assistant text, as it streams."""

    text: str
    type: Literal["text_delta"] = "text_delta"


@dataclass(**_EV)
class AssistantMessage:
    """A complete model response: its text and tool calls, emitted once streaming ends."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    usage: UsageInfo | None = None
    type: Literal["assistant_message"] = "assistant_message"


@dataclass(**_EV)
class ToolCallStarted:
    """A tool call about to run (after approval)."""

    call: ToolCall
    summary: str = ""
    """One line naming the tool's key argument, for display."""
    type: Literal["tool_call_started"] = "tool_call_started"


@dataclass(**_EV)
class ToolResult:
    """What a tool call produced; `output` is exactly what the model sees."""

    call: ToolCall
    output: str
    is_error: bool = False
    display: str | None = None
    """A richer rendering for humans (e.g. a unified diff), when there is one."""
    data: dict[str, Any] = field(default_factory=dict)
    duration_ms: int = 0
    media: tuple[dict[str, Any], ...] = ()
    """Image parts the tool returned (`ToolOutput.media`), shown to the model after the
    results."""
    type: Literal["tool_result"] = "tool_result"


@dataclass(**_EV)
class ApprovalRequested:
    """A tool call needed approval; `decision` says how it was settled."""

    call: ToolCall
    reason: str
    decision: Literal["allowed", "denied"]
    message: str = ""
    """The denial message the model sees, or the user's note."""
    type: Literal["approval_requested"] = "approval_requested"


@dataclass(**_EV)
class Usage:
    """Usage of one model request plus the running total for the session."""

    request: UsageInfo
    total: UsageInfo
    type: Literal["usage"] = "usage"


@dataclass(**_EV)
class Error:
    """Something went wrong; `retrying` is true when the loop will try again by itself."""

    message: str
    kind: str = "error"
    retrying: bool = False
    type: Literal["error"] = "error"


CompressionMethod: TypeAlias = Literal["summary", "elided", "dropped"]
CompressionReason: TypeAlias = Literal["threshold", "overflow", "manual"]


@dataclass(**_EV)
class Compressed:
    """The history was compressed: a model summary, old tool output elided, or old turns
    dropped. Token counts are estimates of the next request's prompt."""

    before_tokens: int
    after_tokens: int
    method: CompressionMethod
    reason: CompressionReason = "threshold"
    """What set it off: the threshold, an overflow error from the server, or /compress."""
    usage: UsageInfo | None = None
    """What the summarizing request cost, when one was made."""
    type: Literal["compressed"] = "compressed"


TurnEndReason: TypeAlias = Literal["completed", "max_turns", "error", "cancelled"]


@dataclass(**_EV)
class TurnEnd:
    """The agent stopped working on the user's message."""

    reason: TurnEndReason
    final_text: str = ""
    num_turns: int = 0
    """Model requests made for this user message."""
    error: str | None = None
    type: Literal["turn_end"] = "turn_end"


@dataclass(**_EV)
class SubagentEvent:
    """Something a subagent did, passed on while the `agent` call that started it runs.
    `event` is the subagent's own event (None: it has just started; its `TurnEnd`: it
    stopped); a subagent's subagent nests one more `SubagentEvent` inside."""

    parent_call_id: str
    """The id of the `agent` tool call that started it."""
    agent: str
    description: str
    event: Event | None = None
    type: Literal["subagent_event"] = "subagent_event"

    def innermost(self) -> tuple[SubagentEvent, Event | None]:
        """The deepest `SubagentEvent` and its event (through nested subagents)."""
        node = self
        while isinstance(node.event, SubagentEvent):
            node = node.event
        return node, node.event


Event: TypeAlias = (
    TextDelta
    | AssistantMessage
    | ToolCallStarted
    | ToolResult
    | ApprovalRequested
    | TodosUpdated
    | ToolNotice
    | Usage
    | Error
    | Compressed
    | TurnEnd
    | SubagentEvent
    | SideUsage
)
