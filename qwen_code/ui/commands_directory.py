"""`/directory add PATH[,PATH...] | show` (alias `/dir`): the directories tools may use."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text

from qwen_code.tools.base import ToolError
from qwen_code.ui import commands_memory
from qwen_code.ui.commands import command

if TYPE_CHECKING:
    from qwen_code.ui.repl import Repl

USAGE = "Usage: /directory add PATH[,PATH...] | /directory show"


@command(
    "directory",
    "Workspace directories: /directory add PATH[,PATH...], /directory show",
    args=lambda repl: ["add", "show"],
    aliases=("dir",),
)
async def _directory(repl: Repl, args: str) -> None:
    action, _, rest = args.strip().partition(" ")
    if action in ("", "show"):
        show(repl)
    elif action == "add" and rest.strip():
        add(repl, [p.strip() for p in rest.split(",") if p.strip()])
    else:
        repl.console.print(Text(USAGE, style="red"))


def show(repl: Repl) -> None:
    workspace = repl.session.tool_ctx.workspace
    scratch = repl.session.tool_ctx.scratch_dir
    repl.console.print("Workspace directories:")
    for root in workspace.roots:
        note = " (scratch space for saved shell output)" if root == scratch else ""
        repl.console.print(f"  {root}{note}", markup=False, highlight=False)


def add(repl: Repl, raw_paths: list[str]) -> None:
    workspace = repl.session.tool_ctx.workspace
    added = False
    for raw in raw_paths:
        path = Path(raw).expanduser()
        try:
            root = workspace.add_root(path if path.is_absolute() else repl.session.cwd / path)
        except ToolError as exc:
            repl.console.print(Text(str(exc), style="red"))
            continue
        repl.console.print(f"Added {root} to the workspace.", markup=False, highlight=False)
        added = True
    if added:  # the system prompt lists the workspace directories
        commands_memory.refresh(repl)
