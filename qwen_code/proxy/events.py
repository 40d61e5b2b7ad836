"""The client's stream items as Anthropic Messages stream events (§8, §9.2, §10.11).

`AnthropicStream` returns event dicts; `sse` frames one for the wire. The stream keeps
Anthropic's hygiene whatever it is fed: `message_start` first, one open content block at a
time, block indices 0, 1, 2, ... in order, and `message_delta` then `message_stop` last,
also after an error.
"""

from __future__ import annotations

import json
from typing import Any

from qwen_code.llm.types import ModelResponse, RetryNotice, StreamItem, TextChunk
from qwen_code.proxy.failures import error_body
from qwen_code.proxy.translate import stop_reason, usage_fields


def sse(event: dict[str, Any]) -> bytes:
    """One server-sent event: `event: <type>`, `data: <json>`, a blank line."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


class AnthropicStream:
    """Turns the client's stream items into Anthropic stream events (dicts), keeping the
    stream hygiene of §10: message_start first, one open block at a time, contiguous indices,
    always message_delta + message_stop at the end (also after an error)."""

    def __init__(self, *, model: str, message_id: str, input_tokens: int = 0) -> None:
        self.model = model
        self.message_id = message_id
        self.input_tokens = input_tokens
        self._started = False
        self._finished = False
        self._next_index = 0
        self._open: int | None = None
        """The index of the open text block, if one is open."""
        self._text = ""
        """The text streamed so far."""

    @property
    def finished(self) -> bool:
        """True once message_stop was emitted: later items produce no events."""
        return self._finished

    def start(self) -> list[dict[str, Any]]:
        """[message_start] (nothing when already started)."""
        if self._started:
            return []
        self._started = True
        usage = usage_fields(None, self.input_tokens)
        message = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        return [{"type": "message_start", "message": message}]

    def ping(self) -> dict[str, Any]:
        """A keep-alive event for long waits (prefill of a long prompt)."""
        return {"type": "ping"}

    def feed(self, item: StreamItem) -> list[dict[str, Any]]:
        """The events for one item of `ChatClient.stream_chat` (message_start first if
        `start` was not called yet)."""
        if self._finished:
            return []
        events = self.start()
        if isinstance(item, TextChunk):
            events += self._text_delta(item.text)
        elif isinstance(item, RetryNotice):
            if item.restart and self._text:
                message = f"The backend failed after the reply had started: {item.message}"
                events += self.fail(error_body("overloaded_error", message))
        elif isinstance(item, ModelResponse):
            events += self._finish(item)
        return events

    def fail(self, status_body: dict[str, Any]) -> list[dict[str, Any]]:
        """Close the open block, an `error` event with `status_body` (an `error_body`),
        then message_delta and message_stop; the stream is finished."""
        if self._finished:
            return []
        events = [*self.start(), *self._close(), {**status_body, "type": "error"}]
        return events + self._end("end_turn", usage_fields(None, self.input_tokens))

    def _text_delta(self, text: str) -> list[dict[str, Any]]:
        if not text:
            return []
        events = []
        if self._open is None:
            self._open = self._next_index
            self._next_index += 1
            block = {"type": "text", "text": ""}
            events.append(
                {"type": "content_block_start", "index": self._open, "content_block": block}
            )
        self._text += text
        delta = {"type": "text_delta", "text": text}
        events.append({"type": "content_block_delta", "index": self._open, "delta": delta})
        return events

    def _finish(self, response: ModelResponse) -> list[dict[str, Any]]:
        """The rest of the reply's text (if the final text goes on past what was streamed),
        one tool_use block per call, then the end of the message."""
        events = []
        if response.text.startswith(self._text):
            events += self._text_delta(response.text[len(self._text) :])
        events += self._close()
        for call in response.tool_calls:
            index = self._next_index
            self._next_index += 1
            call_id = call.id or f"toolu_{self.message_id}_{index}"
            block = {"type": "tool_use", "id": call_id, "name": call.name, "input": {}}
            arguments = json.dumps(call.arguments, ensure_ascii=False)
            delta = {"type": "input_json_delta", "partial_json": arguments}
            events += [
                {"type": "content_block_start", "index": index, "content_block": block},
                {"type": "content_block_delta", "index": index, "delta": delta},
                {"type": "content_block_stop", "index": index},
            ]
        usage = usage_fields(response.usage, self.input_tokens)
        return events + self._end(stop_reason(response), usage)

    def _close(self) -> list[dict[str, Any]]:
        if self._open is None:
            return []
        index, self._open = self._open, None
        return [{"type": "content_block_stop", "index": index}]

    def _end(self, reason: str, usage: dict[str, int]) -> list[dict[str, Any]]:
        self._finished = True
        delta = {"stop_reason": reason, "stop_sequence": None}
        return [
            {"type": "message_delta", "delta": delta, "usage": usage},
            {"type": "message_stop"},
        ]
