"""Fault helpers for the scripted server (`tests/fakeserver.py`). Stdlib only.

- `xml_tool_calls`: tool calls written as Qwen3-Coder XML text, the way a server without
  the `qwen3_coder` parser leaves them in `content` (reference qwen3-coder.md §5).
- `history_problem`: the first reason a real OpenAI-compatible server would reject the
  request's message history (tool calls not answered, answers to no call, arguments that
  are not a JSON object string; vLLM answers 500 for the last one).
- `faulty`: wrap a script entry so the turn it plays carries fault fields.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeAlias

XmlLayout: TypeAlias = Literal["wrapped", "unwrapped", "oneline"]

CONTEXT_OVERFLOW_MESSAGE = (
    "This model's maximum context length is 32768 tokens. However, you requested 40000 "
    "tokens (39000 in the messages, 1000 in the completion). Please reduce the length of the "
    "messages or completion."
)
"""vLLM's wording (answered with HTTP 400, type BadRequestError)."""


def xml_value(value: Any) -> str:
    """A value as the chat template renders it: strings raw, objects and arrays as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def xml_tool_call(name: str, arguments: dict[str, Any], layout: XmlLayout) -> str:
    if layout == "oneline":
        params = "".join(f"<parameter={k}>{xml_value(v)}</parameter>" for k, v in arguments.items())
        return f"<tool_call><function={name}>{params}</function></tool_call>"
    params = "".join(
        f"<parameter={k}>\n{xml_value(v)}\n</parameter>\n" for k, v in arguments.items()
    )
    function = f"<function={name}>\n{params}</function>"
    return function if layout == "unwrapped" else f"<tool_call>\n{function}\n</tool_call>"


def xml_tool_calls(calls: Sequence[tuple[str, dict[str, Any]]], layout: XmlLayout) -> str:
    separator = "" if layout == "oneline" else "\n"
    return separator.join(xml_tool_call(name, args, layout) for name, args in calls)


def _arguments_problem(arguments: Any) -> bool:
    try:
        return not isinstance(json.loads(arguments), dict)
    except (TypeError, ValueError):
        return True


def history_problem(messages: Any) -> str | None:
    """Why a strict server would answer 400 (or vLLM 500) to this history; None if valid."""
    if not isinstance(messages, list):
        return "messages must be a list"
    pending: list[str] = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "tool":
            if message.get("tool_call_id") not in pending:
                return f"messages[{i}]: a tool message answers no pending tool call"
            pending.remove(message["tool_call_id"])
            continue
        if pending:
            return f"messages[{i}]: tool calls {pending} were not answered"
        for j, tool_call in enumerate(message.get("tool_calls") or [] if role else []):
            function = tool_call.get("function") or {}
            if _arguments_problem(function.get("arguments")):
                return f"messages[{i}].tool_calls[{j}]: arguments are not a JSON object string"
            if not tool_call.get("id"):
                return f"messages[{i}].tool_calls[{j}]: no id"
            pending.append(tool_call["id"])
    return f"tool calls {pending} were not answered" if pending else None


Entry: TypeAlias = Any  # a Turn, an HTTPError, or a callable returning one


def faulty(entry: Entry, **fault: Any) -> Callable[[dict[str, Any]], Any]:
    """A script entry that plays `entry` (a Turn, or a callable returning one) with the
    fault fields set, e.g. `faulty(turn, drop_after=3)`."""

    def play(body: dict[str, Any]) -> Any:
        turn = entry(body) if callable(entry) else entry
        return dataclasses.replace(turn, **fault)

    return play
