"""`qwen-code mcp add|remove`: the `mcpServers` entry a command line describes, and the
settings file (user or project scope) it is written to or removed from."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qwen_code.errors import ExitCode, QwenCodeError

SCOPES = ("user", "project")
TRANSPORTS = ("stdio", "http", "sse")
PROBE_TIMEOUT_S = 10.0
"""How long `list`/`get` wait for a server to connect and list its tools, unless its
`discoveryTimeoutMs` says otherwise (Qwen Code's `qwen mcp list` waits 10 s)."""
NOT_TRUSTED = "not started (folder not trusted)"


class McpCommandError(QwenCodeError):
    """A `qwen-code mcp` command cannot do what was asked: one line, exit code 1."""

    exit_code = ExitCode.ERROR


def pick_transport(value: str | None, command_or_url: str) -> str:
    if value is None:
        return "http" if _is_url(command_or_url) else "stdio"
    kind = value.strip().lower()
    if kind not in TRANSPORTS:
        raise McpCommandError(f"--transport: {value!r} is not a transport; use stdio, http or sse.")
    return kind


def _is_url(text: str) -> bool:
    return bool(re.match(r"https?://", text, re.IGNORECASE))


def split_list(values: Sequence[str] | None) -> list[str] | None:
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

    guard(update_settings_file, path, ("mcpServers",), put)
    return path, replaced


def _scope_file(scope: str, *, cwd: Path, home: Path) -> Path:
    from qwen_code.settings_files import settings_path

    path = settings_path("project" if scope == "project" else "user", cwd=cwd, home=home)
    if scope == "project" and path.resolve() == (home / "settings.json").resolve():
        raise McpCommandError(
            "This folder's project settings are your user settings: use --scope user."
        )
    return path


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

    guard(update_settings_file, path, ("mcpServers",), drop)
    return chosen, path, [s for s in found if s != chosen]


def _hint(name: str, cwd: Path) -> str:
    """For a name that only `.mcp.json` (Claude Code's file) has: where to remove it."""
    mcp_json = mcp_json_path(cwd)
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

    path = _scope_file(scope, cwd=cwd, home=home) if scope == "user" else project_file(cwd, home)
    if path is None or not path.is_file():
        return {}
    servers = guard(read_settings_file, path).get("mcpServers")
    return servers if isinstance(servers, dict) else {}


def project_file(cwd: Path, home: Path) -> Path | None:
    from qwen_code.settings_files import find_project_settings

    return find_project_settings(cwd, home)


def mcp_json_path(cwd: Path) -> Path | None:
    from qwen_code.settings_files import project_root

    path = project_root(cwd) / ".mcp.json"
    return path if path.is_file() else None


def guard(function: Any, *args: Any) -> Any:
    """Call `function`; a settings error or a failed write becomes one line, exit code 1."""
    try:
        return function(*args)
    except QwenCodeError as exc:
        raise McpCommandError(exc.message) from exc
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        raise McpCommandError(f"Cannot write{where}: {exc.strerror or exc}.") from exc
