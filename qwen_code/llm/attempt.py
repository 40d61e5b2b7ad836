"""One request's attempt: the assembled stream, XML held back from the text, stall detection,
the output limit, and the final response with tool calls rescued from text and arguments
repaired.

Kept apart from `client.py` so the per-chunk path stays small: per chunk the client does
one `StreamAccumulator.add`, one `ToolCallFilter.feed` (one `in` test when the text has
no `<`), two attribute writes for the stall watchdog, and one `OutputGuard.add` (a few
dict reads) with three comparisons.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qwen_code.llm import retry
from qwen_code.llm.qwen_toolcalls import ToolCallFilter, XmlCall, parse_tool_calls, tool_properties
from qwen_code.llm.repair import parse_tool_arguments
from qwen_code.llm.stream import StreamAccumulator, synthesize_call_id
from qwen_code.llm.types import ModelConfig, ModelResponse, RetryNotice, TextChunk, ToolCall

log = logging.getLogger(__name__)

LENGTH_RETRY_MAX_TOKENS = 65_536
"""max_tokens for the one retry after a reply was cut off in a tool call (Qwen Code: 64K)."""
STOP_FACTOR = 2
"""A reply is stopped once an estimate that never overstates puts it at this many times its
token limit (or the server's own count past the limit by a tenth)."""
CHARS_PER_TOKEN = 4
"""Characters per token for that estimate: more than replies average (3-4 for code and
English, fewer for Chinese), so the estimate stays low."""


class OutputGuard:
    """Stops a reply that goes on past its token limit: a server that ignores max_tokens (or
    got none) keeps a model that repeats itself streaming forever.

    The reply has surely passed the limit when the server's usage (if it streams usage)
    says so by a tenth, or when it is `STOP_FACTOR` times the limit long counted in chunks
    (each carries at least one token) or in characters at `CHARS_PER_TOKEN`.
    """

    __slots__ = ("chars", "limit", "max_chars", "max_chunks", "max_usage")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chars = 0
        self.max_chars = STOP_FACTOR * CHARS_PER_TOKEN * limit
        self.max_chunks = STOP_FACTOR * limit + 64
        self.max_usage = limit + limit // 10 + 64

    def add(self, chunk: dict[str, Any]) -> None:
        """Count the characters a chunk adds: text, reasoning, tool-call arguments."""
        choices = chunk.get("choices")
        delta = choices[0].get("delta") if choices and isinstance(choices[0], dict) else None
        if not isinstance(delta, dict):
            return
        for value in delta.values():
            if isinstance(value, str):
                self.chars += len(value)
        for call in delta.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            arguments = function.get("arguments") if isinstance(function, dict) else None
            if isinstance(arguments, str):
                self.chars += len(arguments)

    def exceeded(self, acc: StreamAccumulator) -> bool:
        if self.chars > self.max_chars or acc.chunks > self.max_chunks:
            return True
        return acc.usage is not None and acc.usage.completion_tokens > self.max_usage


def output_limit(body: dict[str, Any], config: ModelConfig) -> int:
    """The token limit a reply to `body` is held to: its max_tokens, else the configured
    limit, else the largest qwen-code ever asks for."""
    return max_tokens_of(body) or config.output_limit or LENGTH_RETRY_MAX_TOKENS


class StallWatchdog:
    """Cancels the reading task when a started stream sends nothing for `seconds`.

    Cheaper than a timeout context per chunk: one timer per attempt, re-armed only when it
    fires; the read loop just records when each chunk arrived. Time the consumer spends on
    a chunk (not reading) never counts as a stall.
    """

    __slots__ = (
        "_cancelling",
        "_handle",
        "_loop",
        "_task",
        "clock",
        "fired",
        "last",
        "reading",
        "seconds",
    )

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._cancelling = self._task.cancelling() if self._task is not None else 0
        self._handle: asyncio.TimerHandle | None = None
        self.clock = self._loop.time
        """The loop's clock; the read loop sets `last = clock()` after each chunk."""
        self.last = self.clock()
        self.reading = False
        self.fired = False

    def started(self) -> None:
        """The first chunk arrived: from now on, silence counts."""
        if self._handle is None and self._task is not None and self.seconds > 0:
            self._handle = self._loop.call_at(self.last + self.seconds, self._check)

    def _check(self) -> None:
        now = self._loop.time()
        due = self.last + self.seconds
        if self.reading and now >= due and self._task is not None:
            self.fired = True
            self._task.cancel()
            self._handle = None
            return
        self._handle = self._loop.call_at(max(due, now + self.seconds / 10), self._check)

    def caught(self) -> bool:
        """In an `except CancelledError`: True when the cancel was this watchdog's alone."""
        if not self.fired or self._task is None:
            return False
        return self._task.uncancel() <= self._cancelling

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


@dataclass(slots=True)
class Attempt:
    """What one request produced: the assembled stream, and a failure if it broke."""

    acc: StreamAccumulator = field(default_factory=StreamAccumulator)
    filter: ToolCallFilter = field(default_factory=ToolCallFilter)
    failure: retry.Failure | None = None
    yielded: bool = False
    """True once text of this attempt went out to the caller."""
    xml_calls: list[XmlCall] = field(default_factory=list)
    guard: OutputGuard = field(default_factory=lambda: OutputGuard(LENGTH_RETRY_MAX_TOKENS))
    on_first: Callable[[], None] | None = None
    """Called when the first chunk arrives."""

    def feed(self, chunk: dict[str, Any]) -> str:
        """Take one chunk; return the text to show now ("" when none)."""
        text = self.acc.add(chunk)
        self.guard.add(chunk)
        return self.filter.feed(text) if text else ""

    def end_text(self, tools: Sequence[dict[str, Any]] | None) -> str:
        """The stream ended: parse held XML into calls, or return held text to show after all."""
        held = self.acc.flush()  # a lone high surrogate that ended the stream, as U+FFFD
        tail = (self.filter.feed(held) if held else "") + self.filter.flush()
        if not self.filter.holding or self.acc.has_calls:
            return tail
        _, self.xml_calls = parse_tool_calls(self.filter.held_text, tool_properties(tools))
        if self.xml_calls or self.acc.finish_reason == "length":
            return tail  # a cut-off call stays hidden: it is retried or reported
        return tail + self.filter.release()

    def cut_in_tool_call(self) -> bool:
        """The reply stopped at the token limit while a tool call was being written."""
        if self.acc.finish_reason != "length":
            return False
        if self.acc.has_calls:
            return any(_incomplete(c.arguments) for c in self.acc.partial_calls)
        return self.filter.holding and (not self.xml_calls or not self.xml_calls[-1].complete)

    def response(self, max_tokens: int | None = None) -> ModelResponse:
        """The final response; after a cut-off, incomplete calls carry an error, no arguments."""
        acc, cut = self.acc, self.acc.finish_reason == "length"
        if self.xml_calls:
            calls = tuple(_from_xml(c, cut, max_tokens) for c in self.xml_calls)
        else:
            calls = tuple(_fixed(c, cut, max_tokens) for c in acc.tool_calls())
        finish = acc.finish_reason
        if self.xml_calls and finish in (None, "stop"):
            finish = "tool_calls"
        text = self.filter.shown_text
        return ModelResponse(text=text, tool_calls=calls, finish_reason=finish, usage=acc.usage)


def _incomplete(raw: str) -> bool:
    try:
        return not isinstance(json.loads(raw), dict)
    except (ValueError, RecursionError):
        return True


def cut_off_error(name: str, max_tokens: int | None) -> str:
    limit = f" (max_tokens={max_tokens})" if max_tokens else ""
    return (
        f"The {name or 'tool'} call was cut off: the reply reached the output token limit"
        f"{limit} before its arguments were complete, so it was not run. Do the work in "
        "smaller steps (for a large file: write a first part, then add the rest with edits)."
    )


def _fixed(call: ToolCall, cut: bool, max_tokens: int | None) -> ToolCall:
    """A structured call: repair its arguments, or mark it cut off (never repair those)."""
    if cut and _incomplete(call.raw_arguments):
        error = cut_off_error(call.name, max_tokens)
        return dataclasses.replace(call, arguments={}, parse_error=error)
    if call.parse_error is None or not call.name:
        return call
    arguments, error, how = parse_tool_arguments(call.raw_arguments, call.name)
    if how is not None:
        log.info("tool call %s %s: arguments repaired (%s)", call.id, call.name, how)
    return dataclasses.replace(call, arguments=arguments, parse_error=error)


def _from_xml(call: XmlCall, cut: bool, max_tokens: int | None) -> ToolCall:
    raw = json.dumps(call.arguments, ensure_ascii=False)
    if cut and not call.complete:
        error: str | None = cut_off_error(call.name, max_tokens)
        arguments: dict[str, Any] = {}
    else:
        error, arguments = None, call.arguments
    if not call.name:
        error = "The tool call has no function name."
    log.info("tool call %s parsed from Qwen XML in the reply text", call.name)
    return ToolCall(
        id=synthesize_call_id(),
        name=call.name,
        arguments=arguments,
        raw_arguments=raw,
        parse_error=error,
    )


@dataclass(slots=True)
class RetryState:
    """Where one `stream_chat` call stands with its retries."""

    count: int = 0
    first_failure: float | None = None
    """monotonic() of the first failure: the total retry time counts from there."""
    cut: Attempt | None = None
    """The reply cut off in a tool call, once retried with a larger max_tokens."""

    def elapsed(self) -> float:
        if self.first_failure is None:
            self.first_failure = time.monotonic()
        return time.monotonic() - self.first_failure


def max_tokens_of(body: dict[str, Any]) -> int | None:
    value = body.get("max_tokens", body.get("max_completion_tokens"))
    return value if isinstance(value, int) else None


def length_retry(
    body: dict[str, Any], outcome: Attempt, state: RetryState
) -> tuple[dict[str, Any], RetryNotice] | None:
    """The body and notice for the one retry after a reply was cut off in a tool call;
    None when there is none to make (not cut, already retried, or already at the limit)."""
    if state.cut is not None or not outcome.cut_in_tool_call():
        return None
    key = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    current = body.get(key)
    if isinstance(current, int) and current >= LENGTH_RETRY_MAX_TOKENS:
        return None
    state.cut = outcome
    limit = f" (max_tokens={current})" if current else ""
    log.info("reply cut off in a tool call%s; retrying with a larger max_tokens", limit)
    notice = RetryNotice(
        message=f"The reply reached the output token limit{limit} in the middle of a tool "
        f"call. Retrying once with max_tokens={LENGTH_RETRY_MAX_TOKENS}.",
        attempt=1,
        delay_s=0.0,
        kind="length",
        restart=outcome.yielded,
    )
    return {**body, key: LENGTH_RETRY_MAX_TOKENS}, notice


Post = Callable[[dict[str, Any]], Awaitable[Any]]
"""Sends the request body; returns the stream of chunk dicts (`http.ChunkStream`)."""


async def stream_attempt(
    post: Post,
    config: ModelConfig,
    body: dict[str, Any],
    outcome: Attempt,
    tools: Sequence[dict[str, Any]] | None,
) -> AsyncIterator[TextChunk]:
    """One request: yields text as it streams; records a failure in `outcome`."""
    stream: Any = None
    outcome.guard = OutputGuard(output_limit(body, config))
    watchdog = StallWatchdog(config.stall_timeout_s)
    try:
        try:
            stream = await post(body)
        except Exception as exc:
            outcome.failure = retry.classify(exc, config)
            return
        async for text in _read(stream.__aiter__(), config, outcome, watchdog):
            outcome.yielded = True
            yield TextChunk(text=text)
        if outcome.failure is not None:
            return
        if outcome.acc.chunks == 0:
            message = f"The server at {config.base_url} sent an empty response."
            outcome.failure = retry.Failure(retry.make_error("server", message))
            return
        tail = outcome.end_text(tools)
        if tail:
            outcome.yielded = True
            yield TextChunk(text=tail)
    finally:
        watchdog.stop()
        if stream is not None:
            await stream.close()


async def _read(
    chunks: AsyncIterator[Any], config: ModelConfig, outcome: Attempt, watchdog: StallWatchdog
) -> AsyncIterator[str]:
    """The text to show, chunk by chunk, until the stream ends or fails."""
    clock = watchdog.clock
    while True:
        watchdog.reading = True
        try:
            chunk = await chunks.__anext__()
        except StopAsyncIteration:
            return
        except asyncio.CancelledError:
            if not watchdog.caught():
                raise
            outcome.failure = retry.stalled(config)
            return
        except Exception as exc:
            outcome.failure = retry.classify(exc, config)
            return
        watchdog.reading = False
        watchdog.last = clock()
        if outcome.acc.chunks == 0:
            watchdog.started()
            if outcome.on_first is not None:
                outcome.on_first()
        text = outcome.feed(chunk)
        if outcome.guard.exceeded(outcome.acc):
            outcome.failure = retry.output_exceeded(outcome.guard.limit)
            return
        if text:
            yield text
