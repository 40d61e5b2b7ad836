"""The messages a query yields: the stream-json messages `qwen-code -o stream-json` prints,
as dataclasses named as in the Claude Agent SDK.

Every message is built by the command line's own printer (`StreamJsonPrinter`) and only
then converted here, so the two never drift apart; each keeps that dict as `raw`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias


@dataclass(slots=True)
class TextBlock:
    text: str


@dataclass(slots=True)
class ToolUseBlock:
    id: str
    name: str
    input: dict[str, Any]


@dataclass(slots=True)
class ToolResultBlock:
    tool_use_id: str
    content: str | list[dict[str, Any]] | None = None
    is_error: bool | None = None


ContentBlock: TypeAlias = TextBlock | ToolUseBlock | ToolResultBlock


@dataclass(slots=True)
class SystemMessage:
    """`init` (first in each turn: session id, model, tools, permission mode), `notice`
    (something the session wants known: a skipped context file, a tool's note),
    `api_retry` (the client retries a request), `compact_boundary` (history compressed).
    `data` is the whole message."""

    subtype: str
    data: dict[str, Any]


@dataclass(slots=True)
class AssistantMessage:
    """One model response: its text and the tool calls it asks for."""

    content: list[ContentBlock]
    model: str
    parent_tool_use_id: str | None = None
    """The `agent` call whose subagent wrote this; None for the main agent."""
    usage: dict[str, Any] | None = None
    message_id: str | None = None
    stop_reason: str | None = None
    session_id: str | None = None
    uuid: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(slots=True)
class UserMessage:
    """A tool's result, as the model receives it."""

    content: str | list[ContentBlock]
    uuid: str | None = None
    parent_tool_use_id: str | None = None
    session_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(slots=True)
class ResultMessage:
    """The last message of every turn. `subtype`: success, error_during_execution,
    error_interrupted, error_max_turns, error_max_budget_usd,
    error_max_structured_output_retries, …; `error` says what went wrong."""

    subtype: str
    duration_ms: int
    duration_api_ms: int
    is_error: bool
    num_turns: int
    session_id: str
    total_cost_usd: float | None = None
    usage: dict[str, Any] | None = None
    result: str | None = None
    structured_output: Any = None
    permission_denials: list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    error: str | None = None
    model: str | None = None
    uuid: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(slots=True)
class StreamEvent:
    """A piece of a reply as it streams (with `include_partial_messages`): `event` is an
    Anthropic-style stream event (`content_block_delta` with a `text_delta`, …)."""

    uuid: str
    session_id: str
    event: dict[str, Any]
    parent_tool_use_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


Message: TypeAlias = UserMessage | AssistantMessage | SystemMessage | ResultMessage | StreamEvent


def parse_message(data: dict[str, Any]) -> Message:
    """The dataclass for one stream-json message (an unknown type as a SystemMessage)."""
    kind = data.get("type")
    if kind == "assistant":
        return _assistant(data)
    if kind == "user":
        body = data.get("message") or {}
        return UserMessage(
            content=_blocks(body.get("content")),
            uuid=data.get("uuid"),
            parent_tool_use_id=data.get("parent_tool_use_id"),
            session_id=data.get("session_id"),
            raw=data,
        )
    if kind == "result":
        return _result(data)
    if kind == "stream_event":
        return StreamEvent(
            uuid=data.get("uuid", ""),
            session_id=data.get("session_id", ""),
            event=data.get("event") or {},
            parent_tool_use_id=data.get("parent_tool_use_id"),
            raw=data,
        )
    return SystemMessage(subtype=str(data.get("subtype") or kind), data=data)


def _assistant(data: dict[str, Any]) -> AssistantMessage:
    body = data.get("message") or {}
    content = _blocks(body.get("content"))
    return AssistantMessage(
        content=content if isinstance(content, list) else [TextBlock(content)],
        model=body.get("model", ""),
        parent_tool_use_id=data.get("parent_tool_use_id"),
        usage=body.get("usage"),
        message_id=body.get("id"),
        stop_reason=body.get("stop_reason"),
        session_id=data.get("session_id"),
        uuid=data.get("uuid"),
        raw=data,
    )


def _result(data: dict[str, Any]) -> ResultMessage:
    return ResultMessage(
        subtype=data["subtype"],
        duration_ms=data.get("duration_ms", 0),
        duration_api_ms=data.get("duration_api_ms", 0),
        is_error=bool(data.get("is_error")),
        num_turns=data.get("num_turns", 0),
        session_id=data.get("session_id", ""),
        total_cost_usd=data.get("total_cost_usd"),
        usage=data.get("usage"),
        result=data.get("result"),
        structured_output=data.get("structured_output"),
        permission_denials=data.get("permission_denials"),
        tool_calls=data.get("tool_calls"),
        error=data.get("error"),
        model=data.get("model"),
        uuid=data.get("uuid"),
        raw=data,
    )


def _blocks(content: Any) -> str | list[ContentBlock]:
    if isinstance(content, str):
        return content
    blocks: list[ContentBlock] = []
    for block in content or ():
        match block.get("type"):
            case "text":
                blocks.append(TextBlock(block.get("text", "")))
            case "tool_use":
                blocks.append(ToolUseBlock(block["id"], block["name"], block.get("input") or {}))
            case "tool_result":
                blocks.append(
                    ToolResultBlock(
                        block["tool_use_id"], block.get("content"), block.get("is_error")
                    )
                )
    return blocks
