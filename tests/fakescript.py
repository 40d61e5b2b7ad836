"""The script of the fake model server: calls, turns, errors, and how a turn becomes
OpenAI-shaped chunks (`Playback`). Stdlib only; `tests/fakeserver.py` re-exports it all.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from tests.fakefaults import XmlLayout, xml_tool_calls


@dataclass
class Call:
    """One tool call in a scripted turn. `arguments` may be a raw string (malformed JSON)."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def arguments_text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, ensure_ascii=False)

    def wire(self, call_id: str, arguments: str | None = None) -> dict[str, Any]:
        """The call as an OpenAI `tool_calls` entry."""
        args = self.arguments_text() if arguments is None else arguments
        fn = {"name": self.name, "arguments": args}
        return {"id": call_id, "type": "function", "function": fn}


@dataclass
class Turn:
    """One scripted assistant response."""

    text: str = ""
    tool_calls: list[Call] = field(default_factory=list)
    finish_reason: str | None = None
    """Defaults to "tool_calls" when there are calls, else "stop"."""
    usage: dict[str, Any] | None = None
    """Overrides prompt_tokens / completion_tokens / total_tokens / cached_tokens."""
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    """Pause between streamed events (default: the whole stream goes out in one write)."""
    chunk_words: int | None = None
    """Words per streamed text chunk (default: the server's)."""
    chunk_chars: int | None = None
    """Characters per streamed text chunk instead (cuts tags like `<tool_call>` apart)."""
    drop_after: int | None = None
    """Fault: send this many SSE events, then close the connection (no [DONE], no end)."""
    stall_after: int | None = None
    """Fault: after this many SSE events, send nothing for `stall_s` seconds, then go on."""
    stall_s: float = 0.0
    malformed_after: int | None = None
    """Fault: after this many SSE events, send `malformed_line`, then the rest."""
    malformed_line: str = "data: {not json"
    xml: XmlLayout | None = None
    """Fault: write the tool calls as Qwen XML in `content` (no parser on the server)."""
    cut_at: int | None = None
    """Fault: cut the last call's arguments (or the XML text) after this many characters
    and finish with "length", as when max_tokens runs out mid-call."""
    forever: bool = False
    """Fault: stream the text (or "la la la") over and over and never finish, as a server
    that ignores max_tokens with a model repeating itself; it ends only when the client
    goes away or the server stops. Tool calls and `finish_reason` are never sent."""
    forever_usage: bool = False
    """With `forever`: every chunk carries `usage`, completion_tokens counting up (vLLM's
    `continuous_usage_stats`)."""


@dataclass
class HTTPError:
    """Answer with this status; a dict body is sent as JSON, a str body as plain text."""

    status: int
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)


Reply: TypeAlias = Turn | HTTPError
ScriptEntry: TypeAlias = Reply | Callable[[dict[str, Any]], Reply]


def text(content: str, **kwargs: Any) -> Turn:
    """A plain text turn."""
    return Turn(text=content, **kwargs)


def call(name: str, arguments: dict[str, Any] | str | None = None, /, **kwargs: Any) -> Call:
    """`call("read_file", file_path="a.py")`, or `call("x", '{"bad": ')` for raw argument text."""
    return Call(name=name, arguments=arguments if arguments is not None else kwargs)


def tool_turn(*calls: Call, text: str = "", **kwargs: Any) -> Turn:
    """A turn that calls tools (several calls are parallel calls)."""
    return Turn(text=text, tool_calls=list(calls), **kwargs)


def error_body(message: str, status: int, type_: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": status}}


def split_text(content: str, words: int) -> list[str]:
    """Split text into pieces of `words` words each, keeping all whitespace."""
    tokens = re.findall(r"\s*\S+\s*", content) or ([content] if content else [])
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), max(1, words))]


def split_fragments(raw: str, parts: int = 3) -> list[str]:
    """Split argument text into at least `parts` pieces (fewer only if it is that short)."""
    size = max(1, -(-len(raw) // parts))
    return [raw[i : i + size] for i in range(0, len(raw), size)]


class Playback:
    """Turns a `Turn` into OpenAI-shaped chunk dicts (or one completion dict).

    Fault modes (dropped connections, stalls, malformed SSE, XML calls in content) hook in
    here or in `_Handler._stream`, which writes what `chunks()` yields.
    """

    def __init__(self, turn: Turn, request: dict[str, Any], chunk_words: int) -> None:
        self.turn, self.request = turn, request
        self.chunk_words = turn.chunk_words or chunk_words
        self.call_ids = [c.id or f"call_{secrets.token_hex(12)}" for c in turn.tool_calls]
        self.include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        self.head = {
            "id": f"chatcmpl-{secrets.token_hex(12)}",
            "created": int(time.time()),
            "model": request.get("model", "fake"),
            "system_fingerprint": None,
        }
        self.finish_reason = turn.finish_reason or ("tool_calls" if turn.tool_calls else "stop")
        self.content, self.calls = turn.text, list(turn.tool_calls)
        if turn.xml:
            calls = [(c.name, json.loads(c.arguments_text())) for c in turn.tool_calls]
            xml = xml_tool_calls(calls, turn.xml)
            self.content = f"{turn.text}\n\n{xml}" if turn.text else xml
            self.calls, self.finish_reason = [], turn.finish_reason or "stop"
        if turn.cut_at is not None:
            self.finish_reason = "length"
            if self.calls:
                last = self.calls[-1]
                self.calls[-1] = Call(last.name, last.arguments_text()[: turn.cut_at], last.id)
            else:
                self.content = self.content[: len(turn.text) + turn.cut_at]

    def pieces(self) -> list[str]:
        size = self.turn.chunk_chars
        if size:
            return [self.content[i : i + size] for i in range(0, len(self.content), size)]
        return split_text(self.content, self.chunk_words)

    def usage(self) -> dict[str, Any]:
        sent = len(json.dumps(self.request.get("messages", [])))
        sent += len(json.dumps(self.request.get("tools", [])))
        out = len(self.turn.text) + sum(len(c.arguments_text()) for c in self.turn.tool_calls)
        over = dict(self.turn.usage or {})
        prompt = over.pop("prompt_tokens", max(1, sent // 4))
        completion = over.pop("completion_tokens", max(1, out // 4))
        details = {"cached_tokens": over.pop("cached_tokens", 0)}
        total = {"total_tokens": prompt + completion, "prompt_tokens_details": details}
        return {"prompt_tokens": prompt, "completion_tokens": completion, **total, **over}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        chunk = {**self.head, "object": "chat.completion.chunk", "choices": [choice]}
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def chunks(self) -> Iterator[dict[str, Any]]:
        yield self._chunk({"role": "assistant", "content": ""})
        for piece in self.pieces():
            yield self._chunk({"content": piece})
        for i, (c, call_id) in enumerate(zip(self.calls, self.call_ids, strict=False)):
            yield self._chunk({"tool_calls": [{"index": i, **c.wire(call_id, "")}]})
            for frag in split_fragments(c.arguments_text()):
                yield self._chunk({"tool_calls": [{"index": i, "function": {"arguments": frag}}]})
        yield self._chunk({}, self.finish_reason)
        if self.include_usage:
            yield {**self._chunk({}), "choices": [], "usage": self.usage()}

    def endless(self) -> Iterator[dict[str, Any]]:
        """The chunks of a `forever` turn: the text's pieces again and again, no end."""
        yield self._chunk({"role": "assistant", "content": ""})
        pieces = self.pieces() or split_text("la la la", self.chunk_words)
        for count, piece in enumerate(itertools.cycle(pieces), start=1):
            chunk = self._chunk({"content": piece})
            if self.turn.forever_usage:
                chunk["usage"] = {"prompt_tokens": 1, "completion_tokens": count}
            yield chunk

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.calls:
            calls = zip(self.calls, self.call_ids, strict=False)
            message["tool_calls"] = [c.wire(call_id) for c, call_id in calls]
        choice = {"index": 0, "message": message, "finish_reason": self.finish_reason}
        usage = self.usage()
        return {**self.head, "object": "chat.completion", "choices": [choice], "usage": usage}
