"""Errors in Anthropic's shape: `{"type": "error", "error": {"type", "message"}}` (§10.3).

`error_for` picks the HTTP status and error type an Anthropic client expects for a
`ModelError` (by its `kind`), so Claude Code retries what is worth retrying (429, 5xx,
529) and shows the rest. A context overflow reads "prompt is too long: ...", the message
Claude Code recognizes to compact the conversation.
"""

from __future__ import annotations

import math
from typing import Any

from qwen_code.errors import ModelError
from qwen_code.llm.tokens import parse_overflow
from qwen_code.proxy.blocks import BadRequest

_BY_KIND: dict[str, tuple[int, str]] = {
    "auth": (401, "authentication_error"),
    "quota": (402, "billing_error"),
    "not_found": (404, "not_found_error"),
    "rate_limit": (429, "rate_limit_error"),
    "context_overflow": (400, "invalid_request_error"),
    "bad_request": (400, "invalid_request_error"),
    "output_limit": (400, "invalid_request_error"),
    "overloaded": (529, "overloaded_error"),
    "server": (500, "api_error"),
    "network": (500, "api_error"),
    "timeout": (504, "timeout_error"),
}
"""ModelError kind -> (HTTP status, Anthropic error type). Unknown kinds are 500 api_error."""


def error_body(error_type: str, message: str) -> dict[str, Any]:
    """An Anthropic error body (also the data of an SSE `error` event)."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


def error_for(exc: Exception) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(HTTP status, error body, extra headers) for an exception of a request."""
    if isinstance(exc, BadRequest):
        return 400, error_body("invalid_request_error", str(exc)), {}
    if not isinstance(exc, ModelError):
        message = f"Internal proxy error: {type(exc).__name__}: {exc}"
        return 500, error_body("api_error", message), {}
    status, error_type = _BY_KIND.get(exc.kind, (500, "api_error"))
    message = " ".join(part for part in (exc.message, exc.hint) if part)
    if exc.kind == "context_overflow":
        message = _too_long(exc.message)
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after_s", None)
    if isinstance(retry_after, int | float) and retry_after > 0:
        headers["retry-after"] = str(math.ceil(retry_after))
    return status, error_body(error_type, message), headers


def _too_long(message: str) -> str:
    """Anthropic's overflow message, with the counts when the backend's message names them."""
    limit, actual = parse_overflow(message)
    if limit is not None and actual is not None:
        return f"prompt is too long: {actual} tokens > {limit} maximum"
    return f"prompt is too long: {message}"
