"""Which MCP servers a session may start, from every place they can be configured.

Sources: `mcpServers` in the user's settings and the project's (the project's only in a
trusted folder: `qwen_code.trust` drops it otherwise), Claude Code's project file
`.mcp.json` (trusted folders only, as it is the repository's), and `--mcp-config` files.
`mcp.allowed` / `mcp.excluded` (globs; `--allowed-mcp-server-names`) filter the names.
Values in `env`, `headers`, `args` and URLs may reference the environment (`$VAR`,
`${VAR}`); the expanded values live only in memory.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from qwen_code.errors import ConfigError

Transport: TypeAlias = Literal["stdio", "http", "sse", "sdk"]
Source: TypeAlias = Literal["user", "project", "mcp.json", "flag"]

_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


class McpServerConfig(BaseModel):
    """One `mcpServers` entry, with Qwen Code's keys (and Claude Code's `type`)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    http_url: str | None = None
    type: Transport | Literal["streamable-http", "streamableHttp"] | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: int | None = Field(default=None, ge=1)
    """Milliseconds one tool call may take (default 10 minutes)."""
    discovery_timeout_ms: int | None = Field(default=None, ge=1)
    """Milliseconds to connect and list (default 30 s for stdio, 10 s remote)."""
    trust: bool = False
    include_tools: list[str] | None = None
    exclude_tools: list[str] = Field(default_factory=list)
    description: str | None = None
    oauth: dict[str, Any] | None = None
    """OAuth for a remote server (Qwen Code's keys: enabled, clientId, clientSecret,
    scopes, redirectUri); see `qwen_code.mcp.oauth`."""

    def transport(self) -> Transport:
        """`type` when given; else stdio with a `command`, streamable HTTP with `httpUrl`,
        and SSE with `url` (as Qwen Code reads `url`)."""
        if self.type in ("http", "streamable-http", "streamableHttp"):
            return "http"
        if self.type in ("stdio", "sse", "sdk"):
            return self.type
        if self.command:
            return "stdio"
        return "http" if self.http_url else "sse"

    def endpoint(self) -> str:
        return self.http_url or self.url or ""

    def command_line(self) -> str:
        """What starts it, for the user to read: the command line or the URL."""
        if self.transport() == "stdio":
            return shlex.join([self.command or "", *self.args])
        if self.transport() == "sdk":
            return "(in the program driving qwen-code)"
        return self.endpoint()

    def fingerprint(self) -> str:
        """What the user approves for a project server: a changed command, arguments,
        environment names, working directory or URL needs a new approval."""
        what = [self.transport(), self.command_line(), self.cwd or "", sorted(self.env)]
        return json.dumps(what, sort_keys=True)

    def timeout_s(self) -> float:
        return (self.timeout or 600_000) / 1000

    def discovery_timeout_s(self) -> float:
        if self.discovery_timeout_ms:
            return self.discovery_timeout_ms / 1000
        return 30.0 if self.transport() == "stdio" else 10.0

    def exposes(self, tool: str) -> bool:
        if tool in self.exclude_tools:
            return False
        return self.include_tools is None or tool in self.include_tools

    def expanded(self, env: Mapping[str, str]) -> McpServerConfig:
        """A copy with `$VAR`/`${VAR}` replaced from `env` (unknown names stay as written)."""

        def sub(text: str) -> str:
            return _VAR.sub(lambda m: env.get(m[1] or m[2], m[0]), text)

        return self.model_copy(
            update={
                "command": sub(self.command) if self.command else None,
                "args": [sub(a) for a in self.args],
                "env": {k: sub(v) for k, v in self.env.items()},
                "cwd": sub(self.cwd) if self.cwd else None,
                "url": sub(self.url) if self.url else None,
                "http_url": sub(self.http_url) if self.http_url else None,
                "headers": {k: sub(v) for k, v in self.headers.items()},
            }
        )


@dataclass(frozen=True, slots=True)
class ServerEntry:
    """A configured server and where it came from."""

    name: str
    config: McpServerConfig
    source: Source
    path: Path | None = None

    @property
    def from_repository(self) -> bool:
        """Configured by the project's own files: a command the repository wants to run."""
        return self.source in ("project", "mcp.json")


def parse_servers(raw: Any, where: str) -> dict[str, McpServerConfig]:
    """`{name: entry}` → configs; a malformed entry is a `ConfigError` naming it."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: mcpServers must be an object of servers by name.")
    servers = {}
    for name, entry in raw.items():
        try:
            config = McpServerConfig.model_validate(entry)
        except ValidationError as exc:
            raise ConfigError(f"{where}: MCP server {name!r}: {exc}") from exc
        if not (config.command or config.url or config.http_url or config.type == "sdk"):
            raise ConfigError(f"{where}: MCP server {name!r} needs command, httpUrl or url.")
        servers[name] = config
    return servers


def read_server_file(path: Path) -> dict[str, McpServerConfig]:
    """A `{"mcpServers": {...}}` file (`.mcp.json`, `--mcp-config`)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Cannot read MCP config {path}: {exc.strerror}.") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}).") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected an object with mcpServers.")
    return parse_servers(data.get("mcpServers", {}), str(path))


def parse_config_text(text: str) -> dict[str, McpServerConfig]:
    """`--mcp-config '{"mcpServers": {...}}'`: the servers given as JSON text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--mcp-config: not valid JSON ({exc.msg}).") from exc
    if not isinstance(data, dict):
        raise ConfigError("--mcp-config: expected an object with mcpServers.")
    return parse_servers(data.get("mcpServers", {}), "--mcp-config")


def configured_servers(
    settings: Any,
    *,
    cwd: Path,
    config_files: Sequence[Path | str] = (),
) -> list[ServerEntry]:
    """Every server this session may start, filtered by `mcp.allowed`/`mcp.excluded`."""
    entries: dict[str, ServerEntry] = {}
    if not getattr(settings, "mcp_strict", False):
        entries = _settings_servers(settings, cwd)
    for raw in [*config_files, *getattr(settings, "mcp_config_files", [])]:
        if isinstance(raw, str) and raw.lstrip().startswith("{"):  # JSON text (Claude SDK)
            for name, config in parse_config_text(raw).items():
                entries[name] = ServerEntry(name, config, "flag", None)
            continue
        path = Path(raw).expanduser().resolve()
        for name, config in read_server_file(path).items():
            entries[name] = ServerEntry(name, config, "flag", path)
    rules = settings.mcp
    return [e for e in entries.values() if _allowed(e.name, rules.allowed, rules.excluded)]


def _settings_servers(settings: Any, cwd: Path) -> dict[str, ServerEntry]:
    """The servers of the settings files and of a trusted folder's `.mcp.json`."""
    entries: dict[str, ServerEntry] = {}
    sources = getattr(settings, "mcp_sources", {}) or {}
    project_file = getattr(settings, "project_settings_file", None)
    for name, config in parse_servers(settings.mcp_servers, "settings").items():
        source: Source = "project" if sources.get(name) == "project" else "user"
        path = Path(project_file) if source == "project" and project_file else None
        entries[name] = ServerEntry(name, config, source, path)
    trust = getattr(settings, "trust", None)
    mcp_json = _project_mcp_json(cwd) if getattr(settings, "project_sources", True) else None
    if mcp_json is not None and trust is not None and trust.granted:
        for name, config in read_server_file(mcp_json).items():
            entries.setdefault(name, ServerEntry(name, config, "mcp.json", mcp_json))
    return entries


def untrusted_mcp_json(cwd: Path, trusted: bool) -> Path | None:
    """A `.mcp.json` that was not read because the folder is not trusted (for a notice)."""
    path = _project_mcp_json(cwd)
    return path if path is not None and not trusted else None


def _project_mcp_json(cwd: Path) -> Path | None:
    from qwen_code.settings_files import project_root

    path = project_root(cwd) / ".mcp.json"
    return path if path.is_file() else None


def _allowed(name: str, allowed: Sequence[str] | None, excluded: Sequence[str]) -> bool:
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in excluded):
        return False
    return allowed is None or any(fnmatch.fnmatchcase(name, p) for p in allowed)
