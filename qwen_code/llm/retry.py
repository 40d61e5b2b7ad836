"""Classify model-server failures, and decide whether and how long to wait before retrying.

Every failure becomes a `ModelError` whose `kind` is one of the rows of `ERROR_CLASSES`.
openai is imported lazily (only `classify` needs its exception types, and it runs only
after a request was made).
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any

from qwen_code.errors import ModelError
from qwen_code.llm.types import ModelConfig

BACKOFF_BASE_S = 1.0
"""First retry waits up to this long (full jitter); tests set it near zero."""
BACKOFF_CAP_S = 30.0
"""No backoff step waits longer than this (Retry-After is capped by max_retry_wait_s)."""


@dataclass(frozen=True, slots=True)
class ErrorClass:
    kind: str
    retryable: bool
    hint: str


ERROR_CLASSES: dict[str, ErrorClass] = {
    c.kind: c
    for c in (
        ErrorClass("auth", False, "Set a valid API key for this server."),
        ErrorClass("rate_limit", True, "The server is rate limiting requests; wait and try again."),
        ErrorClass("server", True, "The model server failed; try again, or check its logs."),
        ErrorClass("network", True, "Check the base URL and that the server is running."),
        ErrorClass("timeout", True, "The server may be overloaded; raise the timeout or retry."),
        ErrorClass("not_found", False, "Set OPENAI_MODEL or pass --model."),
        ErrorClass(
            "context_overflow",
            False,
            "The conversation no longer fits the model's context; compress it or start a new one.",
        ),
        ErrorClass("bad_request", False, "The server rejected the request as invalid."),
    )
}

_CONTEXT_PATTERN = re.compile(
    r"context[ _-]?(length|window)|maximum context|too long|too many tokens|input length"
    r"|reduce the length|exceeds? the (model'?s? )?(maximum|max)|prompt is too large",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Failure:
    """A classified failure: the error to raise and, for 429s, the server's Retry-After."""

    error: ModelError
    status: int | None = None
    retry_after_s: float | None = None
    cause: BaseException | None = None

    @property
    def retryable(self) -> bool:
        return self.error.retryable


def make_error(kind: str, message: str, hint: str | None = None) -> ModelError:
    row = ERROR_CLASSES[kind]
    return ModelError(
        message, kind=kind, hint=row.hint if hint is None else hint, retryable=row.retryable
    )


def sentence(text: str) -> str:
    """`text` ending with a full stop (unless it already ends with punctuation)."""
    text = text.rstrip()
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def server_message(body: object, fallback: str = "") -> str:
    """The human-readable message in an error body (OpenAI, vLLM, DashScope, plain text)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            for key in ("message", "detail", "msg"):
                if isinstance(inner.get(key), str) and inner[key]:
                    return inner[key]
        elif isinstance(inner, str) and inner:
            return inner
        for key in ("message", "detail"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
    elif isinstance(body, str) and body.strip():
        text = body.strip()
        return text if len(text) <= 300 else text[:300] + "…"
    return fallback


def kind_for_status(status: int, message: str = "") -> str:
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limit"
    if status == 404:
        return "not_found"
    if status == 413 or (status in (400, 422) and _CONTEXT_PATTERN.search(message)):
        return "context_overflow"
    if status == 408:
        return "timeout"
    if status >= 500:
        return "server"
    return "bad_request"


def status_error(status: int, message: str, config: ModelConfig) -> ModelError:
    """The ModelError for an HTTP error status, with a message naming what to fix."""
    url = config.base_url
    kind = kind_for_status(status, message)
    detail = f": {message}" if message else ""
    if kind == "auth":
        source = f" from {config.api_key_source}" if config.api_key_source else ""
        what = "rejected the API key" if config.api_key else "requires an API key, and none was set"
        where = config.api_key_source or "OPENAI_API_KEY (or DASHSCOPE_API_KEY for DashScope)"
        return make_error(
            "auth",
            f"The server at {url} {what}{source if config.api_key else ''} ({status}){detail}",
            hint=f"Set a valid key in {where}.",
        )
    texts = {
        "rate_limit": f"Rate limited by {url} ({status}){detail}",
        "not_found": f"The server at {url} answered {status} Not Found{detail}",
        "context_overflow": f"The request is too long for model {config.model!r}{detail}",
        "timeout": f"The server at {url} timed out ({status}){detail}",
        "server": f"The server at {url} {'is overloaded' if status == 529 else 'failed'} "
        f"({status}){detail}",
        "bad_request": f"The server at {url} rejected the request ({status}){detail}",
    }
    return make_error(kind, texts[kind])


def classify(exc: BaseException, config: ModelConfig) -> Failure:
    """Turn an exception from the openai client (or a malformed stream) into a Failure."""
    return replace(_classify(exc, config), cause=exc)


def _classify(exc: BaseException, config: ModelConfig) -> Failure:
    if isinstance(exc, ModelError):
        return Failure(exc)
    url = config.base_url
    import openai

    if isinstance(exc, openai.APIStatusError):
        message = server_message(exc.body, "")
        if not message:
            message = server_message(_response_text(exc.response), "")
        error = status_error(exc.status_code, message, config)
        retry_after = retry_after_seconds(exc.response.headers) if error.retryable else None
        return Failure(error, exc.status_code, retry_after)
    if isinstance(exc, openai.APITimeoutError):
        return Failure(
            make_error(
                "timeout", f"The server at {url} did not respond within {config.timeout_s:g} s."
            )
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = _describe_cause(exc)
        return Failure(
            make_error(
                "network",
                f"Cannot connect to {url}{cause}. Is the server running?",
            )
        )
    if isinstance(exc, openai.APIError):
        # An error object sent inside the stream (no HTTP status).
        message = server_message(exc.body, exc.message)
        if _CONTEXT_PATTERN.search(message):
            return Failure(status_error(400, message, config))
        return Failure(make_error("server", f"The server at {url} reported an error: {message}"))
    if isinstance(exc, ValueError):
        return Failure(make_error("server", f"The server at {url} sent a malformed stream: {exc}"))
    return Failure(make_error("network", f"Request to {url} failed: {type(exc).__name__}: {exc}"))


def interrupted(failure: Failure, config: ModelConfig) -> ModelError:
    """The error for a stream that failed after output was already passed on (no retry)."""
    return make_error(
        "network",
        f"The stream from {config.base_url} was interrupted after the answer had started: "
        f"{failure.error.message}",
        hint="The partial answer was discarded; send the request again.",
    )


def _response_text(response: Any) -> str:
    try:
        return response.text
    except Exception:  # a streamed response whose body was not read
        return ""


def _describe_cause(exc: BaseException) -> str:
    seen: set[int] = set()
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        text = str(cause).strip()
        if text:
            return f" ({text})"
        cause = cause.__cause__ or cause.__context__
    return ""


def retry_after_seconds(headers: Any, now: float | None = None) -> float | None:
    """Seconds from `Retry-After` (seconds or an HTTP date) or `retry-after-ms`; None if absent."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(attempt: int, *, base: float | None = None, cap: float | None = None) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempt)).

    `attempt` counts retries already made (0 for the first retry).
    """
    base = BACKOFF_BASE_S if base is None else base
    cap = BACKOFF_CAP_S if cap is None else cap
    return random.uniform(0, min(cap, base * 2**attempt))


def retry_delay(failure: Failure, attempt: int, config: ModelConfig) -> float:
    """How long to wait before retry number `attempt + 1`, capped by max_retry_wait_s."""
    delay = failure.retry_after_s
    if delay is None:
        delay = backoff_delay(attempt)
    return max(0.0, min(delay, config.max_retry_wait_s))


def should_retry(failure: Failure, attempt: int, config: ModelConfig) -> bool:
    return failure.retryable and attempt < config.max_retries
