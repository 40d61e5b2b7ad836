"""A connected MCP server's prompts as slash commands `/mcp__SERVER__PROMPT`, as Claude
Code names them.

A prompt command takes the prompt's arguments as `--name=value`, `--name value` or
positionally in the prompt's order (quoted as in a shell); `help` shows them. Running it
asks the server for the prompt and sends its text to the model.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text

from qwen_code.ui import commands
from qwen_code.ui.commands import COMMANDS, Command
from qwen_code.ui.mcp_text import (
    error_line,
    first_sentence,
    note_lost,
    plain_line,
    print_error,
)

if TYPE_CHECKING:
    from qwen_code.mcp.connection import McpConnection
    from qwen_code.mcp.manager import McpManager
    from qwen_code.ui.repl import Repl

_INVALID = re.compile(r"[^a-zA-Z0-9_-]")

_OWN: dict[str, Command] = {}
"""The prompt commands this module put into `COMMANDS` (replaced on each registration)."""
_PROMPTS: dict[str, tuple[str, str]] = {}
"""Command name → (server, prompt name)."""


def prompt_command_name(server: str, prompt: str) -> str:
    """`mcp__SERVER__PROMPT`, lower case (slash commands are matched in lower case), with
    characters other than letters, digits, `_` and `-` replaced by `_`."""
    return _INVALID.sub("_", f"mcp__{server}__{prompt}").lower()


def register_prompts(manager: McpManager | None) -> list[str]:
    """Put the prompts of `manager`'s connected servers into the command table, replacing
    those registered before (None: just remove them). A built-in or custom command of the
    same name wins. Returns the names registered."""
    for name, entry in _OWN.items():
        if COMMANDS.get(name) is entry:
            del COMMANDS[name]
    _OWN.clear()
    _PROMPTS.clear()
    if manager is None:
        return []
    for connection in manager.connections:
        if connection.state != "connected":
            continue
        for prompt in connection.listing.prompts:
            name = prompt_command_name(connection.name, prompt.name)
            if name in COMMANDS:
                continue
            entry = Command(
                name,
                _prompt_description(connection.name, prompt),
                _prompt_handler(name),
                args=_prompt_completer(name),
            )
            COMMANDS[name] = entry
            _OWN[name] = entry
            _PROMPTS[name] = (connection.name, prompt.name)
    return list(_OWN)


def _prompt_description(server: str, prompt: Any) -> str:
    """`MCP: SERVER · description` (/help prints it as text: `[...]` stays as written)."""
    text = first_sentence(getattr(prompt, "description", None) or "")
    return f"MCP: {plain_line(server)} · {text}" if text else f"MCP: {plain_line(server)} prompt"


def _prompt_handler(name: str) -> commands.Handler:
    async def run(repl: Repl, args: str) -> None:
        await run_prompt_command(repl, name, args)

    return run


def _prompt_completer(name: str) -> commands.ArgCompleter:
    def complete(repl: Repl) -> list[str]:
        found = _lookup(repl, name)
        if found is None:
            return ["help"]
        return ["help", *(f"--{a.name}=" for a in _arguments(found[1]))]

    return complete


def _lookup(repl: Repl, name: str) -> tuple[McpConnection, Any] | None:
    """The connection and the prompt (as listed now) behind command `name`."""
    target = _PROMPTS.get(name)
    manager = repl.session.mcp
    if target is None or manager is None:
        return None
    connection = manager.connection(target[0])
    if connection is None:
        return None
    prompt = next((p for p in connection.listing.prompts if p.name == target[1]), None)
    return (connection, prompt) if prompt is not None else None


def _arguments(prompt: Any) -> list[Any]:
    return list(getattr(prompt, "arguments", None) or [])


def parse_prompt_args(text: str, arguments: Sequence[Any]) -> dict[str, str] | str:
    """The values for a prompt's `arguments` (objects with `.name`, `.required`) from
    what the user typed: `--name=value`, `--name value`, or positionally in the
    arguments' order (those not given by name; surplus words go to the last one). `--`
    ends the named ones. Returns the values, or a one-line error."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        return f"Cannot read the arguments: {exc}."
    names = [str(a.name) for a in arguments]
    values: dict[str, str] = {}
    positional: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--":
            positional.extend(tokens[i + 1 :])
            break
        if token.startswith("--") and len(token) > 2:
            key, eq, value = token[2:].partition("=")
            if key not in names:
                known = ", ".join(f"--{n}" for n in names) or "none"
                return f"Unknown argument --{key} (arguments: {known})."
            if not eq:
                if i + 1 >= len(tokens):
                    return f"--{key} needs a value."
                i += 1
                value = tokens[i]
            values[key] = value
        else:
            positional.append(token)
        i += 1
    if positional:
        open_names = [n for n in names if n not in values]
        if not open_names:
            what = "takes no arguments" if not names else "has no argument left for"
            extra = "" if not names else f" {' '.join(positional)!r}"
            return f"This prompt {what}{extra}."
        if len(positional) > len(open_names):
            cut = len(open_names) - 1
            positional = [*positional[:cut], " ".join(positional[cut:])]
        values.update(zip(open_names, positional, strict=False))
    missing = [str(a.name) for a in arguments if getattr(a, "required", False)]
    missing = [n for n in missing if n not in values]
    if missing:
        return "Missing required argument(s): " + ", ".join(f"--{n}" for n in missing) + "."
    return values


def prompt_text(result: Any) -> str:
    """The text of a `GetPromptResult`'s messages, joined by blank lines; parts that are
    not text become a short note."""
    parts = []
    for message in getattr(result, "messages", None) or ():
        part = _content_text(getattr(message, "content", None))
        if part:
            parts.append(part)
    return "\n\n".join(parts)


def _content_text(block: Any) -> str:
    from qwen_code.mcp.tools import block_text

    return block_text(block, origin="the prompt") if block is not None else ""


async def run_prompt_command(repl: Repl, name: str, args: str) -> None:
    """`/mcp__SERVER__PROMPT args`: get the prompt from its server and send its text."""
    found = _lookup(repl, name)
    if found is None:
        print_error(repl, f"/{name}: the MCP prompt is no longer offered (see /mcp).")
        return
    connection, prompt = found
    if args.strip().lower() in ("help", "--help"):
        _prompt_help(repl, name, prompt)
        return
    values = parse_prompt_args(args, _arguments(prompt))
    if isinstance(values, str):
        print_error(repl, f"/{name}: {values} Nothing was sent; /{name} help shows the arguments.")
        return
    task = asyncio.ensure_future(connection.get_prompt(prompt.name, values))
    try:
        done, result = await repl.io.run_cancellable(task)
    except Exception as exc:
        note_lost(connection, exc)
        print_error(
            repl,
            f"The MCP server {connection.name!r} could not give the prompt {prompt.name!r}: "
            f"{error_line(exc)}",
        )
        return
    if not done:
        repl.console.print("[yellow]Interrupted.[/yellow] [dim]Nothing was sent.[/dim]")
        return
    text = prompt_text(result)
    if not text.strip():
        print_error(repl, f"/{name}: the server returned an empty prompt; nothing was sent.")
        return
    await repl.send(text)


def _prompt_help(repl: Repl, name: str, prompt: Any) -> None:
    arguments = _arguments(prompt)
    head = Text(f"/{name}", style="bold")
    description = plain_line(getattr(prompt, "description", None) or "")
    if description:
        head.append(f"  {description}")
    repl.console.print(head)
    if not arguments:
        repl.console.print(Text("  No arguments.", style="dim"))
        return
    usage = " ".join(
        f"--{a.name}=VALUE" if getattr(a, "required", False) else f"[--{a.name}=VALUE]"
        for a in arguments
    )
    order = " ".join(str(a.name).upper() for a in arguments)
    repl.console.print(Text(f"  Usage: /{name} {usage}   (or in order: {order})"))
    width = max(len(str(a.name)) for a in arguments) + 2
    for argument in arguments:
        line = Text(f"  --{argument.name!s:<{width}}")
        line.append("required" if getattr(argument, "required", False) else "optional", "dim")
        text = plain_line(getattr(argument, "description", None) or "")
        if text:
            line.append(f"  {text}")
        repl.console.print(line)
