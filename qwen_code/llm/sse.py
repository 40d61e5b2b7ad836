"""Server-sent events into chat-completion chunks, read as openai's `AsyncStream` reads them.

Pure code, no I/O. Lines end at CR, LF or CRLF and are UTF-8 (a bad byte raises
UnicodeDecodeError, a ValueError: the client reports a malformed stream). Per the SSE
spec, `data:` lines of one event are joined with "\\n", `event:`, `id:` and `retry:` are
kept, comments (`:`) are skipped, and a blank line ends the event; an event not ended by a
blank line when the body ends is dropped. Each event's data is one JSON chunk; `[DONE]`
ends the stream; a chunk with a (truthy) `error` key raises `StreamError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from qwen_code.llm.transport_errors import StreamError

_LINE_END = re.compile(b"[\r\n]")


@dataclass(frozen=True, slots=True)
class Event:
    event: str | None
    data: str


class LineSplitter:
    """Splits bytes as they arrive into lines (without their CR, LF or CRLF)."""

    __slots__ = ("_buffer", "_skip_lf")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._skip_lf = False
        """The last chunk ended in CR: an LF that starts the next one belongs to it."""

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        start = 0
        for match in _LINE_END.finditer(chunk):
            end = match.start()
            if self._skip_lf and end == start and chunk[end] == 10:
                self._skip_lf = False
                start = end + 1
                continue
            self._buffer += chunk[start:end]
            line = bytes(self._buffer)
            self._buffer.clear()
            self._skip_lf = chunk[end] == 13
            start = end + 1
            yield line
        if start < len(chunk):
            self._skip_lf = False
            self._buffer += chunk[start:]

    def finish(self) -> Iterator[bytes]:
        if self._buffer:
            line = bytes(self._buffer)
            self._buffer.clear()
            yield line


class EventDecoder:
    """Builds events from lines (https://html.spec.whatwg.org/#event-stream-interpretation)."""

    __slots__ = ("_data", "_event", "_last_id", "_retry")

    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []
        self._last_id: str | None = None
        self._retry: int | None = None

    def decode(self, line: str) -> Event | None:
        """The event a blank line ends; None for any other line."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry":
            self._retry = _int_or_none(value, self._retry)
        return None

    def _dispatch(self) -> Event | None:
        if not (self._event or self._data or self._last_id or self._retry is not None):
            return None
        event = Event(event=self._event or None, data="\n".join(self._data))
        self._event, self._data, self._retry = None, [], None  # the last id is kept (spec)
        return event


def _int_or_none(value: str, default: int | None) -> int | None:
    try:
        return int(value)
    except ValueError:
        return default


class EventReader:
    """Bytes in, events out."""

    __slots__ = ("_events", "_lines")

    def __init__(self) -> None:
        self._lines = LineSplitter()
        self._events = EventDecoder()

    def feed(self, data: bytes) -> list[Event]:
        return self._decode(self._lines.feed(data))

    def finish(self) -> list[Event]:
        return self._decode(self._lines.finish())

    def _decode(self, lines: Iterator[bytes]) -> list[Event]:
        decode = self._events.decode
        return [e for line in lines if (e := decode(line.decode("utf-8"))) is not None]


def is_done(event: Event) -> bool:
    return event.data.startswith("[DONE]")


def chunk_of(event: Event) -> Any:
    """The decoded JSON an event carries (a chunk dict, as sent).

    Raises `StreamError` for an error object and ValueError for data that is not JSON.
    `thread.*` events come as `{"data": ..., "event": ...}`, as openai gives them.
    """
    data = json.loads(event.data)
    if event.event and event.event.startswith("thread."):
        return {"data": data, "event": event.event}
    if isinstance(data, Mapping) and data.get("error"):
        error = data["error"]
        message = error.get("message") if isinstance(error, Mapping) else None
        if not message or not isinstance(message, str):
            message = "An error occurred during streaming"
        raise StreamError(message, body=error)
    return data
