"""`qwen-code mcp add|remove|list|get`: manage MCP servers as Qwen Code's `qwen mcp` does.

`add` and `remove` edit `mcpServers` in the user's settings (`$QWEN_HOME/settings.json`,
the default scope) or the project's (`.qwen/settings.json` at the project root), keeping
the rest of the file. `list` and `get` connect to the servers (`qwen_code.mcp.manager.probe`)
to show whether they work and what tools they offer. A server that the repository itself
configures (the project's settings, `.mcp.json`) is a command the repository wants to run:
in a folder that is not trusted it is listed but never started.

Only typer is imported at module level; settings, the MCP configuration and the MCP SDK
are imported inside the commands (the SDK only by `list` and `get`, when they connect).
`register(app)` adds the group to the main app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from qwen_code.cli_help import HelpGroup
from qwen_code.cli_mcp_edit import (
    SCOPES,
    McpCommandError,
    add_server,
    pick_transport,
    remove_server,
    server_config,
    split_list,
)
from qwen_code.cli_mcp_list import (
    describe_server,
    folder_trusted,
    load_listing,
    probe,
    status_text,
    summary,
)
from qwen_code.environment import from_context

if TYPE_CHECKING:
    pass

mcp_app = typer.Typer(
    cls=HelpGroup,
    help="Manage MCP servers (tools from other programs): add, remove, list, get.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def register(app: typer.Typer) -> None:
    """Add `qwen-code mcp ...` to the main app."""
    app.add_typer(mcp_app, name="mcp")


# --- add -------------------------------------------------------------------------------

ScopeOpt = Annotated[
    str | None,
    typer.Option(
        "-s", "--scope", metavar="SCOPE", help="user ($QWEN_HOME/settings.json) or project."
    ),
]


NameArg = Annotated[str, typer.Argument(metavar="NAME", help="A name for the server.")]
CommandArg = Annotated[
    str, typer.Argument(metavar="COMMAND_OR_URL", help="Command (stdio) or URL (http, sse).")
]

ArgsArg = Annotated[
    list[str] | None,
    typer.Argument(metavar="ARGS", help="Arguments of a stdio command (after -- too)."),
]

TransportOpt = Annotated[
    str | None,
    typer.Option(
        "-t",
        "--transport",
        metavar="TRANSPORT",
        help="stdio, http or sse (default: http for an http(s):// URL, else stdio).",
    ),
]

EnvOpt = Annotated[
    list[str] | None,
    typer.Option("-e", "--env", metavar="KEY=VALUE", help="Environment of a stdio server."),
]

HeaderOpt = Annotated[
    list[str] | None,
    typer.Option("-H", "--header", metavar="'K: V'", help="HTTP header (http, sse)."),
]

TimeoutOpt = Annotated[
    int | None, typer.Option("--timeout", metavar="MS", help="Tool call timeout (ms).")
]

TrustOpt = Annotated[
    bool, typer.Option("--trust", help="Run its tools without asking (trusted folders).")
]

DescriptionOpt = Annotated[
    str | None, typer.Option("--description", help="What the server is for.")
]

IncludeOpt = Annotated[
    list[str] | None,
    typer.Option("--include-tools", metavar="A,B", help="Only these tools."),
]

ExcludeOpt = Annotated[
    list[str] | None,
    typer.Option("--exclude-tools", metavar="A,B", help="Never these tools."),
]

CwdOpt = Annotated[
    str | None, typer.Option("--cwd", metavar="DIR", help="Working directory (stdio).")
]


@mcp_app.command(
    "add",
    context_settings={"ignore_unknown_options": True},
    epilog="Examples: qwen-code mcp add tools python -m my_server --port 8080 | "
    "qwen-code mcp add -e KEY=v tools -- npx -y some-server | "
    "qwen-code mcp add -t http remote https://host/mcp -H 'Authorization: Bearer T'",
)
def mcp_add(
    ctx: typer.Context,
    name: NameArg,
    command_or_url: CommandArg,
    args: ArgsArg = None,
    scope: ScopeOpt = None,
    transport: TransportOpt = None,
    env_vars: EnvOpt = None,
    headers: HeaderOpt = None,
    timeout: TimeoutOpt = None,
    trust: TrustOpt = False,
    description: DescriptionOpt = None,
    include_tools: IncludeOpt = None,
    exclude_tools: ExcludeOpt = None,
    cwd: CwdOpt = None,
) -> None:
    """Add (or replace) an MCP server.

    Written to the user's settings ($QWEN_HOME/settings.json), or with --scope project to
    the project's .qwen/settings.json. Options of the server's own command go after `--`
    (qwen-code mcp add NAME -- COMMAND ARGS...); unknown options are passed to it too.
    """
    env = from_context(ctx)
    chosen = _scope(scope) or "user"
    kind = pick_transport(transport, command_or_url)
    entry = server_config(
        command_or_url,
        list(args or ()),
        transport=kind,
        env=env_vars or (),
        headers=headers or (),
        cwd=cwd,
        timeout=timeout,
        trust=trust,
        description=description,
        include_tools=split_list(include_tools),
        exclude_tools=split_list(exclude_tools),
    )
    path, replaced = add_server(name, entry, chosen, cwd=env.cwd, home=env.home)
    verb = "Updated" if replaced else "Added"
    where = "in" if replaced else "to"
    print(f'{verb} {kind} MCP server "{name}" {where} {chosen} settings ({path}).', file=env.stdout)
    if chosen == "project" and not folder_trusted(env):
        print(
            "Note: this folder is not trusted, so its project MCP servers do not start "
            "(trust it with /trust in a session, or use --scope user).",
            file=env.stdout,
        )


def _scope(value: str | None) -> str | None:
    if value is None:
        return None
    scope = value.strip().lower()
    if scope not in SCOPES:
        raise McpCommandError(f"--scope: {value!r} is not a scope; use user or project.")
    return scope


# --- remove ----------------------------------------------------------------------------


@mcp_app.command("remove")
def mcp_remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The server's name.")],
    scope: ScopeOpt = None,
) -> None:
    """Remove an MCP server.

    Without --scope: from the user's settings if it is there, else from the project's."""
    env = from_context(ctx)
    removed, path, others = remove_server(name, _scope(scope), cwd=env.cwd, home=env.home)
    print(f'Removed MCP server "{name}" from {removed} settings ({path}).', file=env.stdout)
    for other in others:
        print(
            f'It is still configured in {other} settings: qwen-code mcp remove -s {other} "{name}"',
            file=env.stdout,
        )


# --- list and get ----------------------------------------------------------------------


@mcp_app.command("list")
def mcp_list(ctx: typer.Context) -> None:
    """List MCP servers and whether they connect.

    Every server is tried at once, each for 10 s (or its discoveryTimeoutMs). The
    project's servers are not started in a folder that is not trusted."""
    env = from_context(ctx)
    listed = load_listing(env)
    if not listed:
        print("No MCP servers configured.", file=env.stdout)
        return
    results = probe(listed)
    print("Configured MCP servers:\n", file=env.stdout)
    for item, result in zip(listed, results, strict=True):
        print(f"{summary(item)} - {status_text(item, result, env)}", file=env.stdout)


@mcp_app.command("get")
def mcp_get(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The server's name.")],
) -> None:
    """Show one MCP server and its tools.

    Its configuration (env and header values masked), where it is configured, and its
    status and tools after connecting to it."""
    env = from_context(ctx)
    item = next((i for i in load_listing(env) if i.entry.name == name), None)
    if item is None:
        raise McpCommandError(f'No MCP server named "{name}" (see qwen-code mcp list).')
    (result,) = probe([item])
    for line in describe_server(item, env.home):
        print(line, file=env.stdout)
    print(f"  Status: {status_text(item, result, env)}", file=env.stdout)
    if result is not None and not isinstance(result, BaseException) and result.tools:
        print(f"  Tools ({len(result.tools)}):", file=env.stdout)
        for tool in result.tools:  # those its includeTools/excludeTools let through
            print(f"    {tool}", file=env.stdout)
    if item.entry.source in SCOPES:
        print(
            f'\nTo remove it: qwen-code mcp remove -s {item.entry.source} "{name}"',
            file=env.stdout,
        )
