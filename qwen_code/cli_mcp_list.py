"""`qwen-code mcp list|get`: which servers are configured here, which may be started
(never a repository's server in an untrusted folder or one not approved yet), connecting to
them, and how each is shown (secrets masked)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qwen_code.cli_mcp_edit import (
    NOT_TRUSTED,
    PROBE_TIMEOUT_S,
    guard,
    mcp_json_path,
    project_file,
)
from qwen_code.environment import Environment
from qwen_code.errors import QwenCodeError

if TYPE_CHECKING:
    from qwen_code.mcp.config import ServerEntry
    from qwen_code.mcp.manager import ServerStatus
    from qwen_code.settings_model import Settings


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
    project = project_file(cwd, home)
    raw = read_settings_file(project).get("mcpServers") if project else None
    for name, value in raw.items() if isinstance(raw, dict) else ():
        try:
            config = parse_servers({name: value}, str(project))[name]
        except QwenCodeError as exc:
            if warn:
                warn(f"Warning: {exc.message}")
            continue
        found.append(ServerEntry(name, config, "project", project))
    mcp_json = mcp_json_path(cwd)
    if mcp_json is not None:
        try:
            servers = read_server_file(mcp_json)
        except QwenCodeError as exc:
            if warn:
                warn(f"Warning: {exc.message}")
            servers = {}
        found.extend(ServerEntry(n, c, "mcp.json", mcp_json) for n, c in servers.items())
    return found


def _probe_timeout(entry: ServerEntry) -> float:
    ms = entry.config.discovery_timeout_ms
    return ms / 1000 if ms else PROBE_TIMEOUT_S


def load_listing(env: Environment) -> list[Listed]:
    from qwen_code.config import load_settings

    def warn(line: str) -> None:
        print(line, file=env.stderr)

    def load() -> list[Listed]:
        settings = load_settings(cwd=env.cwd, home=env.home)
        return server_listing(settings, cwd=env.cwd.resolve(), home=env.home, warn=warn)

    return guard(load)


def probe(listed: Sequence[Listed]) -> list[ServerStatus | BaseException | None]:
    if all(item.blocked for item in listed):
        return [None] * len(listed)  # nothing to connect to: the SDK stays unloaded
    import asyncio
    import os
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="qwen-code-mcp-") as scratch:
        return asyncio.run(probe_servers(listed, environ=os.environ, scratch=Path(scratch)))


def summary(item: Listed) -> str:
    entry = item.entry
    source = ".mcp.json" if entry.source == "mcp.json" else entry.source
    return f"{entry.name}: {entry.config.command_line()} ({entry.config.transport()}, {source})"


def status_text(item: Listed, result: ServerStatus | BaseException | None, env: Environment) -> str:
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


def folder_trusted(env: Environment) -> bool:
    """Whether this folder's project settings apply (unknown counts as trusted: no note)."""
    try:
        from qwen_code.config import load_settings

        return load_settings(cwd=env.cwd, home=env.home).trust.granted
    except QwenCodeError:
        return True


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
