"""What a session offers the editor to change: the approval mode (ACP session modes, and
the `mode` config option) and the model (the `model` config option).

Both are given in the new-session response; `session/set_mode` and
`session/set_config_option` change them, and a mode the agent switches to by itself
(a plan approved through `exit_plan_mode`) is announced with `current_mode_update` and
`config_option_update`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from acp.schema import (
    ConfigOptionUpdate,
    CurrentModeUpdate,
    HttpMcpServer,
    McpServerStdio,
    SessionConfigOptionSelect,
    SessionConfigSelectOption,
    SessionMode,
    SessionModeState,
    SseMcpServer,
)

if TYPE_CHECKING:
    from qwen_code.config import Flags
    from qwen_code.session.live import Session

MODES: dict[str, tuple[str, str]] = {
    "default": ("Default", "Read freely; ask before edits and commands"),
    "auto-edit": ("Auto Edit", "Edit files without asking; ask before commands"),
    "plan": ("Plan", "Read-only: plan the work, change nothing"),
    "yolo": ("YOLO", "Run every tool without asking"),
}
"""The approval modes (ids as `--approval-mode` takes them): name and description."""

MODE_OPTION = "mode"
MODEL_OPTION = "model"


def mode_state(session: Session) -> SessionModeState:
    modes = [SessionMode(id=m, name=n, description=d) for m, (n, d) in MODES.items()]
    return SessionModeState(current_mode_id=session.runner.mode, available_modes=modes)


def config_options(session: Session) -> list[Any]:
    """The mode and the model as select options, with their current values."""
    modes = [
        SessionConfigSelectOption(value=m, name=n, description=d) for m, (n, d) in MODES.items()
    ]
    settings = session.settings
    names = [session.model, settings.model.name, settings.fast_model, settings.vision_model]
    models = list(dict.fromkeys(name for name in names if name))
    return [
        SessionConfigOptionSelect(
            id=MODE_OPTION,
            name="Approval mode",
            category="mode",
            type="select",
            current_value=session.runner.mode,
            options=modes,
        ),
        SessionConfigOptionSelect(
            id=MODEL_OPTION,
            name="Model",
            category="model",
            type="select",
            current_value=session.model,
            options=[SessionConfigSelectOption(value=m, name=m) for m in models],
        ),
    ]


def mode_changed(session: Session) -> list[Any]:
    """The updates that tell the editor the session's mode is now another."""
    return [
        CurrentModeUpdate(
            session_update="current_mode_update", current_mode_id=session.runner.mode
        ),
        ConfigOptionUpdate(
            session_update="config_option_update", config_options=config_options(session)
        ),
    ]


def with_editor_servers(flags: Flags, servers: list[Any] | None) -> tuple[Flags, list[str]]:
    """The flags with the MCP servers the editor passed added as `--mcp-config` JSON
    (the user configured them in the editor, so they start without a question), and
    notes on those left out (ACP-transport servers)."""
    entries: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for server in servers or ():
        if isinstance(server, McpServerStdio):
            env = {item.name: item.value for item in server.env}
            entries[server.name] = {"command": server.command, "args": server.args, "env": env}
        elif isinstance(server, HttpMcpServer | SseMcpServer):
            headers = {item.name: item.value for item in server.headers}
            entries[server.name] = {"type": server.type, "url": server.url, "headers": headers}
        else:
            notes.append(
                f"MCP server {server.name!r} uses the ACP transport, which is not supported."
            )
    if not entries:
        return flags, notes
    given = json.dumps({"mcpServers": entries})
    return dataclasses.replace(flags, mcp_config=[*flags.mcp_config, given]), notes
