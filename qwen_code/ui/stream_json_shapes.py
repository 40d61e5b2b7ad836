"""The stream-json messages built from the agent's events, in the Claude Agent SDK's
shapes (`assistant`, `user` tool results, `system/compact_boundary`, usage), shared by the
headless printers, the stream-json input loop and the in-process API."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from qwen_code.agent.events import AssistantMessage, Compressed, UsageInfo
from qwen_code.llm.pricing import cache_creation_tokens
from qwen_code.llm.tokens import is_estimate

if TYPE_CHECKING:
    from qwen_code.ui.headless_outcome import RunInfo


def usage_json(
    usage: UsageInfo, cache_creation: int | None = None, *, estimated: bool | None = None
) -> dict[str, Any]:
    """Claude's usage object. `estimated: true` is added when the counts are qwen-code's
    estimate (the server reported none): `estimated`, else whether `usage` is one."""
    created = cache_creation_tokens(usage) if cache_creation is None else cache_creation
    shape: dict[str, Any] = {
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": created,
        "total_tokens": usage.total_tokens,
    }
    if is_estimate(usage) if estimated is None else estimated:
        shape["estimated"] = True
    return shape


CLAUDE_PROTOCOL_VERSION = "2.0.0"  # `init`'s claude_code_version: the Claude SDK wants >= 2.0

_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}


def init_message(info: RunInfo, *, server: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `system/init` message. `server`: what a local model server told about itself
    (`ServerInfo.to_json()`: kind, tools, context_window), an extra key the Claude SDK
    passes through; left out when nothing was learned (a hosted API is never asked)."""
    message: dict[str, Any] = {
        "type": "system",
        "subtype": "init",
        "uuid": str(uuid.uuid4()),
        "session_id": info.session_id,
        "cwd": info.cwd,
        "tools": info.tools,
        "mcp_servers": info.mcp_servers,
        "model": info.model,
        "permission_mode": info.permission_mode,
        "slash_commands": [],
        "qwen_code_version": info.version,
        "claude_code_version": CLAUDE_PROTOCOL_VERSION,
    }
    if server is not None:
        message["server"] = server
    return message


def assistant_message(event: AssistantMessage, info: RunInfo | None) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if event.text:
        content.append({"type": "text", "text": event.text})
    content.extend(
        {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
        for c in event.tool_calls
    )
    return {
        "type": "assistant",
        "uuid": str(uuid.uuid4()),
        "parent_tool_use_id": None,
        "message": {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": info.model if info else "",
            "content": content,
            "stop_reason": _STOP.get(event.finish_reason or "", event.finish_reason),
            "usage": usage_json(event.usage or UsageInfo()),
        },
    }


def compact_boundary(event: Compressed) -> dict[str, Any]:
    """Claude Agent SDK's `system/compact_boundary` message for a compression."""
    return {
        "type": "system",
        "subtype": "compact_boundary",
        "uuid": str(uuid.uuid4()),
        "compact_metadata": {
            "trigger": "manual" if event.reason == "manual" else "auto",
            "reason": event.reason,
            "method": event.method,
            "pre_tokens": event.before_tokens,
            "post_tokens": event.after_tokens,
        },
    }


def tool_result_message(block: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "user",
        "uuid": str(uuid.uuid4()),
        "parent_tool_use_id": None,
        "message": {"role": "user", "content": [block]},
    }
