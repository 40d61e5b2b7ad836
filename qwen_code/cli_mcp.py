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

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qwen_code.environment import Environment, from_context
from qwen_code.errors import ExitCode, QwenCodeError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from qwen_code.mcp.config import ServerEntry
    from qwen_code.mcp.manager import ServerStatus
    from qwen_code.settings_model import Settings

SCOPES = ("user", "project")
TRANSPORTS = ("stdio", "http", "sse")
PROBE_TIMEOUT_S = 10.0
"""How long `list`/`get` wait for a server to connect and list its tools, unless its
`discoveryTimeoutMs` says otherwise (Qwen Code's `qwen mcp list` waits 10 s)."""
NOT_TRUSTED = "not started (folder not trusted)"


class McpCommandError(QwenCodeError):
    """A `qwen-code mcp` command cannot do what was asked: one line, exit code 1."""

    exit_code = ExitCode.ERROR


mcp_app = typer.Typer(
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


@mcp_app.command(
    "add",
    context_settings={"ignore_unknown_options": True},
    epilog="Examples: qwen-code mcp add tools python -m my_server --port 8080 | "
    "qwen-code mcp add -e KEY=v tools -- npx -y some-server | "
    "qwen-code mcp add -t http remote https://host/mcp -H 'Authorization: Bearer T'",
)
def mcp_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="A name for the server.")],
    command_or_url: Annotated[
        str, typer.Argument(metavar="COMMAND_OR_URL", help="Command (stdio) or URL (http, sse).")
    ],
    args: Annotated[
        list[str] | None,
        typer.Argument(metavar="ARGS", help="Arguments of a stdio command (after -- too)."),
    ] = None,
    scope: ScopeOpt = None,
    transport: Annotated[
        str | None,
        typer.Option(
            "-t",
            "--transport",
            metavar="TRANSPORT",
            help="stdio, http or sse (default: http for an http(s):// URL, else stdio).",
        ),
    ] = None,
    env_vars: Annotated[
        list[str] | None,
        typer.Option("-e", "--env", metavar="KEY=VALUE", help="Environment of a stdio server."),
    ] = None,
    headers: Annotated[
        list[str] | None,
        typer.Option("-H", "--header", metavar="'K: V'", help="HTTP header (http, sse)."),
    ] = None,
    timeout: Annotated[
        int | None, typer.Option("--timeout", metavar="MS", help="Tool call timeout (ms).")
    ] = None,
    trust: Annotated[
        bool, typer.Option("--trust", help="Run its tools without asking (trusted folders).")
    ] = False,
    description: Annotated[
        str | None, typer.Option("--description", help="What the server is for.")
    ] = None,
    include_tools: Annotated[
        list[str] | None,
        typer.Option("--include-tools", metavar="A,B", help="Only these tools."),
    ] = None,
    exclude_tools: Annotated[
        list[str] | None,
        typer.Option("--exclude-tools", metavar="A,B", help="Never these tools."),
    ] = None,
    cwd: Annotated[
        str | None, typer.Option("--cwd", metavar="DIR", help="Working directory (stdio).")
    ] = None,
) -> None:
    """Add (or replace) an MCP server.

    Written to the user's settings ($QWEN_HOME/settings.json), or with --scope project to
    the project's .qwen/settings.json. Options of the server's own command go after `--`
    (qwen-code mcp add NAME -- COMMAND ARGS...); unknown options are passed to it too.
    """
    env = from_context(ctx)
    chosen = _scope(scope) or "user"
    kind = _transport(transport, command_or_url)
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
        include_tools=_split(include_tools),
        exclude_tools=_split(exclude_tools),
    )
    path, replaced = add_server(name, entry, chosen, cwd=env.cwd, home=env.home)
    verb = "Updated" if replaced else "Added"
    where = "in" if replaced else "to"
    print(f'{verb} {kind} MCP server "{name}" {where} {chosen} settings ({path}).', file=env.stdout)
    if chosen == "project" and not _folder_trusted(env):
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


def _transport(value: str | None, command_or_url: str) -> str:
    if value is None:
        return "http" if _is_url(command_or_url) else "stdio"
    kind = value.strip().lower()
    if kind not in TRANSPORTS:
        raise McpCommandError(f"--transport: {value!r} is not a transport; use stdio, http or sse.")
    return kind


def _is_url(text: str) -> bool:
    return bool(re.match(r"https?://", text, re.IGNORECASE))


def _split(values: Sequence[str] | None) -> list[str] | None:
    """`--include-tools a,b --include-tools c` → ["a", "b", "c"]; None when not given."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def server_config(
    command_or_url: str,
    args: Sequence[str] = (),
    *,
    transport: str = "stdio",
    env: Sequence[str] = (),
    headers: Sequence[str] = (),
    cwd: str | None = None,
    timeout: int | None = None,
    trust: bool = False,
    description: str | None = None,
    include_tools: Sequence[str] | None = None,
    exclude_tools: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The `mcpServers` entry `qwen-code mcp add` writes, in Qwen Code's keys: stdio
    `{command, args, env?, cwd?, ...}`, http `{httpUrl, headers?, ...}`, sse
    `{url, headers?, ...}`. `env` items are `KEY=VALUE`, `headers` items `Name: value`.
    Raises `McpCommandError` for input that does not fit the transport."""
    if not command_or_url.strip():
        raise McpCommandError("The command or URL is empty.")
    if transport == "stdio":
        if headers:
            raise McpCommandError("-H/--header applies to http and sse servers, not stdio.")
        entry = _stdio_entry(command_or_url, args, env, cwd)
    else:
        if env or cwd:
            raise McpCommandError("-e/--env and --cwd apply to stdio servers only.")
        entry = _remote_entry(transport, command_or_url, args, headers)
    if timeout is not None:
        if timeout <= 0:
            raise McpCommandError(f"--timeout is in milliseconds and must be positive: {timeout}.")
        entry["timeout"] = timeout
    optional = {
        "trust": True if trust else None,
        "description": description or None,
        "includeTools": list(include_tools) if include_tools is not None else None,
        "excludeTools": list(exclude_tools) if exclude_tools else None,
    }
    entry.update({key: value for key, value in optional.items() if value is not None})
    return entry


def _stdio_entry(
    command: str, args: Sequence[str], env: Sequence[str], cwd: str | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"command": command, "args": list(args)}
    if env:
        entry["env"] = _env_pairs(env)
    if cwd:
        entry["cwd"] = cwd
    return entry


def _remote_entry(
    transport: str, url: str, args: Sequence[str], headers: Sequence[str]
) -> dict[str, Any]:
    if not _is_url(url):
        raise McpCommandError(f"A {transport} server needs an http(s):// URL, not {url!r}.")
    if args:
        raise McpCommandError(
            f"A {transport} server takes a URL and no arguments (got {' '.join(args)!r})."
        )
    entry: dict[str, Any] = {"httpUrl" if transport == "http" else "url": url}
    if headers:
        entry["headers"] = _header_pairs(headers)
    return entry


def _env_pairs(items: Sequence[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _ENV_NAME.fullmatch(key):
            raise McpCommandError(f"-e/--env takes KEY=VALUE, not {item!r}.")
        pairs[key] = value
    return pairs


def _header_pairs(items: Sequence[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition(":")
        if not sep or not key.strip() or not value.strip():
            raise McpCommandError(f"-H/--header takes 'Name: value', not {item!r}.")
        pairs[key.strip()] = value.strip()
    return pairs


def add_server(
    name: str, entry: Mapping[str, Any], scope: str, *, cwd: Path, home: Path
) -> tuple[Path, bool]:
    """Write `mcpServers.NAME = entry` to the scope's settings file (atomically, keeping
    the rest of it); returns the file and whether an existing server was replaced."""
    if not name.strip() or name.startswith("-"):
        raise McpCommandError(f"{name!r} is not a server name.")
    path = _scope_file(scope, cwd=cwd, home=home)
    replaced = False

    def put(current: Any) -> dict[str, Any]:
        nonlocal replaced
        servers = dict(current) if isinstance(current, dict) else {}
        replaced = name in servers
        servers[name] = dict(entry)
        return servers

    from qwen_code.settings_files import update_settings_file

    _guard(update_settings_file, path, ("mcpServers",), put)
    return path, replaced


def _scope_file(scope: str, *, cwd: Path, home: Path) -> Path:
    from qwen_code.settings_files import settings_path

    path = settings_path("project" if scope == "project" else "user", cwd=cwd, home=home)
    if scope == "project" and path.resolve() == (home / "settings.json").resolve():
        raise McpCommandError(
            "This folder's project settings are your user settings: use --scope user."
        )
    return path


def _guard(function: Any, *args: Any) -> Any:
    """Call `function`; a settings error or a failed write becomes one line, exit code 1."""
    try:
        return function(*args)
    except QwenCodeError as exc:
        raise McpCommandError(exc.message) from exc
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        raise McpCommandError(f"Cannot write{where}: {exc.strerror or exc}.") from exc


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


def remove_server(
    name: str, scope: str | None, *, cwd: Path, home: Path
) -> tuple[str, Path, list[str]]:
    """Delete `mcpServers.NAME` from `scope`'s file (None: the first scope that has it,
    user then project). Returns the scope, its file and the other scopes that still have
    the name; a name found nowhere is a `McpCommandError`."""
    found = [s for s in SCOPES if name in _servers_in(s, cwd=cwd, home=home)]
    if scope is not None:
        if scope not in found:
            raise McpCommandError(f'No MCP server "{name}" in {scope} settings.{_hint(name, cwd)}')
        chosen = scope
    elif found:
        chosen = found[0]
    else:
        raise McpCommandError(
            f'No MCP server "{name}" in user or project settings.{_hint(name, cwd)}'
        )
    path = _scope_file(chosen, cwd=cwd, home=home)

    def drop(current: Any) -> dict[str, Any]:
        servers = dict(current) if isinstance(current, dict) else {}
        servers.pop(name, None)
        return servers

    from qwen_code.settings_files import update_settings_file

    _guard(update_settings_file, path, ("mcpServers",), drop)
    return chosen, path, [s for s in found if s != chosen]


def _hint(name: str, cwd: Path) -> str:
    """For a name that only `.mcp.json` (Claude Code's file) has: where to remove it."""
    mcp_json = _mcp_json_path(cwd)
    if mcp_json is None:
        return ""
    try:
        from qwen_code.mcp.config import read_server_file

        if name in read_server_file(mcp_json):
            return f" It is in {mcp_json}: edit that file to remove it."
    except QwenCodeError:
        pass
    return ""


def _servers_in(scope: str, *, cwd: Path, home: Path) -> dict[str, Any]:
    """The raw `mcpServers` of one scope's file ({} when there is none)."""
    from qwen_code.settings_files import read_settings_file

    path = _scope_file(scope, cwd=cwd, home=home) if scope == "user" else _project_file(cwd, home)
    if path is None or not path.is_file():
        return {}
    servers = _guard(read_settings_file, path).get("mcpServers")
    return servers if isinstance(servers, dict) else {}


def _project_file(cwd: Path, home: Path) -> Path | None:
    from qwen_code.settings_files import find_project_settings

    return find_project_settings(cwd, home)


def _mcp_json_path(cwd: Path) -> Path | None:
    from qwen_code.settings_files import project_root

    path = project_root(cwd) / ".mcp.json"
    return path if path.is_file() else None


# --- list and get ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listed:
    """A configured server as `list` and `get` show it: `blocked` says why it is not
    started (not trusted, excluded by `mcp.excluded`/`mcp.allowed`), None when it may be."""

    entry: ServerEntry
    blocked: str | None = None


def server_listing(settings: Settings, *, cwd: Path, home: Path, warn: Any = None) -> list[Listed]:
    """Every server configured for this folder: what a session would start (user and
    project settings, `.mcp.json`), then the servers the settings filter out, then those
    the repository configures in a folder that is not trusted (read from the raw files,
    as `load_settings` leaves them out). `warn(line)` hears about unreadable ones."""
    from qwen_code.mcp.config import configured_servers

    unfiltered_settings = settings.model_copy(update={"mcp": type(settings.mcp)()})
    everything = configured_servers(unfiltered_settings, cwd=cwd)
    allowed = {e.name for e in configured_servers(settings, cwd=cwd)}
    listed = [Listed(e, _blocked(e, allowed, settings, cwd, home)) for e in everything]
    if not settings.trust.granted:
        names = {e.name for e in everything}
        for entry in _repository_servers(cwd, home, warn):
            if entry.name not in names:
                names.add(entry.name)
                listed.append(Listed(entry, NOT_TRUSTED))
    return listed


NOT_APPROVED = "not started (not approved yet: a session in this folder asks first)"


def _blocked(
    entry: ServerEntry, allowed: set[str], settings: Settings, cwd: Path, home: Path
) -> str | None:
    """Why a server is listed but not connected to: filtered out, or a repository's
    server the user has not approved (listing must not run a command the session would
    have asked about)."""
    from qwen_code.session.mcp_setup import ApprovedServers
    from qwen_code.settings_files import project_root

    if entry.name not in allowed:
        return _filtered(settings)
    explicit = settings.trust is not None and settings.trust.source in ("flag", "env")
    approved = explicit or ApprovedServers(home).approved(project_root(cwd), entry)
    return NOT_APPROVED if entry.from_repository and not approved else None


def _filtered(settings: Settings) -> str:
    if settings.mcp.allowed is not None:
        return "disabled (mcp.excluded or not in mcp.allowed)"
    return "disabled (mcp.excluded)"


def _repository_servers(cwd: Path, home: Path, warn: Any) -> list[ServerEntry]:
    """The servers of the project's settings file and `.mcp.json`, read as written."""
    from qwen_code.mcp.config import ServerEntry, parse_servers, read_server_file
    from qwen_code.settings_files import read_settings_file

    found: list[ServerEntry] = []
    project = _project_file(cwd, home)
    raw = read_settings_file(project).get("mcpServers") if project else None
    for name, value in raw.items() if isinstance(raw, dict) else ():
        try:
            config = parse_servers({name: value}, str(project))[name]
        except QwenCodeError as exc:
            if warn:
                warn(f"Warning: {exc.message}")
            continue
        found.append(ServerEntry(name, config, "project", project))
    mcp_json = _mcp_json_path(cwd)
    if mcp_json is not None:
        try:
            servers = read_server_file(mcp_json)
        except QwenCodeError as exc:
            if warn:
                warn(f"Warning: {exc.message}")
            servers = {}
        found.extend(ServerEntry(n, c, "mcp.json", mcp_json) for n, c in servers.items())
    return found


async def probe_servers(
    listed: Sequence[Listed], *, environ: Mapping[str, str], scratch: Path
) -> list[ServerStatus | BaseException | None]:
    """Connect to every server that may start, all at once; None for a blocked one, the
    exception for a probe that failed outright."""
    import asyncio

    from qwen_code.mcp.manager import probe

    async def one(item: Listed) -> ServerStatus | None:
        if item.blocked:
            return None
        timeout_s = _probe_timeout(item.entry)
        return await asyncio.wait_for(
            probe(item.entry, timeout_s=timeout_s, env=environ, scratch=scratch),
            timeout_s + 5,
        )

    return await asyncio.gather(*(one(item) for item in listed), return_exceptions=True)


def _probe_timeout(entry: ServerEntry) -> float:
    ms = entry.config.discovery_timeout_ms
    return ms / 1000 if ms else PROBE_TIMEOUT_S


@mcp_app.command("list")
def mcp_list(ctx: typer.Context) -> None:
    """List MCP servers and whether they connect.

    Every server is tried at once, each for 10 s (or its discoveryTimeoutMs). The
    project's servers are not started in a folder that is not trusted."""
    env = from_context(ctx)
    listed = _load_listing(env)
    if not listed:
        print("No MCP servers configured.", file=env.stdout)
        return
    results = _probe(listed)
    print("Configured MCP servers:\n", file=env.stdout)
    for item, result in zip(listed, results, strict=True):
        print(f"{_summary(item)} - {_status_text(item, result, env)}", file=env.stdout)


@mcp_app.command("get")
def mcp_get(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The server's name.")],
) -> None:
    """Show one MCP server and its tools.

    Its configuration (env and header values masked), where it is configured, and its
    status and tools after connecting to it."""
    env = from_context(ctx)
    item = next((i for i in _load_listing(env) if i.entry.name == name), None)
    if item is None:
        raise McpCommandError(f'No MCP server named "{name}" (see qwen-code mcp list).')
    (result,) = _probe([item])
    for line in describe_server(item, env.home):
        print(line, file=env.stdout)
    print(f"  Status: {_status_text(item, result, env)}", file=env.stdout)
    if result is not None and not isinstance(result, BaseException) and result.tools:
        print(f"  Tools ({len(result.tools)}):", file=env.stdout)
        for tool in result.tools:  # those its includeTools/excludeTools let through
            print(f"    {tool}", file=env.stdout)
    if item.entry.source in SCOPES:
        print(
            f'\nTo remove it: qwen-code mcp remove -s {item.entry.source} "{name}"',
            file=env.stdout,
        )


def _load_listing(env: Environment) -> list[Listed]:
    from qwen_code.config import load_settings

    def warn(line: str) -> None:
        print(line, file=env.stderr)

    def load() -> list[Listed]:
        settings = load_settings(cwd=env.cwd, home=env.home)
        return server_listing(settings, cwd=env.cwd.resolve(), home=env.home, warn=warn)

    return _guard(load)


def _probe(listed: Sequence[Listed]) -> list[ServerStatus | BaseException | None]:
    if all(item.blocked for item in listed):
        return [None] * len(listed)  # nothing to connect to: the SDK stays unloaded
    import asyncio
    import os
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="qwen-code-mcp-") as scratch:
        return asyncio.run(probe_servers(listed, environ=os.environ, scratch=Path(scratch)))


def _summary(item: Listed) -> str:
    entry = item.entry
    source = ".mcp.json" if entry.source == "mcp.json" else entry.source
    return f"{entry.name}: {entry.config.command_line()} ({entry.config.transport()}, {source})"


def _status_text(
    item: Listed, result: ServerStatus | BaseException | None, env: Environment
) -> str:
    ok, bad = _marks(env)
    if item.blocked:
        return item.blocked
    if result is None:
        return f"{bad} Failed: not probed"
    if isinstance(result, TimeoutError):
        return f"{bad} Timed out"
    if isinstance(result, BaseException):
        return f"{bad} Failed: {_one_line(str(result) or type(result).__name__)}"
    if result.status == "connected":
        count = len(result.tools)
        return f"{ok} Connected, {count} tool{'' if count == 1 else 's'}"
    if result.status == "timeout":
        return f"{bad} Timed out"
    if result.status == "disabled":
        return "disabled"
    return f"{bad} Failed: {_one_line(result.error or result.status)}"


def _marks(env: Environment) -> tuple[str, str]:
    """✓ and ✗, or plain letters where the output cannot encode them."""
    encoding = getattr(env.stdout, "encoding", None) or "utf-8"
    try:
        "✓✗".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "+", "x"
    return "✓", "✗"


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


_REFERENCE = re.compile(r"\$(\{\w+\}|\w+)")


def mask(value: str) -> str:
    """A secret as `get` shows it: `***`, unless it only names environment variables
    (`$TOKEN`, `Bearer ${TOKEN}`), which is no secret."""
    if _REFERENCE.search(value):
        rest = re.sub(r"(?i)\b(bearer|basic|token)\b", "", _REFERENCE.sub("", value))
        if not rest.strip():
            return value
    return "***"


def describe_server(item: Listed, home: Path) -> list[str]:
    """The configuration lines of `qwen-code mcp get` (env and header values masked)."""
    entry, config = item.entry, item.entry.config
    path = entry.path or (home / "settings.json" if entry.source == "user" else None)
    source = ".mcp.json" if entry.source == "mcp.json" else entry.source
    lines = [f"{entry.name}:", f"  Scope: {source}{f' ({path})' if path else ''}"]
    lines.append(f"  Transport: {config.transport()}")
    if config.transport() == "stdio":
        lines.append(f"  Command: {config.command_line()}")
        if config.cwd:
            lines.append(f"  Working directory: {config.cwd}")
    else:
        lines.append(f"  URL: {config.endpoint()}")
    if config.env:
        lines.append("  Environment:")
        lines.extend(f"    {k}={mask(v)}" for k, v in config.env.items())
    if config.headers:
        lines.append("  Headers:")
        lines.extend(f"    {k}: {mask(v)}" for k, v in config.headers.items())
    if config.timeout:
        lines.append(f"  Timeout: {config.timeout} ms")
    if config.trust:
        lines.append("  Trust: yes (its tools run without asking, in a trusted folder)")
    if config.description:
        lines.append(f"  Description: {config.description}")
    if config.include_tools is not None:
        lines.append(f"  Include tools: {', '.join(config.include_tools) or '(none)'}")
    if config.exclude_tools:
        lines.append(f"  Exclude tools: {', '.join(config.exclude_tools)}")
    return lines


def _folder_trusted(env: Environment) -> bool:
    """Whether this folder's project settings apply (unknown counts as trusted: no note)."""
    try:
        from qwen_code.config import load_settings

        return load_settings(cwd=env.cwd, home=env.home).trust.granted
    except QwenCodeError:
        return True
