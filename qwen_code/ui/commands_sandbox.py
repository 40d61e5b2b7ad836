"""`/sandbox`: how the agent's commands are sandboxed now, and changing it for the session."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from qwen_code.sandbox.policy import MODES
from qwen_code.ui.commands import command

if TYPE_CHECKING:
    from qwen_code.sandbox.manager import Sandbox
    from qwen_code.ui.repl import Repl

USAGE = "Usage: /sandbox [auto | off | workspace-write | read-only]"


def status_lines(sandbox: Sandbox, approval_mode: str) -> list[str]:
    """What `/sandbox` shows: the setting, what it means now, the network, what is hidden."""
    info = sandbox.describe(approval_mode)
    effective = info["effective"]
    now = f"commands run {'unsandboxed' if effective == 'off' else effective}"
    if effective != "off" and not info["available"]:
        now = (
            "commands are refused" if sandbox.setting != "auto" else "commands run unsandboxed"
        ) + f": {info['reason']}"
    lines = [f"Sandbox: {sandbox.setting} ({now}, in {approval_mode!r} mode)"]
    network = info["network"]
    shown = ", ".join(network) if isinstance(network, tuple) else network
    lines.append(f"  network: {shown}")
    if effective != "off" and info["available"]:
        hidden = info["hidden"]
        lines.append(f"  hidden: {', '.join(hidden) if hidden else '(nothing found to hide)'}")
    elif info["reason"] and sandbox.setting == "off":
        lines.append(f"  (not available here: {info['reason']})")
    return lines


@command(
    "sandbox",
    "How the agent's commands are sandboxed: /sandbox [auto|off|workspace-write|read-only]",
    args=lambda repl: list(MODES),
)
async def _sandbox(repl: Repl, args: str) -> None:
    session = repl.session
    sandbox = session.tool_ctx.sandbox
    if sandbox is None:
        repl.console.print(Text("This session has no command sandbox."))
        return
    wanted = args.strip().lower()
    if wanted:
        if wanted not in MODES:
            repl.console.print(Text(USAGE, style="yellow"))
            return
        sandbox.setting = wanted  # type: ignore[assignment]
    for index, line in enumerate(status_lines(sandbox, session.runner.mode)):
        repl.console.print(Text(line, style="" if index == 0 else "dim"))
