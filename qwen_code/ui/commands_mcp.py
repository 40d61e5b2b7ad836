"""`/mcp` in the REPL: the MCP servers, their tools and resources, reconnecting; and, at
start-up, each connected server's prompts as slash commands (`qwen_code.ui.mcp_prompts`).
Everything a server says is printed as plain text, never as markup."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from rich.text import Text

from qwen_code.ui.commands import command
from qwen_code.ui.mcp_prompts import prompt_command_name, register_prompts
from qwen_code.ui.mcp_text import (
    count,
    error_line,
    first_sentence,
    plain_line,
    print_error,
)

if TYPE_CHECKING:
    from qwen_code.mcp.connection import McpConnection
    from qwen_code.mcp.manager import McpManager, ServerStatus
    from qwen_code.ui.repl import Repl

NO_SERVERS = "No MCP servers configured (see docs/mcp.md)."
SUBCOMMANDS = ("tools", "resources", "reconnect", "auth")


def setup(repl: Repl) -> None:
    """Register the prompt commands of the servers that connected."""
    register_prompts(repl.session.mcp)


def _mcp_args(repl: Repl) -> list[str]:
    manager = repl.session.mcp
    names = [c.name for c in manager.connections] if manager is not None else []
    return [*SUBCOMMANDS, *names]


@command(
    "mcp",
    "MCP servers; /mcp tools|resources [NAME], /mcp reconnect|auth NAME",
    args=_mcp_args,
)
async def _mcp(repl: Repl, args: str) -> None:
    manager = repl.session.mcp
    if manager is None:
        repl.console.print(Text(NO_SERVERS))
        return
    sub, _, rest = args.strip().partition(" ")
    sub, rest = sub.lower(), rest.strip()
    if not sub or sub in ("list", "status"):
        _show_servers(repl, manager)
    elif sub == "tools":
        _show_for_each(repl, manager, rest, _show_tools)
    elif sub == "resources":
        _show_for_each(repl, manager, rest, _show_resources)
    elif sub == "reconnect":
        await _reconnect(repl, manager, rest)
    elif sub == "auth":
        await _auth(repl, manager, rest)
    else:
        print_error(
            repl,
            f"Unknown /mcp subcommand {sub!r}. Use /mcp, /mcp tools [NAME], "
            "/mcp resources [NAME], /mcp reconnect NAME or /mcp auth NAME.",
        )


_SOURCES = {
    "user": "user settings",
    "project": "project settings",
    "mcp.json": ".mcp.json",
    "flag": "--mcp-config",
}


def status_label(status: ServerStatus, manager: McpManager) -> tuple[str, str]:
    """(label, style) for a server's state."""
    if status.status == "connected":
        return "✓ connected", "green"
    if status.status == "failed":
        return "✗ failed", "red"
    if status.status == "timeout":
        return "✗ timed out", "red"
    if status.status == "pending":
        return "… starting", "yellow"
    if manager.skipped.get(status.name) == "not approved":
        return "○ not approved", "yellow"
    return "○ disabled", "dim"


def _show_servers(repl: Repl, manager: McpManager) -> None:
    statuses = manager.statuses()
    register_prompts(manager)  # prompts may have changed (list-changed notices)
    console = repl.console
    console.print(Text(f"MCP servers ({len(statuses)}):", style="bold"))
    width = max((len(plain_line(s.name)) for s in statuses), default=0) + 2
    for status in statuses:
        label, style = status_label(status, manager)
        line = Text("  ")
        line.append(f"{plain_line(status.name):<{width}}", "bold")
        line.append(f"{label:<16}", style)
        line.append(f"{status.transport} · {_SOURCES.get(status.source, status.source)}", "dim")
        if status.status == "connected":
            line.append(
                f"   {count(len(status.tools), 'tool')} · {count(len(status.prompts), 'prompt')}"
                f" · {count(status.resources, 'resource')}"
            )
        console.print(line)
        connection = manager.connection(status.name)
        if connection is not None and connection.config.description:
            console.print(Text(f"      {plain_line(connection.config.description)}", style="dim"))
        if connection is not None and status.status != "connected":
            console.print(Text(f"      {connection.entry.config.command_line()}", style="dim"))
        if status.error and status.status != "connected":
            console.print(Text(f"      error: {plain_line(status.error)}", style="red"))
        if status.prompts:
            names = [f"/{prompt_command_name(status.name, p)}" for p in status.prompts]
            console.print(Text(f"      prompts: {', '.join(names)}", style="dim"))
    console.print(
        Text(
            "/mcp tools [NAME] · /mcp resources [NAME] · /mcp reconnect NAME · "
            "@server:uri attaches a resource",
            style="dim",
        )
    )


def _show_for_each(repl: Repl, manager: McpManager, name: str, show: Any) -> None:
    if name:
        connection = _server(repl, manager, name)
        if connection is not None:
            show(repl, connection)
        return
    for connection in manager.connections:
        show(repl, connection)


def _not_connected(repl: Repl, connection: McpConnection, what: str) -> bool:
    if connection.state == "connected":
        return False
    line = Text(f"{plain_line(connection.name)}", style="bold")
    why = f" ({plain_line(connection.error)})" if connection.error else ""
    line.append(f": not connected, no {what}{why}", "dim")
    repl.console.print(line)
    return True


def _show_tools(repl: Repl, connection: McpConnection) -> None:
    if _not_connected(repl, connection, "tools"):
        return
    tools = [t for t in connection.listing.tools if connection.config.exposes(t.name)]
    hidden = len(connection.listing.tools) - len(tools)
    head = Text(f"{plain_line(connection.name)}", style="bold")
    head.append(f" ({count(len(tools), 'tool')})")
    if hidden:
        head.append(f", {hidden} left out by includeTools/excludeTools", "dim")
    repl.console.print(head)
    width = max((len(plain_line(t.name)) for t in tools), default=0) + 2
    for tool in tools:
        line = Text(f"  {plain_line(tool.name):<{width}}")
        line.append(first_sentence(getattr(tool, "description", None) or ""))
        annotations = getattr(tool, "annotations", None)
        if annotations is not None and getattr(annotations, "read_only_hint", False):
            line.append("  read-only", "green")
        repl.console.print(line)


def _show_resources(repl: Repl, connection: McpConnection) -> None:
    if _not_connected(repl, connection, "resources"):
        return
    resources = connection.listing.resources
    head = Text(f"{plain_line(connection.name)}", style="bold")
    head.append(f" ({count(len(resources), 'resource')})")
    repl.console.print(head)
    for resource in resources:
        line = Text(f"  {plain_line(str(resource.uri))}")
        name = plain_line(getattr(resource, "name", None) or "")
        if name:
            line.append(f"  {name}", "bold")
        mime = getattr(resource, "mime_type", None)
        if mime:
            line.append(f"  ({plain_line(mime)})", "dim")
        repl.console.print(line)
        description = plain_line(getattr(resource, "description", None) or "")
        if description:
            repl.console.print(Text(f"      {description}", style="dim"))
        paste = Text("      paste: ", style="dim")
        paste.append(f"@{connection.name}:{resource.uri}", "cyan")
        repl.console.print(paste)


async def _auth(repl: Repl, manager: McpManager, name: str) -> None:
    """Sign in to a remote server with OAuth (browser, or the URL to open), keep the
    tokens under $QWEN_HOME/mcp-oauth/, and reconnect."""
    connection = _server(repl, manager, name, usage="/mcp auth NAME")
    if connection is None:
        return
    config = connection.config
    if config.transport() == "stdio":
        print_error(repl, f"{name!r} runs as a local command: it has no sign-in.")
        return
    task = asyncio.ensure_future(_sign_in(repl, connection))
    try:
        done, _ = await repl.io.run_cancellable(task)
    except Exception as exc:
        print_error(repl, f"Signing in to {name!r} failed: {error_line(exc)}")
        return
    if not done:
        repl.console.print("[yellow]Sign-in interrupted.[/yellow]")
        return
    repl.console.print(Text(f"Signed in to {name}.", style="green"))
    await _reconnect(repl, manager, name)


async def _sign_in(repl: Repl, connection: McpConnection) -> None:
    from qwen_code.mcp.oauth import SignIn, authenticate

    def show(url: str) -> None:
        repl.console.print(Text(f"Sign in to {connection.name} in your browser: {url}"))

    config = connection.config
    with SignIn(show) as sign_in:
        await authenticate(
            connection.name,
            config.endpoint(),
            repl.home,
            sign_in=sign_in,
            transport="sse" if config.transport() == "sse" else "http",
            headers=config.headers,
            settings=config.oauth,
        )


async def _reconnect(repl: Repl, manager: McpManager, name: str) -> None:
    connection = _server(repl, manager, name, usage="/mcp reconnect NAME")
    if connection is None:
        return
    if name in manager.skipped:
        print_error(
            repl,
            f"The MCP server {name!r} was not started ({manager.skipped[name]}); start "
            "qwen-code again to be asked, or pass --trust-workspace.",
        )
        return
    repl.console.print(Text(f"Reconnecting {name}…", style="dim"))
    task = asyncio.ensure_future(manager.reconnect(name))
    try:
        done, status = await repl.io.run_cancellable(task)
    except Exception as exc:
        print_error(repl, f"Reconnecting {name!r} failed: {error_line(exc)}")
        return
    finally:
        register_prompts(manager)
    if not done:
        repl.console.print("[yellow]Interrupted.[/yellow]")
        return
    if status is None:
        return
    label, style = status_label(status, manager)
    line = Text(f"{name}: ")
    line.append(label, style)
    if status.status == "connected":
        line.append(
            f"  {count(len(status.tools), 'tool')} · {count(len(status.prompts), 'prompt')}"
            f" · {count(status.resources, 'resource')}"
        )
    elif status.error:
        line.append(f"  {plain_line(status.error)}", "red")
    repl.console.print(line)


def _server(
    repl: Repl, manager: McpManager, name: str, *, usage: str | None = None
) -> McpConnection | None:
    if not name:
        print_error(repl, f"Usage: {usage}")
        return None
    connection = manager.connection(name)
    if connection is None:
        known = ", ".join(c.name for c in manager.connections)
        print_error(repl, f"No MCP server named {name!r}. Configured: {known}.")
    return connection
