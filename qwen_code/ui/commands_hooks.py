"""`/hooks` in the REPL: the hooks in effect, by event, each with its matcher, command,
timeout and the settings file it comes from; a project's hooks still waiting for the
user's approval are listed too, marked. Commands and paths are printed as plain text,
never as markup."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from qwen_code.ui.commands import command

if TYPE_CHECKING:
    from qwen_code.session.live import Session
    from qwen_code.ui.repl import Repl

DOCS = "docs/hooks.md"
NO_HOOKS = f"No hooks configured (settings `hooks`; see {DOCS})."
DISABLED = f"Hooks are turned off (disableAllHooks in your settings): none runs. See {DOCS}."
_SOURCES = {
    "user": "user settings",
    "project": "project settings",
    "flag": "--settings",
    "claude-user": "Claude Code user settings",
    "claude-project": "Claude Code project settings",
}


@command("hooks", "List the hooks: by event, with matcher, command, timeout and file")
async def _hooks(repl: Repl, args: str) -> None:
    session = repl.session
    if session.settings.disable_all_hooks:
        repl.console.print(Text(DISABLED))
        return
    hooks = getattr(session, "hooks", None)
    active: list[Any] = list(hooks.specs()) if hooks is not None else []
    waiting = [spec for spec in await _configured(session) if spec not in active]
    if not active and not waiting:
        repl.console.print(Text(NO_HOOKS))
        return
    count = f"{len(active)} active" + (f", {len(waiting)} not approved" if waiting else "")
    repl.console.print(Text(f"Hooks ({count}):"))
    specs = [(spec, "") for spec in active] + [(spec, "not approved") for spec in waiting]
    for event in _events(spec for spec, _ in specs):
        repl.console.print(Text(f"  {event}", style="bold"))
        repl.console.print(_table([(s, note) for s, note in specs if s.event == event]))
    if waiting:
        repl.console.print(
            Text(
                "  Hooks marked not approved come from this project and run only once you "
                "approve them: start qwen-code here again to be asked, or pass "
                "--trust-workspace.",
                style="yellow",
            )
        )


async def _configured(session: Session) -> list[Any]:
    """Every hook the settings files define (active or not); [] when they cannot be read."""
    try:
        from qwen_code.hooks import load_hooks
    except ImportError:
        return []
    try:
        specs, _ = await asyncio.to_thread(
            load_hooks, session.settings, cwd=session.cwd, home=session.home
        )
    except Exception:  # a settings file changed under us: show what runs
        return []
    return list(specs)


def _events(specs: Any) -> list[str]:
    """The events of `specs`, in the order qwen-code documents them."""
    try:
        from qwen_code.hooks import EVENTS
    except ImportError:
        EVENTS = ()
    present = {spec.event for spec in specs}
    ordered = [event for event in EVENTS if event in present]
    return ordered + sorted(present - set(ordered))


def _table(rows: list[tuple[Any, str]]) -> Table:
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0), pad_edge=False)
    for spec, note in rows:
        where = _SOURCES.get(spec.source, spec.source)
        if spec.path is not None:
            where += f" ({spec.path})"
        timeout = f"{spec.timeout_s:g}s" + (" async" if getattr(spec, "async_", False) else "")
        table.add_row(
            Text("    " + (spec.matcher or "*"), style="cyan"),
            Text(spec.command),
            Text(timeout, style="dim"),
            Text(where, style="dim"),
            Text(note, style="yellow"),
        )
    return table
