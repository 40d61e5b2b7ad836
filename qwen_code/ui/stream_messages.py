"""The user messages of `--input-format stream-json`, as the agent takes them.

A line `{"type": "user", "message": {"role": "user", "content": ...}}` holds a string or
content blocks (Claude's Messages API shapes): `text`, `image` (`source` base64 or a
URL), and `document` or `tool_result` blocks that carry text. Images go through the same
path as a pasted image (checked, downscaled, or described by `visionModel` when the model
takes no images).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field
from typing import Any

from qwen_code.tools.base import ToolContext


class MessageProblem(ValueError):
    """A user message qwen-code cannot take; the text says why."""


@dataclass(slots=True)
class UserTurn:
    """One user message to run: its text, the images it carried, its id."""

    text: str
    images: list[tuple[str, bytes | str]] = field(default_factory=list)
    """(label, image bytes, or a URL) per image block."""
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    raw: dict[str, Any] = field(default_factory=dict)


def parse_user_message(line: dict[str, Any]) -> UserTurn:
    """The turn a `{"type": "user"}` line asks for; `MessageProblem` when it holds none."""
    message = line.get("message")
    if not isinstance(message, dict):
        raise MessageProblem('a user message needs "message": {"role": "user", "content": ...}')
    content = message.get("content")
    texts: list[str] = []
    images: list[tuple[str, bytes | str]] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for block in content:
            _block(block, texts, images)
    else:
        raise MessageProblem("a user message's content must be a string or a list of blocks")
    text = "\n\n".join(t for t in texts if t.strip())
    if not text and not images:
        raise MessageProblem("the user message is empty")
    given = line.get("uuid")
    turn = UserTurn(text, images, raw=line)
    if isinstance(given, str) and given:
        turn.uuid = given
    return turn


def _block(block: Any, texts: list[str], images: list[tuple[str, bytes | str]]) -> None:
    if isinstance(block, str):
        texts.append(block)
        return
    if not isinstance(block, dict):
        raise MessageProblem("a content block must be an object")
    kind = block.get("type")
    if kind == "text":
        texts.append(str(block.get("text", "")))
    elif kind == "image":
        images.append((f"[image {len(images) + 1}]", _image_source(block.get("source"))))
    elif kind in ("document", "tool_result"):
        texts.append(_text_of(block))
    else:
        raise MessageProblem(f"content blocks of type {kind!r} are not supported")


def _image_source(source: Any) -> bytes | str:
    if not isinstance(source, dict):
        raise MessageProblem('an image block needs "source": {"type": "base64", ...}')
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return str(source["url"])
    if source.get("type") != "base64":
        raise MessageProblem("an image source must be base64 data or a URL")
    try:
        return base64.b64decode(str(source.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        raise MessageProblem("an image block's base64 data is not valid") from None


def _text_of(block: dict[str, Any]) -> str:
    """The text a document or tool_result block carries (text sources only)."""
    content = block.get("content", block.get("source"))
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("data") or content.get("text") or "")
    if isinstance(content, list):
        return "\n".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
    return ""


async def media_for(ctx: ToolContext, turn: UserTurn) -> tuple[str, tuple[dict[str, Any], ...]]:
    """The turn's text with its images' sections, and the image parts for the model."""
    from qwen_code.tools.media import MediaError, load_image
    from qwen_code.ui.attachments import ImageRef, images_for_model

    if not turn.images:
        return turn.text, ()
    refs: list[ImageRef] = []
    media: list[dict[str, Any]] = []
    for label, source in turn.images:
        if isinstance(source, str):  # a URL: passed on as it is
            media.append({"type": "image_url", "image_url": {"url": source}})
            continue
        try:
            refs.append(ImageRef(label, load_image(source, label)))
        except MediaError as exc:
            raise MessageProblem(str(exc)) from None
    shown = await images_for_model(ctx, refs)
    text = "\n\n".join(p for p in [turn.text, *shown.sections] if p)
    return text, (*shown.media, *media)
