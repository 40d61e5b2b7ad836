"""Accumulate streamed chat-completion chunks into one `ModelResponse`.

Pure code, no I/O and no HTTP import. Chunks are the decoded JSON of each SSE `data:`
line (plain dicts). Tool calls are keyed by `index` and assembled from the accumulated
deltas at the end, which tolerates what real servers send: ids and names in any chunk,
argument fragments split anywhere, several parallel calls, repeated names, missing ids.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from qwen_code.llm.pricing import with_cache_details
from qwen_code.llm.types import ModelResponse, ToolCall, UsageInfo
from qwen_code.textsafe import REPLACEMENT, clean_text, is_high_surrogate


def synthesize_call_id() -> str:
    return f"call_{secrets.token_hex(12)}"


@dataclass(slots=True)
class PartialCall:
    """One tool call as its deltas arrive."""

    id: str = ""
    name: str = ""
    fragments: list[str] = field(default_factory=list)

    def add(self, delta: dict[str, Any]) -> None:
        call_id = delta.get("id")
        if call_id and not self.id:
            self.id = call_id
        function = delta.get("function") or {}
        name = function.get("name")
        if name:
            self.name = _merge_name(self.name, clean_text(name))
        arguments = function.get("arguments")
        if arguments:
            self.fragments.append(
                arguments if isinstance(arguments, str) else json.dumps(arguments)
            )

    @property
    def arguments(self) -> str:
        """The argument text so far; lone surrogates (`\\ud800` escapes) become U+FFFD, a pair
        split between two fragments is joined first."""
        return clean_text("".join(self.fragments))

    def to_tool_call(self) -> ToolCall:
        raw = self.arguments
        arguments, error = parse_arguments(raw, self.name)
        if not self.name and error is None:
            error = "The tool call has no function name."
        return ToolCall(
            id=self.id or synthesize_call_id(),
            name=self.name,
            arguments=arguments,
            raw_arguments=raw,
            parse_error=error,
        )


def _merge_name(current: str, new: str) -> str:
    """A later chunk may repeat the name, resend it whole, or (rarely) continue it."""
    if not current or new.startswith(current):
        return new
    if current.endswith(new):
        return current
    return current + new


def parse_arguments(raw: str, name: str = "") -> tuple[dict[str, Any], str | None]:
    """Parse a call's argument text: `({}, None)` when empty, `({}, message)` when invalid."""
    if not raw.strip():
        return {}, None
    tool = f" for tool {name!r}" if name else ""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        shown = raw if len(raw) <= 200 else raw[:200] + "…"
        return {}, (
            f"The arguments{tool} are not valid JSON ({exc.msg} at line {exc.lineno} column "
            f"{exc.colno}): {shown}. Send the arguments as one JSON object with double-quoted "
            "keys and strings."
        )
    if not isinstance(value, dict):
        return {}, (
            f"The arguments{tool} must be a JSON object, got a JSON {type(value).__name__}: "
            f"{raw[:200]}"
        )
    return value, None


def read_usage(usage: dict[str, Any]) -> UsageInfo:
    """`usage` of a chunk → UsageInfo; cached tokens from `prompt_tokens_details` or top level."""
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if cached is None:
        cached = usage.get("cached_tokens")
    info = UsageInfo(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int(cached or 0),
    )
    return with_cache_details(info, details)  # DashScope explicit cache: creation tokens


class StreamAccumulator:
    """Feed chunks with `add()`; read the assembled response with `response()`."""

    __slots__ = ("_calls", "_held", "_index_slots", "_text", "chunks", "finish_reason", "usage")

    def __init__(self) -> None:
        self._text: list[str] = []
        self._held = ""
        """A high surrogate that ended the last chunk: its pair may start the next one."""
        self._calls: list[PartialCall] = []
        self._index_slots: dict[int, int] = {}
        self.finish_reason: str | None = None
        self.usage: UsageInfo | None = None
        self.chunks = 0

    def add(self, chunk: dict[str, Any]) -> str:
        """Take one chunk; return the text it adds ("" when none)."""
        self.chunks += 1
        usage = chunk.get("usage")
        if usage:
            self.usage = read_usage(usage)
        choices = chunk.get("choices")
        if not choices:
            return ""
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        delta = choice.get("delta") or choice.get("message")
        if not delta:
            return ""
        tool_calls = delta.get("tool_calls")
        if tool_calls:
            for call_delta in tool_calls:
                self._call_for(call_delta).add(call_delta)
        content = delta.get("content")
        if content and isinstance(content, str):
            content = self._clean(content)
            if content:
                self._text.append(content)
            return content
        return ""

    def _clean(self, content: str) -> str:
        """Text safe to show, send back and save: lone surrogates become U+FFFD as the
        text arrives. A trailing high surrogate is held until the next chunk (or `flush`)."""
        if self._held:
            content, self._held = self._held + content, ""
        if content.isascii():
            return content
        if is_high_surrogate(content[-1]):
            content, self._held = content[:-1], content[-1]
        return clean_text(content)

    def flush(self) -> str:
        """The stream ended: the text still held back (a lone high surrogate, as U+FFFD)."""
        if not self._held:
            return ""
        self._held = ""
        self._text.append(REPLACEMENT)
        return REPLACEMENT

    def _call_for(self, delta: dict[str, Any]) -> PartialCall:
        index = delta.get("index")
        call_id = delta.get("id")
        if index is None:
            # No index: a new id starts a new call, anything else continues the last one.
            if self._calls and (not call_id or call_id == self._calls[-1].id):
                return self._calls[-1]
            self._calls.append(PartialCall())
            return self._calls[-1]
        slot = self._index_slots.get(index)
        if slot is not None:
            current = self._calls[slot]
            reused = call_id and current.id and call_id != current.id and _is_complete(current)
            if not reused:
                return current
        self._index_slots[index] = len(self._calls)
        self._calls.append(PartialCall())
        return self._calls[-1]

    @property
    def text(self) -> str:
        return "".join(self._text) + (REPLACEMENT if self._held else "")

    @property
    def has_content(self) -> bool:
        return bool(self._text or self._held or self._calls)

    @property
    def partial_calls(self) -> list[PartialCall]:
        """The calls seen so far (entries with neither a name nor arguments left out)."""
        return [c for c in self._calls if c.name or c.arguments.strip()]

    @property
    def has_calls(self) -> bool:
        return bool(self.partial_calls)

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(c.to_tool_call() for c in self.partial_calls)

    def response(self) -> ModelResponse:
        return ModelResponse(
            text=self.text,
            tool_calls=self.tool_calls(),
            finish_reason=self.finish_reason,
            usage=self.usage,
        )


def _is_complete(call: PartialCall) -> bool:
    """True when the call's arguments already form a full JSON value (an index was reused)."""
    raw = call.arguments
    if not raw.strip():
        return bool(call.name)
    try:
        json.loads(raw)
    except json.JSONDecodeError:
        return False
    return True
