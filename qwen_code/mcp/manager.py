"""The MCP servers of a session: started together, their tools in the registry, closed
at the end.

Servers start concurrently, each within its own discovery timeout; one that fails or
times out is reported once (`notes`) and skipped, never holding up the others. A
list-changed notice re-registers that server's tools. Project servers (the repository's
`.qwen/settings.json` or `.mcp.json`) start only after `approve` says yes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from qwen_code.mcp.config import ServerEntry
from qwen_code.mcp.connection import McpConnection
from qwen_code.mcp.tools import McpTool
from qwen_code.tools.registry import ToolRegistry

Approve = Callable[[ServerEntry], Awaitable[bool]]


@dataclass(slots=True)
class ServerStatus:
    name: str
    status: Literal["connected", "failed", "timeout", "pending", "disabled"]
    transport: str
    source: str
    tools: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    resources: int = 0
    error: str | None = None

    @classmethod
    def of(cls, connection: McpConnection) -> ServerStatus:
        listing = connection.listing
        connected = connection.state == "connected"
        return cls(
            name=connection.name,
            status=connection.state,
            transport=connection.config.transport(),
            source=connection.entry.source,
            tools=[t.name for t in listing.tools if connection.config.exposes(t.name)]
            if connected
            else [],
            prompts=[p.name for p in listing.prompts] if connected else [],
            resources=len(listing.resources) if connected else 0,
            error=connection.error,
        )


class McpManager:
    """The session's MCP connections and the tools they put in the registry."""

    def __init__(
        self,
        entries: Sequence[ServerEntry],
        *,
        registry: ToolRegistry,
        env: Mapping[str, str],
        log_dir: Path,
        project_trusted: bool = False,
    ) -> None:
        self.registry = registry
        self.project_trusted = project_trusted
        self.connections = [
            McpConnection(e, env=env, log_dir=log_dir, on_change=self._register) for e in entries
        ]
        self.skipped: dict[str, str] = {}
        """Servers not started, and why (not approved)."""
        self.notes: list[str] = []
        self._registered: dict[str, list[str]] = {}

    async def start(self, approve: Approve | None = None) -> list[ServerStatus]:
        """Start every server (each approved first when `approve` is given and it is a
        project server), register the tools of those that connected."""
        wanted = []
        for connection in self.connections:
            asks = approve is not None and connection.entry.from_repository
            if asks and not await approve(connection.entry):  # type: ignore[misc]
                connection.state = "disabled"
                self.skipped[connection.name] = "not approved"
                continue
            wanted.append(connection)
        await asyncio.gather(*(c.start() for c in wanted))
        for connection in wanted:
            if connection.state == "connected":
                self._register(connection)
            else:
                self.notes.append(
                    f"MCP server {connection.name!r} {_failure(connection)}: skipped."
                )
        return self.statuses()

    def statuses(self) -> list[ServerStatus]:
        return [ServerStatus.of(c) for c in self.connections]

    def connection(self, name: str) -> McpConnection | None:
        return next((c for c in self.connections if c.name == name), None)

    def _register(self, connection: McpConnection) -> None:
        """(Re)register a server's tools: the ones its config exposes, replacing the
        previous set (after a list-changed notice)."""
        for name in self._registered.pop(connection.name, []):
            self.registry.unregister(name)
        preapproved = connection.config.trust and (
            self.project_trusted or not connection.entry.from_repository
        )
        names = []
        for tool in connection.listing.tools:
            if not connection.config.exposes(tool.name):
                continue
            wrapped = McpTool(connection, tool, preapproved=preapproved)
            if wrapped.name in self.registry and wrapped.name not in names:
                continue  # a built-in or another server's tool of that name stays
            self.registry.register(wrapped, replace=True)
            names.append(wrapped.name)
        self._registered[connection.name] = names

    async def reconnect(self, name: str) -> ServerStatus | None:
        connection = self.connection(name)
        if connection is None:
            return None
        await connection.aclose()
        await connection.start()
        if connection.state == "connected":
            self._register(connection)
        return ServerStatus.of(connection)

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self.connections), return_exceptions=True)


async def probe(
    entry: ServerEntry, *, timeout_s: float, env: Mapping[str, str], scratch: Path
) -> ServerStatus:
    """Connect to one server, list what it offers, disconnect (`qwen-code mcp list`)."""
    entry = ServerEntry(
        entry.name,
        entry.config.model_copy(update={"discovery_timeout_ms": int(timeout_s * 1000)}),
        entry.source,
        entry.path,
    )
    connection = McpConnection(entry, env=env, log_dir=scratch)
    await connection.start()
    status = ServerStatus.of(connection)
    await connection.aclose()
    return status


def _failure(connection: McpConnection) -> str:
    if connection.state == "timeout":
        return f"timed out ({connection.error})"
    return f"failed to start ({connection.error})"
