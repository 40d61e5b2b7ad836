"""`ChatClient`: streams chat completions from one OpenAI-compatible endpoint.

    client = ChatClient(config)
    async for item in client.stream_chat(messages, tools):
        match item:
            case TextChunk(text=t): ...        # as text arrives
            case RetryNotice(): ...            # before each retry
            case ModelResponse(): ...          # last: text, tool calls, finish reason, usage

`openai` is imported on first use, not at import time. One `AsyncOpenAI` is created per
client (and event loop) and reused, so connections stay alive between turns. Requests go
through `AsyncOpenAI.post` with a plain dict body and chunks come back as plain dicts:
`chat.completions.create()` re-walks the whole message history through its type-driven
transform on every call (~170 ms for a 440 KB history), which the per-turn budget cannot
afford; the bytes on the wire are the same.
"""

from __future__ import annotations

import asyncio
import gc
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from qwen_code import __version__
from qwen_code.errors import ModelError
from qwen_code.llm import retry
from qwen_code.llm.sampling import split_sampling
from qwen_code.llm.stream import StreamAccumulator
from qwen_code.llm.types import ModelConfig, ModelResponse, RetryNotice, StreamItem, TextChunk

USER_AGENT = f"qwen-code/{__version__}"
CONNECT_TIMEOUT_S = 10.0
LIST_MODELS_TIMEOUT_S = 15.0

_DASHSCOPE_HOST = re.compile(r"(^|\.)dashscope[\w-]*\.aliyuncs\.com$", re.IGNORECASE)


def is_dashscope(base_url: str) -> bool:
    """True for DashScope hosts: dashscope(-intl|-us).aliyuncs.com, *.dashscope.aliyuncs.com."""
    host = urlsplit(base_url).hostname or ""
    return bool(_DASHSCOPE_HOST.search(host))


def build_headers(config: ModelConfig) -> dict[str, str]:
    """Headers sent with every request; `config.headers` override them."""
    headers = {"User-Agent": USER_AGENT}
    if is_dashscope(config.base_url):
        headers["X-DashScope-CacheControl"] = "enable"
        headers["X-DashScope-UserAgent"] = USER_AGENT
    headers.update(config.headers)
    return headers


EPHEMERAL = {"type": "ephemeral"}


def build_request(
    config: ModelConfig,
    messages: list[dict[str, Any]],
    tools: Sequence[dict[str, Any]] | None,
    *,
    cache_control: bool = False,
) -> dict[str, Any]:
    """The JSON body of a streaming chat-completions request.

    With `cache_control` and a DashScope endpoint, the body carries explicit-cache markers
    as Qwen Code sends them (see `add_cache_markers`); `messages` itself is never changed.
    """
    standard, extra = split_sampling(config.sampling)
    if cache_control and is_dashscope(config.base_url):
        messages, tools = add_cache_markers(messages, tools)
    body: dict[str, Any] = {"model": config.model, "messages": messages}
    if tools:
        body["tools"] = list(tools)
    body.update(standard)
    if config.max_tokens is not None:
        body["max_tokens"] = config.max_tokens
    body.update(extra)
    body.update(config.extra_body)
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    return body


def add_cache_markers(
    messages: list[dict[str, Any]], tools: Sequence[dict[str, Any]] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """DashScope explicit caching: `cache_control: {"type": "ephemeral"}` on the system
    message, the last message whose content can carry it, and the last tool.

    Returns new lists; only the marked messages (and the marked tool) are copies, the
    rest are the caller's objects, untouched. String content becomes one text block.
    """
    marked = list(messages)
    system = next((i for i, m in enumerate(marked) if m.get("role") == "system"), None)
    if system is not None:
        _mark_message(marked, system)
    for index in range(len(marked) - 1, -1, -1):
        if index == system or _mark_message(marked, index):
            break
    if not tools:
        return marked, None
    marked_tools = list(tools)
    marked_tools[-1] = {**marked_tools[-1], "cache_control": dict(EPHEMERAL)}
    return marked, marked_tools


def _mark_message(messages: list[dict[str, Any]], index: int) -> bool:
    """Put the marker on `messages[index]` (replacing it with a copy); False when its
    content cannot carry one (no content: an assistant message with only tool calls)."""
    message = messages[index]
    content = message.get("content")
    if isinstance(content, str) and content:
        blocks: list[Any] = [{"type": "text", "text": content, "cache_control": dict(EPHEMERAL)}]
    elif isinstance(content, list) and content and isinstance(content[-1], dict):
        blocks = [*content[:-1], {**content[-1], "cache_control": dict(EPHEMERAL)}]
    else:
        return False
    messages[index] = {**message, "content": blocks}
    return True


def _context_length(model: dict[str, Any]) -> int | None:
    """The context length a /models entry reports, under the names servers use."""
    for key in ("max_model_len", "context_length", "context_window", "max_context_length"):
        value = model.get(key)
        if isinstance(value, int) and value > 0:
            return value
    meta = model.get("meta")
    if isinstance(meta, dict):
        for key in ("n_ctx", "n_ctx_train"):
            if isinstance(meta.get(key), int) and meta[key] > 0:
                return meta[key]
    return None


def _import_openai() -> Any:
    """Import openai with the cyclic GC paused: its ~900 modules build thousands of
    classes, and collections during that import cost ~15% of it for nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        import openai
    finally:
        if was_enabled:
            gc.enable()
    return openai


@dataclass(slots=True)
class _Attempt:
    """What one request produced: the assembled stream, and a failure if it broke."""

    acc: StreamAccumulator = field(default_factory=StreamAccumulator)
    failure: retry.Failure | None = None
    yielded: bool = False
    """True once text went out to the caller (from then on, no retry)."""


class ChatClient:
    """Talks to one OpenAI-compatible endpoint described by a `ModelConfig`."""

    def __init__(self, config: ModelConfig, *, cache_control: bool = False) -> None:
        self.config = config
        self.cache_control = cache_control
        """DashScope explicit caching: send cache_control markers (DashScope hosts only)."""
        self.headers = build_headers(config)
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stream_cls: Any = None

    def _openai(self) -> Any:
        """The AsyncOpenAI client, created on first use (per event loop)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            openai = _import_openai()

            timeout = self.config.timeout_s
            self._client = openai.AsyncOpenAI(
                base_url=self.config.base_url,
                api_key=self.config.api_key or "EMPTY",
                timeout=openai.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_S)),
                max_retries=0,
                default_headers=self.headers,
            )
            self._stream_cls = openai.AsyncStream[object]
            self._loop = loop
        return self._client

    async def stream_chat(
        self, messages: list[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> AsyncIterator[StreamItem]:
        """Stream one model response: TextChunks, RetryNotices, then one ModelResponse.

        Retries (429, 5xx, connection errors, timeouts) happen only while no text has been
        yielded; a stream that breaks after that raises ModelError(kind="network").
        Every failure is a ModelError.
        """
        config = self.config
        body = build_request(config, messages, tools, cache_control=self.cache_control)
        attempt = 0
        while True:
            outcome = _Attempt()
            async for chunk in self._attempt(body, outcome):
                yield chunk
            failure = outcome.failure
            if failure is None:
                yield outcome.acc.response()
                return
            if outcome.yielded:
                raise retry.interrupted(failure, config) from failure.cause
            if not retry.should_retry(failure, attempt, config):
                raise await self._final_error(failure) from failure.cause
            delay = retry.retry_delay(failure, attempt, config)
            attempt += 1
            yield RetryNotice(
                message=f"{retry.sentence(failure.error.message)} Retrying in {delay:.1f} s "
                f"(retry {attempt} of {config.max_retries}).",
                attempt=attempt,
                delay_s=delay,
                kind=failure.error.kind,
            )
            await asyncio.sleep(delay)

    async def _attempt(self, body: dict[str, Any], outcome: _Attempt) -> AsyncIterator[TextChunk]:
        """One request: yields text as it streams; records a failure in `outcome`."""
        stream: Any = None
        try:
            try:
                stream = await self._openai().post(
                    "/chat/completions",
                    cast_to=object,
                    body=body,
                    stream=True,
                    stream_cls=self._stream_cls,
                )
                chunks = stream.__aiter__()
            except Exception as exc:
                outcome.failure = retry.classify(exc, self.config)
                return
            while True:
                try:
                    text = outcome.acc.add(await chunks.__anext__())
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    outcome.failure = retry.classify(exc, self.config)
                    return
                if text:
                    outcome.yielded = True
                    yield TextChunk(text=text)
        finally:
            if stream is not None:
                await stream.close()
        if outcome.acc.chunks == 0:
            message = f"The server at {self.config.base_url} sent an empty response."
            outcome.failure = retry.Failure(retry.make_error("server", message))

    async def complete(
        self, messages: list[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> ModelResponse:
        """Drain `stream_chat` and return its ModelResponse."""
        response: ModelResponse | None = None
        async for item in self.stream_chat(messages, tools):
            if isinstance(item, ModelResponse):
                response = item
        if response is None:
            raise retry.make_error("server", "The model stream ended without a response.")
        return response

    async def _final_error(self, failure: retry.Failure) -> ModelError:
        if failure.error.kind != "not_found":
            return failure.error
        config = self.config
        try:
            models = await self.list_models()
        except ModelError:
            models = []
        ids = [m["id"] for m in models]
        if ids and config.model not in ids:
            shown = ", ".join(ids[:30]) + (f", … ({len(ids)} in all)" if len(ids) > 30 else "")
            return retry.make_error(
                "not_found",
                f"Model {config.model!r} is not served by {config.base_url}. "
                f"Available models: {shown}. Set OPENAI_MODEL or pass --model.",
                hint="",
            )
        return retry.make_error(
            "not_found",
            retry.sentence(failure.error.message),
            hint="Check the base URL: OpenAI-compatible servers usually end in /v1.",
        )

    async def list_models(self) -> list[dict[str, Any]]:
        """GET /models: each dict has `id`, and `max_model_len` when the server reports it."""
        timeout = min(self.config.timeout_s, LIST_MODELS_TIMEOUT_S)
        try:
            page = await self._openai().get("/models", cast_to=object, options={"timeout": timeout})
        except Exception as exc:
            raise retry.classify(exc, self.config).error from exc
        data = page.get("data") if isinstance(page, dict) else page
        models = []
        for entry in data if isinstance(data, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                model = dict(entry)
                length = _context_length(entry)
                if length is not None:
                    model["max_model_len"] = length
                models.append(model)
        return models

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
