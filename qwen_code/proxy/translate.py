"""Anthropic Messages <-> OpenAI chat: requests, non-streaming responses, errors, token counts.

Pure functions, no I/O. The request side follows claude-code-router's classic mapping with
the corrections of the providers reference (§9, §10): tool results become `role: "tool"`
messages in order before the user's other parts, replayed tool arguments are always JSON
object strings, `tool_choice: any` becomes `"required"`, thinking is dropped (Coder models
have none), and errors keep Anthropic's `{"type": "error", "error": {...}}` shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from qwen_code.llm.tokens import DEFAULT_CHARS_PER_TOKEN, schema_chars
from qwen_code.llm.tokens import estimate_tokens as estimate_message_tokens
from qwen_code.llm.types import ModelResponse, UsageInfo
from qwen_code.proxy.blocks import BadRequest, assistant_message, user_messages
from qwen_code.proxy.failures import error_body, error_for

__all__ = [
    "BadRequest",
    "ChatRequest",
    "count_tokens",
    "error_body",
    "error_for",
    "estimate_tokens",
    "stop_reason",
    "to_chat",
    "to_message",
    "usage_fields",
]

MAX_OUTPUT_TOKENS = 65_536
"""Qwen3-Coder's longest reply: a larger `max_tokens` is lowered to this (§10.6)."""

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """An Anthropic request translated to what `ChatClient` and its config take."""

    model: str
    """The Anthropic body's `model` as given (the server maps it to the upstream id)."""
    messages: list[dict[str, Any]]
    """OpenAI chat messages, the system message first."""
    tools: list[dict[str, Any]] | None
    max_tokens: int | None
    sampling: dict[str, Any]
    """The client's own sampling, OpenAI names: temperature, top_p, top_k, stop."""
    tool_choice: Any
    """OpenAI form: "auto", "required", "none", {"type": "function", ...} or None."""
    stream: bool
    thinking_dropped: bool
    """The request asked for extended thinking, which was dropped."""


def to_chat(body: dict[str, Any]) -> ChatRequest:
    """Translate an Anthropic `/v1/messages` body; raises BadRequest when it is invalid."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: a non-empty string is required.")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list):
        raise BadRequest("messages: a list of messages is required.")
    system = [body.get("system"), *(m.get("content") for m in _system_messages(raw_messages))]
    messages = _system_prompt(system)
    for number, message in enumerate(raw_messages):
        if not (isinstance(message, dict) and message.get("role") == "system"):
            messages.extend(_message(message, number))
    tools = _tools(body.get("tools"))
    thinking = body.get("thinking")
    return ChatRequest(
        model=model,
        messages=messages,
        tools=tools,
        max_tokens=_max_tokens(body.get("max_tokens")),
        sampling=_sampling(body),
        tool_choice=_tool_choice(body.get("tool_choice")),
        stream=body.get("stream") is True,
        thinking_dropped=isinstance(thinking, dict) and thinking.get("type") != "disabled",
    )


def _system_messages(messages: list[Any]) -> list[dict[str, Any]]:
    """Messages of role `system` among the others (Claude Code sends some): their text
    joins the system prompt, since strict backends take one system message, first."""
    return [m for m in messages if isinstance(m, dict) and m.get("role") == "system"]


def _system_prompt(parts: list[Any]) -> list[dict[str, Any]]:
    """One system message from the `system` field and any system-role messages."""
    texts = [m["content"] for part in parts for m in _system(part)]
    return [{"role": "system", "content": "\n\n".join(texts)}] if texts else []


def _system(system: Any) -> list[dict[str, Any]]:
    """The system prompt as one system message (none when empty). Text blocks are joined:
    the client adds its own DashScope cache markers, so their `cache_control` is dropped."""
    if system is None:
        return []
    if isinstance(system, str):
        text = system
    elif isinstance(system, list):
        texts = []
        for block in system:
            if not isinstance(block, dict) or not isinstance(block.get("text"), str):
                raise BadRequest("system: expected a string or a list of text blocks.")
            texts.append(block["text"])
        text = "\n\n".join(t for t in texts if t)
    else:
        raise BadRequest("system: expected a string or a list of text blocks.")
    return [{"role": "system", "content": text}] if text else []


def _message(message: Any, number: int) -> list[dict[str, Any]]:
    """The OpenAI messages for one Anthropic message."""
    where = f"messages[{number}]"
    if not isinstance(message, dict):
        raise BadRequest(f"{where}: expected an object.")
    role, content = message.get("role"), message.get("content")
    if not isinstance(content, str | list):
        raise BadRequest(f"{where}.content: expected a string or a list of blocks.")
    if role == "user":
        return user_messages(content, where)
    if role == "assistant":
        return [assistant_message(content, where)]
    raise BadRequest(f"{where}.role: expected 'user' or 'assistant', got {role!r}.")


def _tools(tools: Any) -> list[dict[str, Any]] | None:
    """Anthropic tools as OpenAI functions. Server tools (web search, ...) that carry no
    `input_schema` are skipped: the backend cannot run them."""
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise BadRequest("tools: expected a list.")
    functions = []
    for number, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise BadRequest(f"tools[{number}]: expected an object with a name.")
        schema = tool.get("input_schema")
        if schema is None and tool.get("type") not in (None, "custom"):
            continue
        if schema is None:
            schema = {"type": "object", "properties": {}}
        if not isinstance(schema, dict):
            raise BadRequest(f"tools[{number}].input_schema: expected an object.")
        function = {"name": tool["name"], "parameters": clean_schema(schema)}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        functions.append({"type": "function", "function": function})
    return functions or None


def clean_schema(schema: Any) -> Any:
    """A JSON schema without the `$schema` keys that strict backends reject."""
    if isinstance(schema, list):
        return [clean_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    cleaned: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$schema":
            continue
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            cleaned[key] = {name: clean_schema(sub) for name, sub in value.items()}
        else:
            cleaned[key] = clean_schema(value)
    return cleaned


def _tool_choice(choice: Any) -> Any:
    """Anthropic `tool_choice` in OpenAI form (`any` is `"required"` there)."""
    if choice is None:
        return None
    kind = choice.get("type") if isinstance(choice, dict) else None
    simple = {"auto": "auto", "any": "required", "none": "none"}
    if kind in simple:
        return simple[kind]
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise BadRequest("tool_choice: expected type auto, any, none, or tool with a name.")


def _max_tokens(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest("max_tokens: expected a positive integer.")
    return min(value, MAX_OUTPUT_TOKENS)


def _sampling(body: dict[str, Any]) -> dict[str, Any]:
    """temperature, top_p and top_k as given (they override the model's recommended
    sampling), stop_sequences as OpenAI's `stop`."""
    sampling: dict[str, Any] = {}
    for key, kind in (("temperature", float), ("top_p", float), ("top_k", int)):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise BadRequest(f"{key}: expected a number >= 0.")
        if kind is int and value != int(value):
            raise BadRequest(f"{key}: expected an integer.")
        sampling[key] = kind(value)
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(x, str) and x for x in stops):
            raise BadRequest("stop_sequences: expected a list of non-empty strings.")
        if stops:
            sampling["stop"] = list(stops)
    return sampling


def stop_reason(response: ModelResponse) -> str:
    """The Anthropic stop reason of a response (tool calls always mean `tool_use`)."""
    if response.tool_calls:
        return "tool_use"
    return _STOP_REASONS.get(response.finish_reason or "", "end_turn")


def usage_fields(usage: UsageInfo | None, input_tokens: int = 0) -> dict[str, int]:
    """Anthropic usage: cached prompt tokens count as cache reads, not as input tokens.
    `input_tokens` is the estimate used when the server reported no usage."""
    if usage is None:
        return {
            "input_tokens": input_tokens,
            "output_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        }
    return {
        "input_tokens": max(0, usage.prompt_tokens - usage.cached_tokens),
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": 0,
    }


def to_message(response: ModelResponse, *, model: str, message_id: str) -> dict[str, Any]:
    """The non-streaming Anthropic message for a client response."""
    content: list[dict[str, Any]] = []
    if response.text:
        content.append({"type": "text", "text": response.text})
    for call in response.tool_calls:
        content.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(response),
        "stop_sequence": None,
        "usage": usage_fields(response.usage),
    }


def count_tokens(body: dict[str, Any]) -> int:
    """An estimate of the input tokens of a `/v1/messages/count_tokens` body (system,
    messages and tools), from characters; raises BadRequest when the body is invalid."""
    return estimate_tokens(to_chat(body))


def estimate_tokens(request: ChatRequest) -> int:
    """An estimate of a translated request's input tokens, from characters."""
    tools = math.ceil(schema_chars(request.tools) / DEFAULT_CHARS_PER_TOKEN)
    return estimate_message_tokens(request.messages) + tools
