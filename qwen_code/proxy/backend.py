"""The proxy's side of a backend: one HTTP connection pool per backend shared by every
request (`Pool`, `PooledClient`), and `Pump`, which reads the client's stream in its own
task so the server sends whatever has arrived in one write."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qwen_code.errors import ModelError
from qwen_code.llm import retry
from qwen_code.llm.client import CONNECT_TIMEOUT_S, EMPTY_KEY, ChatClient
from qwen_code.llm.types import ModelConfig, StreamItem

if TYPE_CHECKING:
    from qwen_code.llm.http import HttpTransport


class Pool:
    """One HTTP transport per backend URL and key, shared by the requests (kept-alive
    connections), closed when the server stops."""

    def __init__(self) -> None:
        self._transports: dict[tuple[Any, ...], HttpTransport] = {}
        self.needs_v1: set[str] = set()
        """Base URLs that answered 404 until `/v1` was appended."""

    def get(self, base_url: str, config: ModelConfig, headers: dict[str, str]) -> HttpTransport:
        key = (base_url, config.api_key, tuple(sorted(headers.items())), config.timeout_s)
        transport = self._transports.get(key)
        if transport is None:
            from qwen_code.llm.http import HttpTransport

            transport = self._transports[key] = HttpTransport(
                base_url,
                api_key=config.api_key or EMPTY_KEY,
                headers=headers,
                timeout_s=config.timeout_s,
                connect_timeout_s=CONNECT_TIMEOUT_S,
            )
        return transport

    async def aclose(self) -> None:
        transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            await transport.aclose()


class PooledClient(ChatClient):
    """A `ChatClient` for one request, on the pool's shared transport."""

    def __init__(self, config: ModelConfig, pool: Pool, *, cache_control: bool) -> None:
        super().__init__(config, cache_control=cache_control)
        self._pool = pool
        if config.base_url in pool.needs_v1:
            self._needs_v1, self._v1_tried = config.base_url, True

    def _http(self) -> HttpTransport:
        if self._needs_v1 is not None:
            self._pool.needs_v1.add(self._needs_v1)
        return self._pool.get(self._base_url(), self.config, self.headers)

    async def aclose(self) -> None:
        """Nothing to close: the transport is the pool's."""


TIMEOUT = object()
END = object()
QUEUE_ITEMS = 256
"""Items read ahead of a slow client at most (then the backend's stream waits)."""


@dataclass(frozen=True, slots=True)
class Raised:
    error: Exception


class Pump:
    """Reads a stream in a task of its own, so that the reader can wait for the next items
    at most so long (for pings) and take all that arrived meanwhile at once (one write to
    the client for many small chunks)."""

    def __init__(self, items: AsyncIterator[StreamItem]) -> None:
        self.items = items
        self._queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_ITEMS)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for item in self.items:
                await self._queue.put(item)
        except Exception as exc:
            await self._queue.put(Raised(exc))
        else:
            await self._queue.put(END)

    async def next(self, wait_s: float) -> list[Any]:
        """The items that arrived, waiting up to `wait_s` for one: stream items, then maybe
        `END` or a `Raised`; `[TIMEOUT]` when none came."""
        queue = self._queue
        if queue.empty():
            try:
                async with asyncio.timeout(wait_s):
                    first = await queue.get()
            except TimeoutError:
                return [TIMEOUT]
        else:
            first = queue.get_nowait()
        batch = [first]
        while not queue.empty() and batch[-1] is not END and not isinstance(batch[-1], Raised):
            batch.append(queue.get_nowait())
        return batch

    async def close(self) -> None:
        task = self._task
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        aclose = getattr(self.items, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


def with_retry_after(exc: BaseException) -> BaseException:
    """A ModelError from an HTTP status keeps the server's Retry-After (`error_for` sends it
    on as the `retry-after` header)."""
    if isinstance(exc, ModelError) and getattr(exc, "retry_after_s", None) is None:
        headers = getattr(exc.__cause__, "headers", None)
        seconds = retry.retry_after_seconds(headers) if headers is not None else None
        if seconds is not None:
            exc.retry_after_s = seconds  # type: ignore[attr-defined]
    return exc
