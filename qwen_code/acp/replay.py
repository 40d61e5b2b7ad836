"""A saved conversation as `session/update` notifications, for `session/load`: the
editor rebuilds its thread from them before the load request is answered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from acp import (
    start_tool_call,
    text_block,
    tool_content,
    update_tool_call,
    update_user_message_text,
)

from qwen_code.acp.updates import RESULT_CHARS, message, tool_kind, tool_locations, tool_title

SUMMARY_KEYS = ("file_path", "command", "pattern", "path", "query", "url", "description")
"""The argument that best names what a call did, for its title (first one present)."""


def history_updates(messages: list[dict[str, Any]], cwd: Path) -> list[Any]:
    """User and assistant text, and each tool call with its result, in order."""
    updates: list[Any] = []
    for entry in messages:
        role = entry.get("role")
        text = content_text(entry.get("content"))
        if role == "user" and text:
            updates.append(update_user_message_text(text))
        elif role == "assistant":
            if text:
                updates.append(message(text))
            updates.extend(_call_start(call, cwd) for call in entry.get("tool_calls") or ())
        elif role == "tool" and isinstance(entry.get("tool_call_id"), str):
            shown = text if len(text) <= RESULT_CHARS else text[:RESULT_CHARS] + "\n…"
            updates.append(
                update_tool_call(
                    entry["tool_call_id"],
                    status="completed",
                    content=[tool_content(text_block(shown))] if shown else None,
                )
            )
    return updates


def content_text(content: Any) -> str:
    """A message's text: the string, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return "\n".join(p for p in parts if isinstance(p, str) and p)
    return ""


def _call_start(call: dict[str, Any], cwd: Path) -> Any:
    function = call.get("function") or {}
    name = str(function.get("name") or "tool")
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except ValueError:
        arguments = {}
    if not isinstance(arguments, dict):
        arguments = {}
    summary = next((str(arguments[k]) for k in SUMMARY_KEYS if arguments.get(k)), "")
    return start_tool_call(
        str(call.get("id") or ""),
        tool_title(name, summary[:120]),
        kind=tool_kind(name, None),
        status="completed",
        locations=tool_locations(arguments, cwd) or None,
        raw_input=arguments,
    )
