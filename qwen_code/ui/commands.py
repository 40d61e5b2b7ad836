"""Slash commands: one table, one entry per command.

Adding a command is one `@command(...)` function; `/help` and completion read the table.
Handlers receive the REPL and the text after the command name.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from qwen_code import __version__

if TYPE_CHECKING:
    from qwen_code.ui.repl import Repl

Handler = Callable[["Repl", str], Awaitable[None]]
ArgCompleter = Callable[["Repl"], list[str]]
MODES = ["plan", "default", "auto-edit", "yolo"]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    description: str
    handler: Handler
    args: ArgCompleter | None = None
    aliases: tuple[str, ...] = ()


COMMANDS: dict[str, Command] = {}
"""Name (and each alias) → command. Registration order is the /help order."""


def command(
    name: str, description: str, *, args: ArgCompleter | None = None, aliases: tuple[str, ...] = ()
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        entry = Command(name, description, handler, args, aliases)
        for key in (name, *aliases):
            COMMANDS[key] = entry
        return handler

    return register


COMMAND_MODULES: tuple[str, ...] = (
    "qwen_code.ui.commands_agents",
    "qwen_code.ui.commands_compress",
    "qwen_code.ui.commands_custom",
    "qwen_code.ui.commands_directory",
    "qwen_code.ui.commands_hooks",
    "qwen_code.ui.commands_mcp",
    "qwen_code.ui.commands_memory",
    "qwen_code.ui.commands_sandbox",
    "qwen_code.ui.commands_session",
    "qwen_code.ui.commands_skills",
    "qwen_code.ui.commands_trust",
)
"""The modules that add slash commands, imported in this order (after this module's
own, which come first in /help). Adding a group of commands is adding a module here."""


def load_command_modules(repl: Repl) -> None:
    """Import each of `COMMAND_MODULES` (each registers its commands with `@command`) and
    call its `setup(repl)` when it has one (e.g. to register commands found on disk).
    They are named, not imported at the top, because each imports `command` from here."""
    import importlib

    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        setup = getattr(module, "setup", None)
        if callable(setup):
            setup(repl)


def unique_commands() -> list[Command]:
    seen: dict[str, Command] = {}
    for entry in COMMANDS.values():
        seen.setdefault(entry.name, entry)
    return list(seen.values())


def parse(text: str) -> tuple[str, str]:
    """`/model qwen3` → ("model", "qwen3")."""
    name, _, rest = text.strip()[1:].partition(" ")
    return name.lower(), rest.strip()


async def dispatch(repl: Repl, text: str) -> None:
    name, args = parse(text)
    entry = COMMANDS.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, list(COMMANDS), n=1, cutoff=0.5)
        hint = f" Did you mean /{close[0]}?" if close else " Type /help for the list."
        repl.console.print(Text.assemble((f"Unknown command /{name}.", "red"), hint))
        return
    await entry.handler(repl, args)


@command("help", "Show the commands and keys", aliases=("?",))
async def _help(repl: Repl, args: str) -> None:
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    for entry in unique_commands():
        table.add_row(Text(f"/{entry.name}"), Text(entry.description))  # never markup
    repl.console.print(table)
    repl.console.print(
        "[dim]@path attaches a file or directory · !cmd runs a shell command (a lone ! toggles "
        "shell mode) · Enter sends, Alt+Enter/Ctrl+J or a trailing \\ adds a line · "
        "Shift+Tab cycles the approval mode · Ctrl+C cancels a turn, twice on an empty prompt "
        "exits · Ctrl+D exits · Ctrl+R searches history[/dim]"
    )


@command("clear", "Start a new conversation")
async def _clear(repl: Repl, args: str) -> None:
    await repl.session.clear()
    repl.pending_context.clear()
    repl.recount_context()
    repl.console.rule("[dim]new conversation[/dim]")


@command("stats", "Tokens, cost, turns, tool calls and time per tool")
async def _stats(repl: Repl, args: str) -> None:
    from qwen_code.llm.pricing import format_usd

    stats = repl.stats
    usage = stats.usage
    about = "~" if stats.estimated else ""  # the server reported no usage: estimated
    costs = stats.settle(repl.session.model, repl.session.pricing)
    cached = f"cached: {usage.cached_tokens:,}"
    if usage.prompt_tokens and usage.cached_tokens:
        cached += f" ({usage.cached_tokens / usage.prompt_tokens:.0%})"
    if stats.cache_creation_tokens:
        cached += f"   cache writes: {stats.cache_creation_tokens:,}"
    if costs.cost_usd is None:
        cost = (
            f"Cost: unknown (no price for {repl.session.model!r} at this endpoint; "
            "add it under modelPricing in settings.json)"
        )
    else:
        cost = (
            f"Cost: {format_usd(costs.cost_usd)}   cache savings: {format_usd(costs.savings_usd)}"
        )
        if costs.cache_write_premium_usd:
            cost += f" (cache writes cost {format_usd(costs.cache_write_premium_usd)} extra)"
    lines = [
        f"Model requests: {stats.requests}   prompts: {stats.prompts}   "
        f"tool calls: {stats.tool_calls}   denied: {stats.denials}",
        f"Tokens in: {about}{usage.prompt_tokens:,}   out: {about}{usage.completion_tokens:,}   "
        f"{cached}{'   (~: estimated, the server reports no usage)' if about else ''}",
        cost,
        f"Context: {repl.context_line().removeprefix('context ')}",
        f"Session time: {repl.elapsed()}",
    ]
    repl.console.print(Text("\n".join(lines)))  # the model's name is the user's text
    if stats.tools:
        table = Table("tool", "calls", "errors", "denied", "total time", "avg", box=None)
        for name, entry in sorted(stats.tools.items()):
            avg = entry.total_ms / entry.calls if entry.calls else 0
            table.add_row(
                Text(name),
                str(entry.calls),
                str(entry.errors),
                str(entry.denied),
                f"{entry.total_ms / 1000:.2f} s",
                f"{avg:.0f} ms",
            )
        repl.console.print(table)


@command("tools", "List the tools the model can use")
async def _tools(repl: Repl, args: str) -> None:
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    for tool in repl.session.registry:
        first = tool.description.strip().split(". ")[0].rstrip(".") + "."
        table.add_row(Text(tool.name), Text(first))  # an MCP server's text, never markup
    repl.console.print(table)


def _model_ids(repl: Repl) -> list[str]:
    return [m["id"] for m in repl.served_models]


@command("model", "Show the model, or switch: /model NAME", args=_model_ids)
async def _model(repl: Repl, args: str) -> None:
    if not args:
        served = await repl.fetch_models()
        repl.console.print(Text.assemble("Model: ", (repl.session.model, "bold")))
        if served:
            ids = ", ".join(m["id"] for m in served)
            repl.console.print(Text(f"Served by the endpoint: {ids}"))
        return
    served = await repl.fetch_models()
    ids = [m["id"] for m in served]
    if ids and args not in ids:
        repl.console.print(
            Text(
                f"{args!r} is not in the server's list ({', '.join(ids)}); switching anyway.",
                style="yellow",
            )
        )
    repl.session.switch_model(args, served)
    repl.console.print(Text.assemble("Model: ", (args, "bold")))


@command("approval-mode", "Show or set: plan, default, auto-edit, yolo", args=lambda r: MODES)
async def _approval_mode(repl: Repl, args: str) -> None:
    if not args:
        repl.console.print(Text.assemble("Approval mode: ", (repl.session.runner.mode, "bold")))
        return
    if args not in MODES:
        choose = f" Choose one of {', '.join(MODES)}."
        repl.console.print(Text.assemble((f"Unknown mode {args!r}.", "red"), choose))
        return
    repl.set_mode(args)  # type: ignore[arg-type]


@command("about", "Version, model, endpoint and settings in use")
async def _about(repl: Repl, args: str) -> None:
    session = repl.session
    sources = session.settings.sources or ["(none: defaults, environment and flags)"]
    rows = [
        ("qwen-code", __version__),
        ("model", session.model),
        ("endpoint", session.provider.base_url),
        ("API key from", session.provider.api_key_source),
        ("approval mode", session.runner.mode),
        ("context window", f"{session.context_window:,}" if session.context_window else "unknown"),
        ("settings files", "\n".join(sources)),
        ("home", str(repl.home)),
        ("working directory", str(session.cwd)),
    ]
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    for key, value in rows:
        table.add_row(key, Text(value))  # paths and names may hold `[`
    repl.console.print(table)


@command("quit", "Leave qwen-code", aliases=("exit", "q"))
async def _quit(repl: Repl, args: str) -> None:
    repl.exit_requested = True
