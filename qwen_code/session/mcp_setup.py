"""MCP servers in a session: which start, the user's approval of the repository's own
servers, and closing them with the session.

A project server (`.qwen/settings.json` of a trusted folder, or `.mcp.json`) is a command
the repository wants to run. It starts only after the user approved that exact command
line once (kept in `$QWEN_HOME/mcp-approvals.json`, per project), or when this run was
trusted explicitly (`--trust-workspace`, `QWEN_CODE_TRUST_WORKSPACE`). A headless run
cannot ask, so an unapproved project server is skipped with a note.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qwen_code.agent.approval import ApprovalRequest, Approver
from qwen_code.agent.events import ToolCall
from qwen_code.atomic import atomic_write
from qwen_code.config import Settings, project_root
from qwen_code.mcp.config import ServerEntry, configured_servers
from qwen_code.mcp.manager import Approve, McpManager
from qwen_code.session.live import Session, SessionObserver
from qwen_code.tools.registry import ToolRegistry

APPROVALS_FILE = "mcp-approvals.json"


class ApprovedServers:
    """Project servers the user approved: `{project: {name: fingerprint}}`."""

    def __init__(self, home: Path) -> None:
        self.path = home / APPROVALS_FILE

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def approved(self, project: Path, entry: ServerEntry) -> bool:
        known = self._load().get(str(project), {})
        return isinstance(known, dict) and known.get(entry.name) == entry.config.fingerprint()

    def remember(self, project: Path, entry: ServerEntry) -> None:
        data = self._load()
        data.setdefault(str(project), {})[entry.name] = entry.config.fingerprint()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, (json.dumps(data, indent=2) + "\n").encode())
        self.path.chmod(0o600)


def server_approval(
    settings: Settings, *, cwd: Path, home: Path, approver: Approver, headless: bool
) -> Approve:
    """The check each project server passes before it starts."""
    store = ApprovedServers(home)
    project = project_root(cwd)
    trust = settings.trust
    explicit = trust is not None and trust.source in ("flag", "env")

    async def approve(entry: ServerEntry) -> bool:
        if explicit or store.approved(project, entry):
            return True
        if headless:
            return False
        answer = await approver(_request(entry))
        if answer.approved:
            store.remember(project, entry)
        return answer.approved

    return approve


def _request(entry: ServerEntry) -> ApprovalRequest:
    line = entry.config.command_line()
    where = entry.path.name if entry.path else entry.source
    call = ToolCall(id=f"mcp-start-{entry.name}", name=f"mcp__{entry.name}", arguments={})
    return ApprovalRequest(
        call=call,
        kind="execute",
        reason=f"this project ({where}) wants to start the MCP server {entry.name!r}: {line}",
        summary=line,
        source="server",
    )


class McpLifecycle(SessionObserver):
    """Closes the session's MCP servers with it."""

    def __init__(self, manager: McpManager) -> None:
        self.manager = manager

    async def on_close(self, session: Session) -> None:
        await self.manager.aclose()


def mcp_manager(
    settings: Settings,
    *,
    cwd: Path,
    registry: ToolRegistry,
    env: Mapping[str, str],
    log_dir: Path,
) -> McpManager | None:
    """The session's MCP servers, or None when none is configured (then nothing of the
    MCP SDK is imported)."""
    entries = configured_servers(settings, cwd=cwd)
    if not entries:
        return None
    trust: Any = settings.trust
    return McpManager(
        entries,
        registry=registry,
        env=env,
        log_dir=log_dir,
        project_trusted=bool(trust is not None and trust.granted),
    )


def skipped_notes(manager: McpManager) -> list[str]:
    return [
        f"Project MCP server {name!r} was not started: approve it in an interactive "
        "session, or pass --trust-workspace."
        for name, why in manager.skipped.items()
        if why == "not approved"
    ]
