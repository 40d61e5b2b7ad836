"""Classify model-server failures, and decide whether and how long to wait before retrying.

Every failure becomes a `ModelError` whose `kind` is one of the rows of `ERROR_CLASSES`.
`classify` reads the exceptions of `transport_errors` (an error status with its body and
headers, an error object in the stream, a connection that failed or timed out); it needs
no HTTP library.
"""

from __future__ import annotations

import ipaddress
import random
import re
import socket
import time
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from qwen_code.errors import ModelError
from qwen_code.llm.transport_errors import (
    ConnectionFailed,
    RequestTimeout,
    StatusError,
    StreamError,
)
from qwen_code.llm.types import ModelConfig

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
        ErrorClass(
            "quota",
            False,
            "The account's quota or balance is used up: check the plan and billing in the "
            "provider's console, or switch to another model or provider.",
        ),
        ErrorClass("overloaded", True, "The server is overloaded; wait a minute and try again."),
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
        ErrorClass(
            "output_limit",
            False,
            "The server kept streaming past the output limit (it ignores max_tokens, or the "
            "model is repeating itself). Ask for the work in smaller steps, or set "
            "model.generationConfig.samplingParams.max_tokens.",
        ),
    )
}

_CONTEXT_PATTERN = re.compile(
    r"context[ _-]?(length|window)|maximum context|too long|too many tokens|input length"
    r"|reduce the length|exceeds? the (model'?s? )?(maximum|max)|prompt is too large",
    re.IGNORECASE,
)


_QUOTA_CODES = frozenset(
    {
        "insufficient_quota",
        "arrearage",
        "allocationquota.freetieronly",
        "prepaidbilloverdue",
        "postpaidbilloverdue",
        "billing_hard_limit_reached",
    }
)
"""Error codes meaning the account cannot pay (OpenAI, DashScope); never retried."""
_QUOTA_PATTERN = re.compile(
    r"insufficient[_ ]quota|exceeded your current quota|free allocated quota exceeded"
    r"|free tier .*(exhausted|used up)|account is in good standing|arrearage|overdue"
    r"|insufficient (balance|credits?)|credit balance is too low",
    re.IGNORECASE,
)
"""Quota messages: DashScope's "Throttling.AllocationQuota" (a per-minute token limit,
"Allocated quota exceeded") deliberately does not match; it is a rate limit."""


@dataclass(frozen=True, slots=True)
class Failure:
    """A classified failure: the error to raise and, for 429s, the server's Retry-After."""

    error: ModelError
    status: int | None = None
    retry_after_s: float | None = None
    cause: BaseException | None = None
    max_retries: int | None = None
    """At most this many retries for this failure (fewer than the settings allow: a server
    that refused the connection); None: the settings' `max_retries`."""
    max_delay_s: float | None = None
    """No wait before its retry longer than this (a quick second try)."""

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


def kind_for_status(status: int, message: str = "", code: str = "") -> str:
    """The error kind for an HTTP status, refined by the body's message and error code."""
    if status in (400, 402, 403, 429) and _quota(code, message):
        return "quota"
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limit"
    if status in (503, 529):
        return "overloaded"
    if status == 404:
        return "not_found"
    if status == 413 or (status in (400, 422) and _CONTEXT_PATTERN.search(message)):
        return "context_overflow"
    if status == 408:
        return "timeout"
    if status >= 500:
        return "server"
    return "bad_request"


def status_error(status: int, message: str, config: ModelConfig, code: str = "") -> ModelError:
    """The ModelError for an HTTP error status, with a message naming what to fix."""
    url = config.base_url
    kind = kind_for_status(status, message, code)
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
        "quota": f"The account at {url} has no quota left ({status}){detail}",
        "overloaded": f"The server at {url} is overloaded ({status}){detail}",
        "not_found": f"The server at {url} answered {status} Not Found{detail}",
        "context_overflow": f"The request is too long for model {config.model!r}{detail}",
        "timeout": f"The server at {url} timed out ({status}){detail}",
        "server": f"The server at {url} failed ({status}){detail}",
        "bad_request": f"The server at {url} rejected the request ({status}){detail}",
    }
    return make_error(kind, texts[kind])


def classify(exc: BaseException, config: ModelConfig) -> Failure:
    """Turn an exception from the HTTP transport (or a malformed stream) into a Failure."""
    return replace(_classify(exc, config), cause=exc)


def _classify(exc: BaseException, config: ModelConfig) -> Failure:
    url = config.base_url
    if isinstance(exc, ModelError):
        return Failure(exc)
    if isinstance(exc, StatusError):
        return _status_failure(exc, config)
    if isinstance(exc, RequestTimeout):
        message = f"The server at {url} did not respond within {config.timeout_s:g} s."
        return Failure(make_error("timeout", message))
    if isinstance(exc, ConnectionFailed):
        unreachable = _unreachable(exc, url)
        if unreachable is not None:
            return unreachable
        cause = _describe_cause(exc)
        if _never_connected(exc):
            return Failure(
                make_error("network", f"Cannot connect to {url}{cause}. Is the server running?")
            )
        return Failure(make_error("network", f"The connection to {url} was lost{cause}."))
    if isinstance(exc, StreamError):
        return _stream_failure(exc, config)
    if isinstance(exc, ValueError):
        return Failure(make_error("server", f"The server at {url} sent a malformed stream: {exc}"))
    return Failure(make_error("network", f"Request to {url} failed: {type(exc).__name__}: {exc}"))


def _status_failure(exc: StatusError, config: ModelConfig) -> Failure:
    """An error status: the body's message and error code decide the kind."""
    message = server_message(exc.body, "") or server_message(exc.text, "")
    error = status_error(exc.status, message, config, error_code(exc.body))
    retry_after = retry_after_seconds(exc.headers) if error.retryable else None
    return Failure(error, exc.status, retry_after)


def _stream_failure(exc: StreamError, config: ModelConfig) -> Failure:
    """An error object sent inside the stream (no HTTP status)."""
    message = server_message(exc.body, exc.message)
    code = error_code(exc.body)
    if _CONTEXT_PATTERN.search(message):
        return Failure(status_error(400, message, config))
    if _quota(code, message):
        return Failure(status_error(429, message, config, code))
    if "overloaded" in f"{code} {message}".lower():
        return Failure(status_error(529, message, config))
    message = f"The server at {config.base_url} reported an error: {message}"
    return Failure(make_error("server", message))


def error_code(body: object) -> str:
    """The `code` and `type` of an error body (the text ones, space-separated); "" if none."""
    inner = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        return ""
    values = (inner.get(key) for key in ("code", "type"))
    return " ".join(v for v in values if isinstance(v, str) and v)


def _quota(code: str, message: str) -> bool:
    return any(c in _QUOTA_CODES for c in code.lower().split()) or bool(
        _QUOTA_PATTERN.search(message)
    )


def stalled(config: ModelConfig) -> Failure:
    """A stream that started and then went silent for `stall_timeout_s`."""
    return Failure(
        make_error(
            "timeout",
            f"The stream from {config.base_url} stalled: no data for {config.stall_timeout_s:g} s.",
            hint="The server may be overloaded; raise model.generationConfig."
            "streamStallTimeout if it is just slow.",
        )
    )


def output_exceeded(limit: int) -> Failure:
    """A reply that went on past its token limit: stopped, and never retried (another
    attempt would most likely stream just as long)."""
    return Failure(
        make_error(
            "output_limit", f"The model's reply exceeded {limit} tokens without finishing; stopped."
        )
    )


def gave_up(failure: Failure, retries: int, elapsed_s: float) -> ModelError:
    """The error to raise once retries are used up (count or total time); a quick failure
    (`Failure.max_retries`) says what it says, without counting its one retry."""
    error = failure.error
    if not error.retryable or retries == 0 or failure.max_retries is not None:
        return error
    note = (
        f" (gave up after {retries} {'retry' if retries == 1 else 'retries'} in {elapsed_s:.0f} s)"
    )
    return ModelError(error.message + note, kind=error.kind, hint=error.hint, retryable=True)


def _never_connected(exc: BaseException) -> bool:
    """True when the connection could not be made at all (refused, unknown host, connect
    timeout), False when an open connection broke (reset, closed mid-answer). By class
    name along the cause chain (httpx's exception, httpcore's below it, the OSError)."""
    seen: set[int] = set()
    cause: BaseException | None = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        name = type(cause).__name__
        if name in _CONNECT_ERRORS:
            return True
        if name in _BROKEN_ERRORS:
            return False
        cause = cause.__cause__ or cause.__context__
    return True


_CONNECT_ERRORS = frozenset({"ConnectError", "ConnectTimeout", "ConnectionRefusedError"})
_BROKEN_ERRORS = frozenset(
    {"ReadError", "RemoteProtocolError", "ConnectionResetError", "BrokenPipeError", "ReadTimeout"}
)


UNREACHABLE = "Cannot reach the model server"
REFUSED_RETRIES = 2
"""Retries after a refusal by a host on the network (a server restarting behind a load
balancer); a refusal on this machine means nothing listens: no retry."""
QUICK_RETRY_S = 0.5
"""The longest wait before the retry of a refused connection or a failed name lookup."""
_EAI_AGAIN = getattr(socket, "EAI_AGAIN", None)
"""getaddrinfo's "temporary failure in name resolution" (the resolver is unreachable)."""


def _unreachable(exc: BaseException, url: str) -> Failure | None:
    """A connection that can never succeed as configured, failed fast: a host name that
    does not resolve (no retry; one quick retry when the resolver itself failed: no
    network yet), a port on this machine where nothing listens (no retry), a remote
    port refused (`REFUSED_RETRIES` quick retries). None for other connect failures,
    which are retried as usual (a connect timeout, a reset)."""
    every, ends = _os_errors(exc)
    lookups = [e for e in every if isinstance(e, socket.gaierror)]
    if lookups:
        host = urlsplit(url).hostname or url
        message = (
            f"{UNREACHABLE}: the host {host} could not be resolved "
            "(check the base URL or your network)."
        )
        temporary = any(e.errno == _EAI_AGAIN for e in lookups)
        return _fast(message, retries=1 if temporary else 0)
    if ends and all(isinstance(e, ConnectionRefusedError) for e in ends):
        message = f"{UNREACHABLE}: {url} refused the connection (is the server running?)."
        return _fast(message, retries=0 if is_loopback(url) else REFUSED_RETRIES)
    return None


def _fast(message: str, *, retries: int) -> Failure:
    """A network failure retried at most `retries` times, each after a short wait."""
    error = ModelError(message, kind="network", hint="", retryable=retries > 0)
    return Failure(error, max_retries=retries, max_delay_s=QUICK_RETRY_S)


def _os_errors(exc: BaseException) -> tuple[list[OSError], list[OSError]]:
    """Every OSError along the cause chain, and those at its ends (each member of an
    exception group counts: a name with several addresses fails on each)."""
    every: list[OSError] = []
    ends: list[OSError] = []
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
            continue
        cause = current.__cause__ or current.__context__
        if cause is not None:
            pending.append(cause)
        if isinstance(current, OSError):
            every.append(current)
            if cause is None:
                ends.append(current)
    return every, ends


def is_loopback(url: str) -> bool:
    """True for a server on this machine (see `is_loopback_host`)."""
    return is_loopback_host(urlsplit(url).hostname or "")


def is_loopback_host(host: str) -> bool:
    """True for an address only this machine can reach: localhost (and *.localhost),
    127.0.0.0/8, ::1 (bracketed or IPv4-mapped too)."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


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


def backoff_delay(attempt: int, *, base: float, cap: float = BACKOFF_CAP_S) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempt)).

    `attempt` counts retries already made (0 for the first retry).
    """
    return random.uniform(0, min(cap, base * 2**attempt))


def retry_delay(failure: Failure, attempt: int, config: ModelConfig) -> float:
    """How long to wait before retry number `attempt + 1`: the server's Retry-After, else
    backoff from `config.backoff_base_s`; capped by max_retry_wait_s."""
    delay = failure.retry_after_s
    if delay is None:
        delay = backoff_delay(attempt, base=config.backoff_base_s)
    cap = config.max_retry_wait_s
    if failure.max_delay_s is not None:
        cap = min(cap, failure.max_delay_s)
    return max(0.0, min(delay, cap))


def retry_limit(failure: Failure, config: ModelConfig) -> int:
    """How many retries this failure gets: the settings' `max_retries`, or fewer."""
    if failure.max_retries is None:
        return config.max_retries
    return min(config.max_retries, failure.max_retries)


def should_retry(
    failure: Failure,
    attempt: int,
    config: ModelConfig,
    *,
    elapsed_s: float = 0.0,
    delay_s: float = 0.0,
    attempt_s: float = 0.0,
) -> bool:
    """Retry when the error is retryable, retries are left, and waiting `delay_s` plus an
    attempt expected to take `attempt_s` (one that failed before any data: as long as that
    one took) keeps the time since the first failure within `max_retry_time_s`."""
    if not failure.retryable or attempt >= retry_limit(failure, config):
        return False
    if failure.error.kind == "rate_limit" and not config.retry_rate_limits:
        return False
    return elapsed_s + delay_s + attempt_s <= config.max_retry_time_s
