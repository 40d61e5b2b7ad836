"""Custom slash commands in the REPL: each file in `.qwen/commands/` or
`$QWEN_HOME/commands/` becomes a `/name` in /help and completion (a built-in command of
the same name wins). Running one expands its template (`@{file}`, `!{shell}` with the
usual approval question, `{{args}}`) and sends the result as a message.

`/commands` lists them and the files that were skipped; `/commands reload` reads the
folders again.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from typing import TYPE_CHECKING

from rich.text import Text

from qwen_code.custom_commands import (
    CommandProblem,
    CustomCommand,
    Discovery,
    discover,
    display_path,
    expand,
    reload_command,
    tool_runner_shell,
)
from qwen_code.ui import commands
from qwen_code.ui.commands import COMMANDS, Command, command

if TYPE_CHECKING:
    from qwen_code.ui.repl import Repl

_OWN: dict[str, Command] = {}
"""The entries this module put into `COMMANDS` (removed again on reload)."""
_FOUND: dict[str, CustomCommand] = {}
_HIDDEN: list[CustomCommand] = []
_PROBLEMS: list[CommandProblem] = []


def setup(repl: Repl) -> None:
    """Find the custom commands for this session and register them; report bad files."""
    _import_builtin_modules()
    found = discover(repl.session.cwd, repl.home)
    register(found)
    report(repl, problems_only=True)


def _import_builtin_modules() -> None:
    """Make sure every other command module has registered its commands, so that a
    built-in name is known (and wins) whatever order the modules load in."""
    from qwen_code import ui

    for info in pkgutil.iter_modules(ui.__path__):
        if info.name.startswith("commands_") and info.name != "commands_custom":
            importlib.import_module(f"qwen_code.ui.{info.name}")


def register(found: Discovery) -> list[CustomCommand]:
    """Put the commands of `found` into the command table, replacing those registered
    before. Returns the commands hidden by a built-in of the same name."""
    for name, entry in _OWN.items():
        if COMMANDS.get(name) is entry:
            del COMMANDS[name]
    _OWN.clear()
    _FOUND.clear()
    _HIDDEN.clear()
    _PROBLEMS[:] = found.problems
    for name, custom in sorted(found.commands.items()):
        if name in COMMANDS:
            _HIDDEN.append(custom)
            continue
        entry = Command(name, custom.help, _handler(name))
        COMMANDS[name] = entry
        _OWN[name] = entry
        _FOUND[name] = custom
    return list(_HIDDEN)


def _handler(name: str) -> commands.Handler:
    async def run(repl: Repl, args: str) -> None:
        custom = _FOUND.get(name)
        if custom is not None:
            await run_custom_command(repl, custom, args)

    return run


async def run_custom_command(repl: Repl, custom: CustomCommand, args: str) -> None:
    """Expand `custom` with `args` and send the result; Ctrl+C while a `!{…}` command
    runs (or at its approval question) cancels without sending anything."""
    current = reload_command(custom)
    if isinstance(current, CommandProblem):
        _warn(repl, f"Custom command {current}")
        return
    session = repl.session
    task = asyncio.ensure_future(
        expand(
            current,
            args,
            workspace=session.tool_ctx.workspace,
            shell=tool_runner_shell(session.runner),
        )
    )
    done, expansion = await repl.io.run_cancellable(task)
    if not done:
        repl.console.print("[yellow]Interrupted.[/yellow] [dim]Nothing was sent.[/dim]")
        return
    for note in expansion.notes:
        _warn(repl, f"  ⚠ {note}")
    await repl.send(expansion.text)  # the typed "/name args" is already on screen


def report(repl: Repl, *, problems_only: bool = False) -> None:
    """The custom commands in use (unless `problems_only`), then what was skipped."""
    if not problems_only:
        if not _FOUND:
            where = repl.home / "commands"
            add = f"Add Markdown or TOML files to .qwen/commands/ or {where}."
            repl.console.print(Text(f"No custom commands. {add}"))
        for name, custom in sorted(_FOUND.items()):
            line = Text(f"/{name}", style="bold")
            line.append(f"  {custom.help}  ")
            line.append(f"({custom.scope}: {display_path(custom.path)})", style="dim")
            repl.console.print(line)
    for problem in _PROBLEMS:
        _warn(repl, f"Custom command {problem}")
    for custom in _HIDDEN:
        where = display_path(custom.path)
        _warn(
            repl,
            f"Custom command /{custom.name} ({where}) is hidden by the built-in /{custom.name}",
        )


def _warn(repl: Repl, message: str) -> None:
    repl.console.print(Text(message, style="yellow"))


@command(
    "commands",
    "List the custom commands; /commands reload reads them again",
    args=lambda r: ["reload"],
)
async def _commands(repl: Repl, args: str) -> None:
    if args == "reload":
        register(discover(repl.session.cwd, repl.home))
        repl.console.print(f"Reloaded: {len(_FOUND)} custom command(s).")
        report(repl, problems_only=True)
        return
    if args:
        repl.console.print(Text("Usage: /commands [reload]", style="red"))
        return
    report(repl)
