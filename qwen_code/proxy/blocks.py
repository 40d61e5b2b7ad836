"""Anthropic message content blocks as OpenAI chat messages (the request side of §9.1)."""

from __future__ import annotations

import json
from typing import Any

DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})
"""Blocks left out of the request: Coder models have no thinking to replay."""


class BadRequest(ValueError):
    """An Anthropic request that cannot be translated (message for the client)."""


def user_messages(content: str | list[Any], where: str) -> list[dict[str, Any]]:
    """One user message's translation: a `role: "tool"` message per `tool_result` block, in
    order, then one user message with the remaining text and image parts (if any).

    OpenAI tool messages carry text only, so images inside tool results move to that user
    message, after a line naming the tool call they came from.
    """
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tool_messages: list[dict[str, Any]] = []
    tool_images: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for number, block in enumerate(content):
        kind = _block_type(block, f"{where}.content[{number}]")
        if kind == "text":
            parts.append({"type": "text", "text": _text(block, f"{where}.content[{number}]")})
        elif kind == "image":
            parts.append(image_part(block, f"{where}.content[{number}]"))
        elif kind == "tool_result":
            message, images = tool_result(block, f"{where}.content[{number}]")
            tool_messages.append(message)
            tool_images.extend(images)
        elif kind not in DROPPED_BLOCKS:
            raise BadRequest(f"{where}.content[{number}]: unsupported block type {kind!r}.")
    parts = tool_images + parts
    if not parts:
        return tool_messages
    single = len(parts) == 1 and parts[0]["type"] == "text"
    return [*tool_messages, {"role": "user", "content": parts[0]["text"] if single else parts}]


def tool_result(block: dict[str, Any], where: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A `tool_result` block as a tool message, and the image parts it carried."""
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise BadRequest(f"{where}.tool_use_id: a non-empty string is required.")
    content = block.get("content")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for number, item in enumerate(content):
            kind = _block_type(item, f"{where}.content[{number}]")
            if kind == "text":
                texts.append(_text(item, f"{where}.content[{number}]"))
            elif kind == "image":
                images.append(image_part(item, f"{where}.content[{number}]"))
            else:
                texts.append(json.dumps(item, ensure_ascii=False))
    elif content is not None:
        raise BadRequest(f"{where}.content: expected a string or a list of blocks.")
    text = "\n".join(texts)
    if images:
        label = f"[Image returned by tool call {call_id}]"
        images = [{"type": "text", "text": label}, *images]
        text = text or "(The image is attached to the next user message.)"
    if block.get("is_error") is True:
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": call_id, "content": text}, images


def image_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    """An `image` block as an `image_url` part (base64 sources become `data:` URLs)."""
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        if isinstance(media_type, str) and isinstance(data, str):
            return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{data}"}}
    elif kind == "url" and isinstance(source.get("url"), str):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    raise BadRequest(f"{where}.source: expected a base64 or url image source.")


def assistant_message(content: str | list[Any], where: str) -> dict[str, Any]:
    """An assistant message: text blocks joined with newlines, `tool_use` blocks as
    `tool_calls` whose arguments are always a JSON object string (§10.9)."""
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for number, block in enumerate(content):
        here = f"{where}.content[{number}]"
        kind = _block_type(block, here)
        if kind == "text":
            texts.append(_text(block, here))
        elif kind == "tool_use":
            calls.append(_tool_call(block, here))
        elif kind not in DROPPED_BLOCKS:
            raise BadRequest(f"{here}: unsupported block type {kind!r} in an assistant message.")
    message: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts)}
    if calls:
        message["content"] = message["content"] or None
        message["tool_calls"] = calls
    return message


def _tool_call(block: dict[str, Any], where: str) -> dict[str, Any]:
    call_id, name, arguments = block.get("id"), block.get("name"), block.get("input")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise BadRequest(f"{where}: tool_use needs a string id and name.")
    arguments = arguments if isinstance(arguments, dict) else {}
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
    }


def _block_type(block: Any, where: str) -> str:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise BadRequest(f"{where}: expected a content block with a type.")
    return block["type"]


def _text(block: dict[str, Any], where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise BadRequest(f"{where}.text: expected a string.")
    return text
