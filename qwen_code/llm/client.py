"""`ChatClient`: streams chat completions from one OpenAI-compatible endpoint.

    client = ChatClient(config)
    async for item in client.stream_chat(messages, tools):
        match item:
            case TextChunk(text=t): ...        # as text arrives
            case RetryNotice(): ...            # before each retry
            case ModelResponse(): ...          # last: text, tool calls, finish reason, usage

Requests go through `qwen_code.llm.http` (httpx), imported on the first request, not at
import time (`preload` imports it ahead, in a thread). One transport is created per client
(and event loop) and reused, so connections stay alive between turns. The body is a
plain dict, sent as openai's `AsyncOpenAI.post` sent it (same bytes, same headers but the
SDK's own `X-Stainless-*`), and chunks come back as plain dicts: no SDK types on the
per-turn path (openai's `chat.completions.create()` re-walked the whole history through its
type-driven transform on every call, ~170 ms for a 440 KB history, and importing openai
cost ~0.6 s of the start-up).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from qwen_code import __version__
from qwen_code.errors import ModelError
from qwen_code.llm import retry
from qwen_code.llm.attempt import (
    Attempt,
    RetryState,
    length_retry,
    max_tokens_of,
    stream_attempt,
)
from qwen_code.llm.dashscope import is_dashscope
from qwen_code.llm.models import served_context_length
from qwen_code.llm.reply import final_response
from qwen_code.llm.sampling import split_sampling
from qwen_code.llm.server_probe import first_chunk_timeout, is_local_url
from qwen_code.llm.tokens import estimate_tokens, parse_overflow, schema_chars
from qwen_code.llm.types import ModelConfig, ModelResponse, PromptWait, RetryNotice, StreamItem
from qwen_code.textsafe import clean_json

if TYPE_CHECKING:
    from qwen_code.llm.http import ChunkStream, HttpTransport

log = logging.getLogger(__name__)

USER_AGENT = f"qwen-code/{__version__}"
CONNECT_TIMEOUT_S = 10.0
LIST_MODELS_TIMEOUT_S = 15.0
EMPTY_KEY = "EMPTY"
"""The bearer token sent when no API key is set (as openai's client was given)."""


def build_headers(config: ModelConfig) -> dict[str, str]:
    """Headers sent with every request; `config.headers` override them."""
    headers = {"User-Agent": USER_AGENT}
    if is_dashscope(config.base_url):
        headers["X-DashScope-CacheControl"] = "enable"
        headers["X-DashScope-UserAgent"] = USER_AGENT
    headers.update(config.headers)
    return headers


EPHEMERAL = {"type": "ephemeral"}
MIN_OUTPUT_ROOM = 1_024
"""Below this many tokens of room for the reply, no max_tokens is sent (the server's own
default then applies; the context budget compresses before the next request)."""
PROMPT_CHARS_PER_TOKEN = 3.0
"""For the room left for the reply: on the safe side (the prompt's tokens overstated)."""
_OUTPUT_LIMIT_REFUSED = re.compile(
    r"max_tokens|max_completion_tokens|completion|output tokens|maximum context length",
    re.IGNORECASE,
)


def prompt_tokens(messages: list[dict[str, Any]], tools: Sequence[dict[str, Any]] | None) -> int:
    """The prompt's tokens, overstated a little: messages, tool schemas and some overhead."""
    schema = schema_chars(tools) / PROMPT_CHARS_PER_TOKEN
    return estimate_tokens(messages, PROMPT_CHARS_PER_TOKEN) + int(schema) + 256


def refused_output_limit(failure: retry.Failure) -> bool:
    """A 400 that blames max_tokens (vLLM: "max_tokens is too large", "... tokens in the
    completion"; DashScope: "Range of max_tokens should be ..."), not a prompt that alone
    is longer than the window ("39000 in the messages" for 32768)."""
    message = failure.error.message
    if failure.status not in (400, 422) or not _OUTPUT_LIMIT_REFUSED.search(message):
        return False
    if failure.error.kind not in ("context_overflow", "bad_request"):
        return False
    window, prompt = parse_overflow(message)
    return window is None or prompt is None or prompt < window


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
    if is_local_url(config.base_url):
        messages = with_string_content(messages)
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


def with_string_content(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Assistant tool-call messages with `content: ""` instead of null, for local engines:
    llama-cpp-python's server refuses a null content (a 500 with validation errors), which
    the OpenAI API allows; vLLM, SGLang and llama-server take either. Hosted APIs get null,
    as the openai SDK sends it. The same list when nothing needs it."""
    if not any(m.get("role") == "assistant" and m.get("content") is None for m in messages):
        return messages
    return [
        {**m, "content": ""} if m.get("role") == "assistant" and m.get("content") is None else m
        for m in messages
    ]


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


def _ends_in_v1(base_url: str) -> bool:
    return urlsplit(base_url).path.rstrip("/").endswith("/v1")


def preload() -> None:
    """Import what the first request needs (httpx and the transport, ~0.1 s) and load the
    TLS certificates. The REPL calls this in a thread while the user types."""
    from qwen_code.llm import http

    http.ssl_context()


class ChatClient:
    """Talks to one OpenAI-compatible endpoint described by a `ModelConfig`."""

    def __init__(self, config: ModelConfig, *, cache_control: bool = False) -> None:
        self.config = config
        self.cache_control = cache_control
        """DashScope explicit caching: send cache_control markers (DashScope hosts only)."""
        self.headers = build_headers(config)
        self._transport: HttpTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._needs_v1: str | None = None
        """The configured base URL that turned out to need `/v1` appended."""
        self._v1_tried = False
        self.served_windows: dict[str, int] = {}
        """Context lengths the server reported in /models, by model id."""
        self._no_limit: set[str] = set()
        """Models whose server refused the max_tokens qwen-code chose."""
        self.on_prompt_wait: Callable[[PromptWait], None] | None = None
        """Told when a request went to a local server (which processes the prompt before
        its first chunk: maybe minutes on a CPU) and when that chunk came: front ends
        show "processing the prompt"."""

    def _http(self) -> HttpTransport:
        """The transport, created on first use (per event loop and base URL)."""
        loop = asyncio.get_running_loop()
        base_url = self._base_url()
        transport = self._transport
        if transport is None or self._loop is not loop or transport.base_url != base_url:
            from qwen_code.llm.http import HttpTransport

            transport = self._transport = HttpTransport(
                base_url,
                api_key=self.config.api_key or EMPTY_KEY,
                headers=self.headers,
                timeout_s=self.config.timeout_s,
                connect_timeout_s=CONNECT_TIMEOUT_S,
            )
            self._loop = loop
        return transport

    async def stream_chat(
        self, messages: list[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> AsyncIterator[StreamItem]:
        """Stream one model response: TextChunks, RetryNotices, then one ModelResponse.

        Retryable failures (429, 5xx, dropped or stalled streams, timeouts) are retried with
        backoff, bounded by `max_retries` and `max_retry_time_s`, also after text went out:
        then the notice has `restart=True` and the response starts over. A reply cut off
        in a tool call is retried once with a larger max_tokens. Without a max_tokens in
        the settings, `config.output_limit` is sent (and sent no more once the server
        refuses it). A reply that streams far past its limit is stopped, not retried (an
        `output_limit` error). Every failure that ends the request is a ModelError.
        """
        body = build_request(self.config, messages, tools, cache_control=self.cache_control)
        ours = self._add_output_limit(body, messages, tools)
        wait = self._prompt_wait(messages, tools)
        config, post = self.config, self._post
        if wait is not None:  # a local server: the first chunk may take long
            config = dataclasses.replace(config, timeout_s=wait.timeout_s)
            post = functools.partial(self._post, timeout_s=wait.timeout_s)
        state = RetryState()
        while True:
            outcome, started = Attempt(), time.monotonic()
            if wait is not None:
                outcome.on_first = self._waiting(wait)
            async for chunk in stream_attempt(post, config, body, outcome, tools):
                yield chunk
            failure = outcome.failure
            if failure is None:
                larger = length_retry(body, outcome, state)
                if larger is None:
                    yield outcome.response(max_tokens_of(body))
                    return
                (body, notice), ours = larger, False
                yield notice
                continue
            if ours and refused_output_limit(failure):
                body, ours = self._drop_output_limit(body, failure), False
                continue
            if await self._retarget(failure):
                continue
            step = await self._after_failure(failure, outcome, state, started, body)
            yield step
            if isinstance(step, ModelResponse):
                return
            await asyncio.sleep(step.delay_s)

    def _prompt_wait(
        self, messages: list[dict[str, Any]], tools: Sequence[dict[str, Any]] | None
    ) -> PromptWait | None:
        """For a local server: the prompt's size and the wait for the first chunk it
        earns (`first_chunk_timeout`); None for other servers (the plain timeout)."""
        config = self.config
        if config.first_chunk_rate <= 0 or not is_local_url(config.base_url):
            return None
        tokens = prompt_tokens(messages, tools)
        timeout = first_chunk_timeout(
            config.timeout_s, tokens, rate=config.first_chunk_rate, cap_s=config.first_chunk_cap_s
        )
        return PromptWait(prompt_tokens=tokens, timeout_s=timeout)

    def _waiting(self, wait: PromptWait) -> Callable[[], None]:
        """Tell `on_prompt_wait` that the request went out; returns what tells it that
        the first chunk came."""
        self._tell(wait)
        return functools.partial(self._tell, dataclasses.replace(wait, done=True))

    def _tell(self, wait: PromptWait) -> None:
        if self.on_prompt_wait is None:
            return
        try:
            self.on_prompt_wait(wait)
        except Exception:  # a display problem never fails the request
            log.exception("on_prompt_wait failed")

    async def _after_failure(
        self,
        failure: retry.Failure,
        outcome: Attempt,
        state: RetryState,
        started: float,
        body: dict[str, Any],
    ) -> RetryNotice | ModelResponse:
        """The notice before the next attempt; or, once retries are over, the reply cut off
        in a tool call (when a retry with a larger max_tokens failed); else raises."""
        elapsed = state.elapsed()
        delay = retry.retry_delay(failure, state.count, self.config)
        silent = time.monotonic() - started if outcome.acc.chunks == 0 else 0.0
        if not retry.should_retry(
            failure,
            state.count,
            self.config,
            elapsed_s=elapsed,
            delay_s=delay,
            attempt_s=silent,
        ):
            if state.cut is not None and not failure.retryable:
                log.info("the retry with a larger max_tokens failed: %s", failure.error)
                return state.cut.response(max_tokens_of(body))
            raise (await self._final_error(failure, state, elapsed)) from failure.cause
        state.count += 1
        return self._notice(failure, state.count, delay, restart=outcome.yielded)

    def _add_output_limit(
        self,
        body: dict[str, Any],
        messages: list[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None,
    ) -> bool:
        """Put the configured output limit into `body` as `max_tokens` when the settings set
        none; True when it did. Lowered to the room the prompt leaves in a known window
        (vLLM and SGLang refuse a request whose prompt and max_tokens exceed it); left out
        when little room is left, or after this server refused it."""
        config = self.config
        limit = config.output_limit
        if limit is None or max_tokens_of(body) is not None or config.model in self._no_limit:
            return False
        window = config.context_window or self.served_windows.get(config.model)
        if window:
            limit = min(limit, window - prompt_tokens(messages, tools))
            if limit < MIN_OUTPUT_ROOM:
                return False
        body["max_tokens"] = limit
        return True

    def _drop_output_limit(self, body: dict[str, Any], failure: retry.Failure) -> dict[str, Any]:
        """The server refused the max_tokens qwen-code chose (too large for it): send the
        request without one, and do so for this model from now on. The reply is still held
        to the limit on the client side."""
        log.info(
            "the server refused max_tokens=%s (%s); sending none",
            body.get("max_tokens"),
            failure.error.message,
        )
        self._no_limit.add(self.config.model)
        return {k: v for k, v in body.items() if k != "max_tokens"}

    def _notice(
        self, failure: retry.Failure, count: int, delay: float, restart: bool
    ) -> RetryNotice:
        again = " The answer so far is discarded and starts over." if restart else ""
        return RetryNotice(
            message=f"{retry.sentence(failure.error.message)} Retrying in {delay:.1f} s "
            f"(retry {count} of {retry.retry_limit(failure, self.config)}).{again}",
            attempt=count,
            delay_s=delay,
            kind=failure.error.kind,
            restart=restart,
        )

    async def _post(self, body: dict[str, Any], timeout_s: float | None = None) -> ChunkStream:
        try:
            return await self._send(body, timeout_s)
        except UnicodeEncodeError:
            # A string UTF-8 cannot encode (a lone surrogate: a non-UTF-8 argument or file
            # name) would fail every retry: send it as U+FFFD, as the session file saves it.
            return await self._send(clean_json(body), timeout_s)

    async def _send(self, body: dict[str, Any], timeout_s: float | None = None) -> ChunkStream:
        return await self._http().stream("/chat/completions", body, timeout_s)

    async def complete(
        self, messages: list[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> ModelResponse:
        """Drain `stream_chat` and return its ModelResponse."""
        return await final_response(self.stream_chat(messages, tools))

    async def _final_error(
        self, failure: retry.Failure, state: RetryState, elapsed: float
    ) -> ModelError:
        if failure.error.kind != "not_found":
            return retry.gave_up(failure, state.count, elapsed)
        config = self.config
        models = await self._served_models()
        if not models and self._needs_v1 is not None:
            await self._untarget()  # `/v1` did not help either: back to the URL as given
            models = await self._served_models()
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

    async def _retarget(self, failure: retry.Failure) -> bool:
        """A 404 from a base URL without `/v1`: try once more with `/v1` appended (local
        servers are often given as http://host:8000). True when the next attempt should go."""
        base = self.config.base_url
        if failure.status != 404 or self._v1_tried or _ends_in_v1(base):
            return False
        self._v1_tried = True
        log.info("%s answered 404; trying %s/v1", base, base.rstrip("/"))
        self._needs_v1 = base
        await self.aclose()
        return True

    async def _untarget(self) -> None:
        self._needs_v1 = None
        await self.aclose()

    def _base_url(self) -> str:
        """The URL requests go to: the configured one, with `/v1` when that was needed."""
        base = self.config.base_url
        return f"{base.rstrip('/')}/v1" if base == self._needs_v1 else base

    async def list_models(self) -> list[dict[str, Any]]:
        """GET /models: each dict has `id`, and `max_model_len` when the server reports it."""
        try:
            page = await self._get_models()
        except Exception as exc:
            failure = retry.classify(exc, self.config)
            if not await self._retarget(failure):
                raise failure.error from exc
            try:
                page = await self._get_models()
            except Exception:
                await self._untarget()
                raise failure.error from exc
        data = page.get("data") if isinstance(page, dict) else page
        models = []
        for entry in data if isinstance(data, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                model = dict(entry)
                length = served_context_length(entry)
                if length is not None:
                    model["max_model_len"] = length
                    self.served_windows[model["id"]] = length
                models.append(model)
        return models

    async def _served_models(self) -> list[dict[str, Any]]:
        try:
            return await self.list_models()
        except ModelError:
            return []

    async def _get_models(self) -> Any:
        timeout = min(self.config.timeout_s, LIST_MODELS_TIMEOUT_S)
        return await self._http().get_json("/models", timeout)

    async def aclose(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.aclose()

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
