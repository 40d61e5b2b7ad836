"""The HTTP transport of `ChatClient`: httpx directly, sending what openai's client sent.

Imported on the first request (or by `client.preload`), never with the client: httpx
takes ~0.1 s to import, openai took ~0.6 s for the same two calls. What goes on the wire
is what `AsyncOpenAI.post(..., stream=True)` and `.get("/models")` sent (the wire
contract test checks it against the real SDK): the same URL, body bytes and headers, less
the `X-Stainless-*` headers that named the SDK. Timeouts, redirects (followed), proxies
from the environment, connection limits and keep-alive are openai's defaults too.

A streamed reply is a `ChunkStream`: an async iterator of chunk dicts with `close()`.
Failures raise the exceptions of `transport_errors`, which `retry.classify` reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
from collections import deque
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from qwen_code.llm.sse import Event, EventReader, chunk_of, is_done
from qwen_code.llm.transport_errors import ConnectionFailed, RequestTimeout, StatusError

LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
"""openai's connection limits."""
DRAIN_S = 0.1
"""After [DONE], read the rest of the body this long at most (so the connection is kept)."""
REQUEST_ERRORS: tuple[type[Exception], ...] = (httpx.RequestError, ssl.SSLError)
"""Connection failures (httpcore maps TLS failures to ConnectError; an SSLError is caught
too, as openai does, should one get through)."""
_ENV_HEADERS = {"OpenAI-Organization": "OPENAI_ORG_ID", "OpenAI-Project": "OPENAI_PROJECT_ID"}
"""Headers openai's client sends when these variables are set (so do we)."""


def endpoint(base_url: str, path: str) -> httpx.URL:
    """`path` under the base URL, whether or not that ends in a slash (a query stays last)."""
    base = httpx.URL(base_url)
    raw, sep, query = base.raw_path.partition(b"?")
    raw = raw if raw.endswith(b"/") else raw + b"/"
    return base.copy_with(raw_path=raw + path.lstrip("/").encode() + sep + query)


def merge_headers(*mappings: Mapping[str, str]) -> dict[str, str]:
    """Later mappings win, names compared without case (the last spelling is kept)."""
    merged: dict[str, tuple[str, str]] = {}
    for mapping in mappings:
        for name, value in mapping.items():
            merged[name.lower()] = (name, value)
    return dict(merged.values())


def request_headers(api_key: str, headers: Mapping[str, str]) -> dict[str, str]:
    """The headers of every request; `headers` (qwen-code's and the settings') win."""
    auth = {"Authorization": f"Bearer {api_key}"}
    accept = {"Accept": "application/json", "Content-Type": "application/json"}
    env = {name: os.environ[var] for name, var in _ENV_HEADERS.items() if var in os.environ}
    return merge_headers(auth, accept, env, headers)


def encode_body(body: Any) -> bytes:
    """The JSON body as openai encodes it. A lone surrogate raises UnicodeEncodeError."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode()


@cache
def ssl_context() -> ssl.SSLContext:
    """Certificates checked against SSL_CERT_FILE or SSL_CERT_DIR when set, else the
    system's store (as openai's HTTP stack does), else certifi's bundle (httpx's default,
    for a system without one). One context, shared by every client."""
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile or None, capath=None if cafile else capath)
    paths = ssl.get_default_verify_paths()
    cafile_found = bool(paths.openssl_cafile) and Path(paths.openssl_cafile).is_file()
    capath_found = bool(paths.openssl_capath) and Path(paths.openssl_capath).is_dir()
    if os.name == "nt" or cafile_found or capath_found:
        return ssl.create_default_context()
    return httpx.create_ssl_context(trust_env=False)  # certifi


class HttpTransport:
    """One httpx client for one base URL: kept-alive connections, closed by `aclose`."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        headers: Mapping[str, str],
        timeout_s: float,
        connect_timeout_s: float,
    ) -> None:
        self.base_url = base_url
        self._connect_s = connect_timeout_s
        self._headers = request_headers(api_key, headers)
        self._get_headers = {k: v for k, v in self._headers.items() if k.lower() != "content-type"}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, connect_timeout_s)),
            limits=LIMITS,
            follow_redirects=True,
            verify=ssl_context(),
        )

    async def stream(self, path: str, body: Any, timeout_s: float | None = None) -> ChunkStream:
        """POST `body` as JSON; the streamed reply's chunks (once the status was 2xx).
        `timeout_s`: this request's read timeout instead of the client's."""
        content = encode_body(body)
        timeout: Any = httpx.USE_CLIENT_DEFAULT
        if timeout_s is not None:
            timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, self._connect_s))
        request = self._client.build_request(
            "POST",
            endpoint(self.base_url, path),
            headers=self._headers,
            content=content,
            timeout=timeout,
        )
        return ChunkStream(await self._send(request, stream=True))

    async def get_json(self, path: str, timeout_s: float) -> Any:
        """GET `path`: its JSON (its text when the server says it is not JSON)."""
        request = self._client.build_request(
            "GET",
            endpoint(self.base_url, path),
            headers=self._get_headers,
            timeout=httpx.Timeout(timeout_s),
        )
        response = await self._send(request, stream=False)
        content_type = response.headers.get("content-type", "*").split(";")[0]
        return response.json() if content_type.endswith("json") else response.text

    async def post_json(self, path: str, body: Any, timeout_s: float) -> Any:
        """POST `body` as JSON: the reply's JSON (ValueError when it is not JSON)."""
        request = self._client.build_request(
            "POST",
            endpoint(self.base_url, path),
            headers=self._headers,
            content=encode_body(body),
            timeout=httpx.Timeout(timeout_s),
        )
        response = await self._send(request, stream=False)
        return response.json()

    async def _send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        try:
            response = await self._client.send(request, stream=stream)
        except httpx.TimeoutException as exc:
            raise RequestTimeout("Request timed out.") from exc
        except REQUEST_ERRORS as exc:
            raise ConnectionFailed("Connection error.") from exc
        if not response.is_success:
            raise await _status_error(response)
        return response

    async def aclose(self) -> None:
        await self._client.aclose()


async def _status_error(response: httpx.Response) -> StatusError:
    """The error for a non-2xx answer, with its body read (a failure reading it is raised
    as httpx raised it)."""
    try:
        await response.aread()
    finally:
        await response.aclose()
    text = response.text
    body: object = text.strip()
    with contextlib.suppress(ValueError, RecursionError):
        body = json.loads(text.strip())
    if isinstance(body, Mapping):  # as openai keeps it: the error object
        body = body.get("error", body)
    return StatusError(response.status_code, body, response.headers, text)


class ChunkStream:
    """The chunks of one streamed reply as they arrive (see `sse`).

    A broken connection raises `ConnectionFailed`, a read timeout `RequestTimeout`. Reading
    may be cancelled at any await; `close()` (also mid-stream, also after a cancel) closes
    the response, and with it the connection unless the body was read to its end.
    """

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._bytes = response.aiter_bytes()
        self._reader = EventReader()
        self._events: deque[Event] = deque()
        self._ended = False

    def __aiter__(self) -> ChunkStream:
        return self

    async def __anext__(self) -> Any:
        while not self._events:
            if self._ended:
                raise StopAsyncIteration
            await self._read()
        event = self._events.popleft()
        if is_done(event):
            self._events.clear()
            self._ended = True
            await self._drain()
            raise StopAsyncIteration
        return chunk_of(event)

    async def _read(self) -> None:
        try:
            data = await self._bytes.__anext__()
        except StopAsyncIteration:
            self._ended = True
            self._events.extend(self._reader.finish())
            return
        except httpx.TimeoutException as exc:
            raise RequestTimeout("Request timed out.") from exc
        except REQUEST_ERRORS as exc:
            raise ConnectionFailed("Connection error.") from exc
        self._events.extend(self._reader.feed(data))

    async def _drain(self) -> None:
        """Read what follows [DONE] (the end of the chunked body), so that HTTP/1.1 keeps
        the connection for the next request; give up after `DRAIN_S`."""
        try:
            if self._response.http_version == "HTTP/1.1":
                async with asyncio.timeout(DRAIN_S):
                    async for _ in self._bytes:
                        pass
        except (TimeoutError, httpx.StreamError, *REQUEST_ERRORS):
            pass
        finally:
            await self._response.aclose()

    async def close(self) -> None:
        await self._response.aclose()
