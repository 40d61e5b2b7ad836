"""Token estimates from characters, and the figures a context-overflow error names.

Used by the client (the room a prompt leaves for the reply), by the agent's context
budget (`qwen_code.agent.context`), which calibrates the ratio from the server's counts,
and by the agent for the usage of a request the server reported none for
(`EstimatedUsage`: llama-cpp-python streams no usage; a reply cut short has none).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from qwen_code.llm.modalities import image_tokens, is_image_part
from qwen_code.llm.types import ToolCall, UsageInfo

Message = dict[str, Any]

DEFAULT_CHARS_PER_TOKEN = 3.5
"""Before the server has reported usage: code and English run about 3.5-4 chars/token."""
MESSAGE_OVERHEAD_TOKENS = 4
"""Chat-template tokens around each message (`<|im_start|>role\\n … <|im_end|>\\n`)."""
CALL_OVERHEAD_TOKENS = 8
"""Tokens around one tool call in an assistant message (the tool-call markup)."""


def content_chars(content: Any) -> int:
    """Characters of a message's `content`: a string, None, or a list of parts. Image
    parts count no characters: they count as tokens of their own (`content_image_tokens`)."""
    if content is None:
        return 0
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if is_image_part(part):
                continue
            if isinstance(part, dict):
                total += len(part.get("text") or "") if part.get("type") == "text" else 1000
            else:
                total += len(str(part))
        return total
    return len(str(content))


def content_image_tokens(content: Any) -> int:
    """Tokens of the image parts of a message's `content` (a fixed estimate per image,
    from its pixels: see `qwen_code.llm.modalities.image_tokens`)."""
    if not isinstance(content, list):
        return 0
    return sum(image_tokens(part) for part in content if is_image_part(part))


def message_chars(message: Message) -> int:
    """The characters of one message the model reads (content and tool calls)."""
    chars = content_chars(message.get("content"))
    for tool_call in message.get("tool_calls") or ():
        function = tool_call.get("function") or {}
        chars += len(function.get("name") or "") + len(function.get("arguments") or "")
    return chars


def message_tokens(message: Message, chars_per_token: float = DEFAULT_CHARS_PER_TOKEN) -> int:
    """Estimated tokens of one message, template overhead included."""
    calls = len(message.get("tool_calls") or ())
    overhead = MESSAGE_OVERHEAD_TOKENS + CALL_OVERHEAD_TOKENS * calls
    images = content_image_tokens(message.get("content"))
    return overhead + images + math.ceil(message_chars(message) / chars_per_token)


def estimate_tokens(
    messages: Sequence[Message], chars_per_token: float = DEFAULT_CHARS_PER_TOKEN
) -> int:
    """Estimated tokens of a list of messages."""
    return sum(message_tokens(m, chars_per_token) for m in messages)


def schema_chars(tools: Sequence[dict[str, Any]] | None) -> int:
    """Characters of the tool schemas as sent (the server renders them into the prompt)."""
    return len(json.dumps(list(tools), ensure_ascii=False)) if tools else 0


@dataclass(frozen=True, slots=True, kw_only=True)
class EstimatedUsage(UsageInfo):
    """Token counts qwen-code estimated from characters, because the server reported none
    (a server that streams no usage, a reply cut short). Front ends mark them ("~",
    `usage.estimated`)."""


def is_estimate(usage: UsageInfo | None) -> bool:
    return isinstance(usage, EstimatedUsage)


def add_usage(total: UsageInfo, usage: UsageInfo) -> UsageInfo:
    """`total + usage`, still marked as an estimate when either was one."""
    summed = total + usage
    if not (is_estimate(total) or is_estimate(usage)):
        return summed
    return EstimatedUsage(**{f.name: getattr(summed, f.name) for f in fields(UsageInfo)})


def reply_tokens(
    text: str, calls: Sequence[ToolCall] = (), chars_per_token: float = DEFAULT_CHARS_PER_TOKEN
) -> int:
    """Estimated tokens of a reply: its text and its tool calls (names, arguments, markup)."""
    chars = len(text) + sum(len(c.name) + len(_arguments(c)) for c in calls)
    return math.ceil(chars / chars_per_token) + CALL_OVERHEAD_TOKENS * len(calls)


def _arguments(call: ToolCall) -> str:
    return call.raw_arguments or json.dumps(call.arguments, ensure_ascii=False)


def estimate_usage(prompt_tokens: int, reply: int) -> EstimatedUsage:
    """The estimated usage of one request: `prompt_tokens` in, `reply` tokens out."""
    return EstimatedUsage(prompt_tokens=max(0, prompt_tokens), completion_tokens=max(0, reply))


_LIMIT_PATTERNS = (
    re.compile(r"maximum context length is (\d+)", re.IGNORECASE),
    re.compile(r"context (?:length|size|window)[^\d\n]{0,30}?\(?(\d{3,})", re.IGNORECASE),
    re.compile(r"input length should be \[\d+,\s*(\d+)\]", re.IGNORECASE),
)
_ACTUAL_PATTERNS = (
    re.compile(r"(\d+) (?:tokens )?in the messages", re.IGNORECASE),
    re.compile(r"(?:resulted in|request has|prompt has|input has) (\d+)", re.IGNORECASE),
    re.compile(r"(?:input|request|prompt) \((\d+) tokens\)", re.IGNORECASE),
    re.compile(r"requested (\d+) tokens", re.IGNORECASE),
)


def parse_overflow(message: str) -> tuple[int | None, int | None]:
    """(the window, the prompt's tokens) named in a context-overflow error, when it says.

    "This model's maximum context length is 8192 tokens. However, your messages resulted
    in 9000 tokens" → (8192, 9000).
    """

    def first(patterns: tuple[re.Pattern[str], ...]) -> int | None:
        for pattern in patterns:
            match = pattern.search(message)
            if match:
                return int(match.group(1))
        return None

    return first(_LIMIT_PATTERNS), first(_ACTUAL_PATTERNS)
