"""The proxy's HTTP server: Anthropic's Messages API (Starlette, served by uvicorn).

    POST /v1/messages               streamed (SSE) or not
    POST /v1/messages/count_tokens  {"input_tokens": n}
    GET  /v1/models                 the routed model ids, in Anthropic's list shape
    GET  /health                    {"status": "ok"} (no key needed)

Each request is translated (`translate`), routed (`routes`), and run on qwen-code's own
`ChatClient` with a config for its route; one HTTP connection pool per backend is shared
by all requests. A streamed reply is sent as `AnthropicStream` events, with a `ping`
every `ping_s` seconds while nothing else goes out (the prefill of a long prompt). An
error before anything was sent is an HTTP status with Anthropic's error body (a 429 keeps
its Retry-After); after that, an `error` event that ends the stream. One line per request
goes to the log stream: the model asked for, the backend model, tokens in and out, the
duration and the status. Keys never appear in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import secrets
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route as HttpRoute

from qwen_code.errors import ModelError
from qwen_code.llm.client import ChatClient, prompt_tokens
from qwen_code.llm.types import ModelResponse, StreamItem
from qwen_code.proxy import translate
from qwen_code.proxy.backend import (
    END,
    TIMEOUT,
    Pool,
    PooledClient,
    Pump,
    Raised,
    with_retry_after,
)
from qwen_code.proxy.events import AnthropicStream, sse
from qwen_code.proxy.routes import Route, Router
from qwen_code.proxy.tokens import TokenCounter

if TYPE_CHECKING:
    pass

PING_S = 10.0
"""Seconds without an event before a `ping` goes out."""
TIMEOUT_S = 600.0
"""The longest wait for a backend to start answering (Claude Code waits 10 minutes)."""
STALL_TIMEOUT_S = 120.0


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (a key is required otherwise)."""
    from qwen_code.llm.retry import is_loopback_host

    return is_loopback_host(host)


def new_message_id() -> str:
    return f"msg_{secrets.token_urlsafe(18).replace('-', 'x').replace('_', 'y')}"


@dataclass(slots=True)
class _Record:
    """What the log line says about one request."""

    requested: str
    backend: str = "-"
    stream: bool = False
    tokens_in: int | None = None
    tokens_out: int | None = None
    status: str = "200"
    started: float = 0.0


class ProxyApp:
    """The Starlette app and what its requests share: the router, the key, the pool."""

    def __init__(
        self,
        router: Router,
        *,
        api_key: str | None = None,
        ping_s: float = PING_S,
        log: TextIO | None = sys.stderr,
        cache_control: bool = False,
        timeout_s: float = TIMEOUT_S,
        stall_timeout_s: float = STALL_TIMEOUT_S,
    ) -> None:
        self.router = router
        self.api_key = api_key or None
        self.ping_s = ping_s
        self.log = log
        self.cache_control = cache_control
        self.timeout_s = timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.pool = Pool()
        self.tokens = TokenCounter(self.pool)
        self.app = Starlette(
            routes=[
                HttpRoute("/v1/messages", self.messages, methods=["POST"]),
                HttpRoute("/v1/messages/count_tokens", self.count_tokens, methods=["POST"]),
                HttpRoute("/v1/models", self.models, methods=["GET"]),
                HttpRoute("/health", self.health, methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await self.pool.aclose()

    # -- requests -------------------------------------------------------------------------

    def _denied(self, request: Request) -> Response | None:
        """401 in Anthropic's shape when a key is required and the request lacks it."""
        if self.api_key is None:
            return None
        expected = self.api_key.encode()
        given = [request.headers.get("x-api-key", "")]
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            given.append(auth[7:].strip())
        if any(g and hmac.compare_digest(g.encode(), expected) for g in given):
            return None
        body = translate.error_body(
            "authentication_error", "Invalid or missing API key for qwen-code proxy."
        )
        return JSONResponse(body, status_code=401)

    async def _json_body(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            raise translate.BadRequest(f"The request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise translate.BadRequest("The request body must be a JSON object.")
        return body

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def models(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        data = [
            {
                "type": "model",
                "id": name,
                "display_name": name,
                "created_at": "1970-01-01T00:00:00Z",
            }
            for name in self.router.model_names()
        ]
        return JSONResponse(
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    async def count_tokens(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        try:
            chat = translate.to_chat(await self._json_body(request))
        except translate.BadRequest as exc:
            return self._error_response(exc)
        estimate = translate.estimate_tokens(chat)
        exact = await self.tokens.count(self.router.pick(chat.model, estimate), chat)
        return JSONResponse({"input_tokens": estimate if exact is None else exact})

    async def messages(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            self._write(_Record(requested="?", status="401", started=time.monotonic()))
            return denied
        record = _Record(requested="?", started=time.monotonic())
        try:
            body = await self._json_body(request)
            chat = translate.to_chat(body)
            record.requested, record.stream = chat.model, chat.stream
            record.tokens_in = translate.estimate_tokens(chat)
        except translate.BadRequest as exc:
            return self._failed(exc, record)
        route = self.router.pick(chat.model, record.tokens_in)
        record.backend = route.label()
        items = self._client(route, chat).stream_chat(chat.messages, chat.tools)
        message_id = new_message_id()
        if not chat.stream:
            return await self._whole(items, chat.model, message_id, record)
        stream = AnthropicStream(
            model=chat.model, message_id=message_id, input_tokens=record.tokens_in or 0
        )
        pump = Pump(items)
        first = await pump.next(self.ping_s)
        if isinstance(first[0], Raised):  # nothing was sent yet: an HTTP error
            await pump.close()
            return self._failed(first[0].error, record)
        return StreamingResponse(
            self._events(pump, first, stream, record),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    def _client(self, route: Route, chat: translate.ChatRequest) -> ChatClient:
        config = route.config(
            max_tokens=chat.max_tokens,
            prompt_tokens=prompt_tokens(chat.messages, chat.tools),
            sampling=chat.sampling,
            tool_choice=chat.tool_choice if chat.tools else None,
            timeout_s=self.timeout_s,
            stall_timeout_s=self.stall_timeout_s,
        )
        return PooledClient(config, self.pool, cache_control=self.cache_control)

    async def _whole(
        self, items: AsyncIterator[StreamItem], model: str, message_id: str, record: _Record
    ) -> Response:
        response: ModelResponse | None = None
        try:
            async for item in items:
                if isinstance(item, ModelResponse):
                    response = item
        except Exception as exc:
            return self._failed(exc, record)
        if response is None:
            return self._failed(ModelError("The backend sent no reply.", kind="server"), record)
        self._usage(response, record)
        self._write(record)
        return JSONResponse(translate.to_message(response, model=model, message_id=message_id))

    async def _events(
        self, pump: Pump, batch: list[Any], stream: AnthropicStream, record: _Record
    ) -> AsyncIterator[bytes]:
        try:
            yield b"".join(sse(event) for event in stream.start())
            while True:
                data, error = self._encode(batch, stream, record)
                if data:
                    yield data
                if error is not None:
                    raise error
                if stream.finished or END in batch:
                    break
                batch = await pump.next(self.ping_s)
            if not stream.finished:
                body = translate.error_body("api_error", "The backend's reply ended early.")
                record.status = "200 api_error"
                yield b"".join(sse(event) for event in stream.fail(body))
        except Exception as exc:
            _, body, _ = translate.error_for(with_retry_after(exc))
            record.status = f"200 {body['error']['type']}"
            yield b"".join(sse(event) for event in stream.fail(body))
        except BaseException:
            record.status = "200 client went away"
            raise
        finally:
            await pump.close()
            self._write(record)

    def _encode(
        self, batch: list[Any], stream: AnthropicStream, record: _Record
    ) -> tuple[bytes, Exception | None]:
        """The events of a batch as one write, and the failure that ends it, if one does."""
        out = []
        for item in batch:
            if isinstance(item, Raised):
                return b"".join(out), item.error
            if item is TIMEOUT:
                out.append(sse(stream.ping()))
            elif item is not END:
                if isinstance(item, ModelResponse):
                    self._usage(item, record)
                out.extend(sse(event) for event in stream.feed(item))
        return b"".join(out), None

    # -- errors and the log ---------------------------------------------------------------

    def _error_response(self, exc: Exception) -> Response:
        status, body, headers = translate.error_for(with_retry_after(exc))  # type: ignore[arg-type]
        return JSONResponse(body, status_code=status, headers=headers)

    def _failed(self, exc: Exception, record: _Record) -> Response:
        response = self._error_response(exc)
        record.status = str(response.status_code)
        self._write(record)
        return response

    @staticmethod
    def _usage(response: ModelResponse, record: _Record) -> None:
        if response.usage is not None:
            record.tokens_in = response.usage.prompt_tokens
            record.tokens_out = response.usage.completion_tokens

    def _write(self, record: _Record) -> None:
        if self.log is None:
            return
        took = time.monotonic() - record.started
        mode = "stream" if record.stream else "whole"
        tokens_in = "?" if record.tokens_in is None else record.tokens_in
        tokens_out = "?" if record.tokens_out is None else record.tokens_out
        line = (
            f"qwen-code proxy: {record.requested} -> {record.backend} {mode} "
            f"in={tokens_in} out={tokens_out} {took:.2f}s {record.status}"
        )
        with contextlib.suppress(Exception):
            print(line, file=self.log, flush=True)


class ProxyServer:
    """uvicorn serving a `ProxyApp`: in this thread until Ctrl+C (`serve`), or in a
    background thread (`start`, `stop`) for `proxy run` and tests."""

    def __init__(self, proxy: ProxyApp, host: str = "127.0.0.1", port: int = 3456) -> None:
        import uvicorn

        self.proxy = proxy
        self.host = host
        config = uvicorn.Config(
            proxy.app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
            ws="none",
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the real one when it was asked for port 0)."""
        for server in self.server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self.server.config.port)

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def serve(self, on_ready: Callable[[ProxyServer], None] | None = None) -> None:
        """Serve until Ctrl+C (or `should_exit`); `on_ready` once it listens."""
        asyncio.run(self._serve(on_ready))

    async def _serve(self, on_ready: Callable[[ProxyServer], None] | None) -> None:
        task = asyncio.create_task(self.server.serve())
        while not self.server.started:  # uvicorn sets it once it listens
            done, _ = await asyncio.wait({task}, timeout=0.01)
            if done:
                break
        if self.server.started and on_ready is not None:
            on_ready(self)
        try:
            await task
        except SystemExit as exc:  # uvicorn's answer to a port it cannot bind
            raise OSError(f"cannot listen on {self.host}:{self.server.config.port}") from exc
        if not self.server.started:
            raise OSError(f"cannot listen on {self.host}:{self.server.config.port}")

    def start(self, timeout: float = 30.0) -> ProxyServer:
        """Serve in a background thread; returns once it listens (raises if it cannot)."""
        ready = threading.Event()

        def run() -> None:
            try:
                self.serve(lambda _: ready.set())
            except BaseException as exc:
                self._error = exc
            finally:
                ready.set()

        self._thread = threading.Thread(target=run, name="qwen-code-proxy", daemon=True)
        self._thread.start()
        ready.wait(timeout)
        if not self.server.started:
            self.stop()
            raise OSError(
                str(self._error) or "cannot listen"
                if self._error
                else f"cannot listen on {self.host}:{self.server.config.port}"
            )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
