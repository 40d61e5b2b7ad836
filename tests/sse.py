"""Builders for chat-completion chunks and server-sent-event bytes, shared by the client
tests, the scripted server (`tests/fakeserver.py`) and the tests of that server."""

from __future__ import annotations

import json
from typing import Any


def chunk(
    delta: dict[str, Any] | None = None,
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A `chat.completion.chunk` with one choice (none when `delta` is None)."""
    choices = (
        [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
    )
    out: dict[str, Any] = {"object": "chat.completion.chunk", "choices": choices}
    if usage is not None:
        out["usage"] = usage
    return out


def event(data: dict[str, Any] | str) -> bytes:
    """One SSE event: `data: <JSON, or the text as given>` and a blank line."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


def frame(data: bytes) -> bytes:
    """One chunk of a chunked transfer-encoded body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_FRAME = b"0\r\n\r\n"
"""The end of a chunked body."""


def sse_response(*chunks: dict[str, Any] | str, complete: bool = True) -> bytes:
    """A whole HTTP/1.1 response streaming `chunks` (then [DONE] and the end of the body,
    unless not `complete`), for a raw socket server to send."""
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    events = [*chunks, "[DONE]"] if complete else list(chunks)
    body = b"".join(frame(event(e)) for e in events)
    return head + body + (LAST_FRAME if complete else b"")


def parse_events(raw: bytes) -> list[Any]:
    """Parse an SSE body strictly: every event is one `data:` line followed by a blank line;
    JSON payloads decoded, "[DONE]" kept as text."""
    text = raw.decode()
    assert text.endswith("\n\n")
    out: list[Any] = []
    for one in text[:-2].split("\n\n"):
        assert one.startswith("data: "), one
        assert "\n" not in one
        payload = one[len("data: ") :]
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out
