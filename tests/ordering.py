"""The OpenAI chat-completions ordering rules real servers enforce (they answer 400)."""

from __future__ import annotations

import json
from typing import Any


def order_problem(messages: list[dict[str, Any]]) -> str | None:
    """What a strict server would reject in `messages`, or None when it is valid."""
    open_ids: list[str] = []
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            if message.get("tool_call_id") not in open_ids:
                return f"message {index}: a tool message without a matching tool call"
            open_ids.remove(message["tool_call_id"])
            continue
        if open_ids:
            return f"message {index}: tool calls {open_ids} were not answered before it"
        if role == "assistant":
            for call in message.get("tool_calls") or ():
                try:
                    arguments = json.loads(call["function"]["arguments"])
                except (KeyError, TypeError, ValueError):
                    return f"message {index}: tool-call arguments are not JSON"
                if not isinstance(arguments, dict):
                    return f"message {index}: tool-call arguments are not a JSON object"
                open_ids.append(call["id"])
        elif role not in ("system", "user"):
            return f"message {index}: unknown role {role!r}"
    if open_ids:
        return f"the last tool calls {open_ids} were not answered"
    return None
