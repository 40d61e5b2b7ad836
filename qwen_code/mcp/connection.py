"""One live MCP server: started, listed, called, and closed, with the official SDK.

The SDK's `Client` is an async context whose enter and exit must happen in the same task
(anyio cancel scopes), so each connection runs in a task of its own that opens the client,
lists what the server offers, says it is ready, and holds the client until `aclose`. Calls
are made from the agent's task on the open client. A server that died is noticed on the
next call: the connection is marked failed, and `ensure` starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from qwen_code.mcp.config import ServerEntry

State: TypeAlias = Literal["pending", "connected", "failed", "timeout", "disabled"]


@dataclass(slots=True)
class Listing:
    """What a server offers, as listed at connection (and after a list-changed notice)."""

    tools: list[Any] = field(default_factory=list)
    prompts: list[Any] = field(default_factory=list)
    resources: list[Any] = field(default_factory=list)


class McpConnection:
    """A server's connection; `start` connects (within its discovery timeout)."""

    def __init__(
        self,
        entry: ServerEntry,
        *,
        env: Mapping[str, str],
        log_dir: Path,
        on_change: Callable[[McpConnection], None] | None = None,
    ) -> None:
        self.entry = entry
        self.config = entry.config.expanded(env)
        self.state: State = "pending"
        self.error: str | None = None
        self.listing = Listing()
        self.log_path = log_dir / f"mcp-{_safe(entry.name)}.log"
        self._env = env
        self._on_change = on_change
        self._client: Any = None
        self._errlog: Any = None
        self._refresh: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()

    @property
    def name(self) -> str:
        return self.entry.name

    async def start(self) -> State:
        """Connect and list; `connected`, or `failed`/`timeout` with `error` set."""
        await self._finish_previous()
        self._ready, self._stop = asyncio.Event(), asyncio.Event()
        self.state, self.error = "pending", None
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"mcp-{self.name}")
        timeout = self.config.discovery_timeout_s()
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            await self._cancel()
            self.state = "timeout"
            self.error = f"no answer within {timeout:g} s (discoveryTimeoutMs)"
        return self.state

    async def ensure(self) -> None:
        """Reconnect a server that failed or died (before a call)."""
        if self.state != "connected":
            await self.start()

    async def _run(self) -> None:
        client = None
        try:
            async with self._client_context() as client:
                self._client = client
                self.listing = await self._list(client)
                self.state = "connected"
                self._ready.set()
                await self._stop.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the SDK raises exception groups from its task groups
            self.state = "failed"
            self.error = self._describe(exc)
            if _needs_sign_in(exc):
                self.error = f"needs sign-in: /mcp auth {self.name}"
        finally:
            if self._client is client:
                self._client = None
            if self._errlog is not None:
                self._errlog.close()
                self._errlog = None
            if self.state == "connected":
                self.state = "failed"
                self.error = self.error or "the connection closed"
            self._ready.set()

    def _client_context(self) -> Any:
        from mcp import Client

        return Client(
            self._transport(),
            mode="legacy",
            message_handler=self._notified,
            read_timeout_seconds=self.config.timeout_s(),
        )

    def _transport(self) -> Any:
        config = self.config
        kind = config.transport()
        if kind == "stdio":
            from mcp.client.stdio import StdioServerParameters, stdio_client

            params = StdioServerParameters(
                command=config.command or "",
                args=config.args,
                env=_server_env(config.env) if config.env else None,
                cwd=config.cwd,
            )
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._errlog = self.log_path.open("a", encoding="utf-8")
            return stdio_client(params, errlog=self._errlog)
        if kind == "sdk":  # the program's own server, over the control protocol
            from qwen_code.mcp.sdk_channel import sdk_transport

            return sdk_transport(self.name)
        auth = self._oauth()
        if kind == "sse":
            from mcp.client.sse import sse_client

            return sse_client(config.endpoint(), headers=dict(config.headers), auth=auth)
        return _http_transport(config.endpoint(), dict(config.headers), auth)

    def _oauth(self) -> Any:
        """The OAuth provider for a remote server (tokens from `$QWEN_HOME/mcp-oauth/`;
        never asks: a server that needs a sign-in fails with "run /mcp auth NAME"), unless
        the user sends an Authorization header of their own or turned OAuth off."""
        from qwen_code.mcp.oauth import oauth_auth, uses_oauth
        from qwen_code.settings_files import qwen_home

        if not uses_oauth(self.config.oauth, self.config.headers):
            return None
        home = qwen_home(self._env)
        return oauth_auth(
            self.name, self.config.endpoint(), home, sign_in=None, settings=self.config.oauth
        )

    async def _list(self, client: Any) -> Listing:
        listing = Listing(tools=list((await client.list_tools()).tools))
        with contextlib.suppress(Exception):  # prompts and resources are optional
            listing.prompts = list((await client.list_prompts()).prompts)
        with contextlib.suppress(Exception):
            listing.resources = list((await client.list_resources()).resources)
        return listing

    async def _notified(self, message: Any) -> None:
        """A list-changed notice: list again (in a task of its own: this handler runs in
        the SDK's receive loop, which must keep running to deliver the answer), then let
        the manager re-register the tools."""
        method = getattr(message, "method", "")
        if isinstance(method, str) and method.endswith("/list_changed"):
            self._refresh = asyncio.get_running_loop().create_task(self._relist())

    async def _relist(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self.listing = await self._list(self._client)
        if self._on_change is not None:
            self._on_change(self)

    async def settle(self) -> None:
        """Wait for a re-listing a notice started (a tool call that changed the server's
        tools is answered only once the registry shows the change)."""
        refresh, self._refresh = self._refresh, None
        if refresh is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(refresh, self.config.discovery_timeout_s())

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        client = await self._live()
        return await client.call_tool(name, arguments, read_timeout_seconds=self.config.timeout_s())

    async def get_prompt(self, name: str, arguments: dict[str, str]) -> Any:
        client = await self._live()
        return await client.get_prompt(name, arguments)

    async def read_resource(self, uri: str) -> Any:
        client = await self._live()
        return await client.read_resource(uri)

    async def _live(self) -> Any:
        await self.ensure()
        if self._client is None:
            raise ConnectionError(f"MCP server {self.name!r} is not connected: {self.error}")
        return self._client

    def mark_dead(self, exc: BaseException) -> None:
        """A call failed in a way that means the connection is gone."""
        self.state, self.error = "failed", self._describe(exc)
        self._stop.set()

    async def aclose(self) -> None:
        await self._finish_previous()
        self.state = "disabled" if self.state == "connected" else self.state

    async def _finish_previous(self) -> None:
        """Let the connection task close its client (at most a few seconds), so a new one
        never races an old one that is still shutting down."""
        self._stop.set()
        if self._task is not None and not self._task.done():
            grace = 5.0 if self.state == "connected" else 0.5  # a dead server has no goodbye
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            except (TimeoutError, Exception):
                await self._cancel()

    async def _cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    def _describe(self, exc: BaseException) -> str:
        """One line: the innermost error, plus the last line the server wrote to stderr."""
        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        text = str(exc).strip() or type(exc).__name__
        tail = _last_line(self.log_path)
        return f"{text} (server said: {tail})" if tail else text


@contextlib.asynccontextmanager
async def _http_transport(url: str, headers: dict[str, str], auth: Any) -> AsyncIterator[Any]:
    """Streamable HTTP on an HTTP client of our own (headers, OAuth), closed afterwards
    (the SDK does not close a client it was given)."""
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async with (
        create_mcp_http_client(headers=headers, auth=auth) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams


def _needs_sign_in(exc: BaseException) -> bool:
    from qwen_code.mcp.oauth import needs_oauth

    return needs_oauth(exc)


def _server_env(env: Mapping[str, str]) -> dict[str, str]:
    """The SDK's safe default environment (PATH, HOME, ...) plus the configured values."""
    from mcp.client.stdio import get_default_environment

    return {**get_default_environment(), **env}


def _last_line(path: Path) -> str:
    try:
        with path.open("rb") as log:
            log.seek(max(0, path.stat().st_size - 2048))
            lines = log.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60]
