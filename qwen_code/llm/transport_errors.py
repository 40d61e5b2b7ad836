"""What the HTTP transport (`qwen_code.llm.http`) raises, for `retry.classify` to read.

Kept apart from the transport so that classifying needs no httpx import. A connection
error or timeout is raised `from` the httpx exception, whose chain names the cause
(refused, reset, ...): `retry` reads it there. A body that is not valid JSON (or UTF-8)
raises the `ValueError` json or the decoder raised.
"""

from __future__ import annotations

from collections.abc import Mapping


class TransportError(Exception):
    """A request that failed below the level of a reply."""


class StatusError(TransportError):
    """The server answered with an error status (anything but 2xx)."""

    def __init__(self, status: int, body: object, headers: Mapping[str, str], text: str) -> None:
        self.status = status
        self.body = body
        """The body as JSON when it parses (of an object: its `error` value, when it has
        that key), else its text (stripped)."""
        self.headers = headers
        self.text = text
        """The body's text as sent."""
        message = _message_of(body)
        super().__init__(f"Error code: {status}" + (f" - {message}" if message else ""))


class StreamError(TransportError):
    """An error object sent inside a stream (`data: {"error": {...}}`): no HTTP status."""

    def __init__(self, message: str, body: object) -> None:
        self.message = message
        self.body = body
        """The error object (the value of the `error` key)."""
        super().__init__(message)


class ConnectionFailed(TransportError):
    """No connection, or the connection broke (raised from the httpx exception)."""


class RequestTimeout(TransportError):
    """Connecting, or waiting for data, took longer than the timeout."""


def _message_of(body: object) -> str:
    error = body.get("error", body) if isinstance(body, Mapping) else None
    message = error.get("message") if isinstance(error, Mapping) else None
    return message if isinstance(message, str) else ""
