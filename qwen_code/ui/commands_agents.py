"""`/agents`: the subagents this session can use (built-in, project, personal), agent
files that could not be read and why, and this session's running and background
subagents; `/agents create [--user|--project] DESCRIPTION` has the model write a new
agent, shows the file and writes it (`.qwen/agents/NAME.md`, or `$QWEN_HOME/agents/`
with `--user`) once the user says yes.

Everything the model, the user or a file wrote is printed as rich `Text`, never markup.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text

from qwen_code.errors import ModelError
from qwen_code.subagents.definitions import (
    TOOL_ALIASES,
    AgentCatalog,
    Source,
    SubagentDef,
    discover_agents,
    parse_agent_text,
    render_agent_file,
)
from qwen_code.subagents.runner import USER_ONLY_TOOLS, SubagentTask
from qwen_code.ui.agent_transcript import show_transcript
from qwen_code.ui.commands import command

if TYPE_CHECKING:
    from qwen_code.llm.types import ModelResponse
    from qwen_code.ui.repl import Repl

USAGE = "Usage: /agents [list] | /agents create [--user|--project] DESCRIPTION"
MAX_NAME = 64
_KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_FENCE = re.compile(r"```[\w-]*[ \t]*\r?\n(.*?)```", re.S)
_THINK = re.compile(r"<think>.*?</think>", re.S)
_SOURCES: dict[str, str] = {"builtin": "built-in", "project": "project", "user": "personal"}

WRITER_PROMPT = """\
You write subagent definitions for qwen-code, a terminal coding agent. A subagent is a \
specialised assistant the main agent hands a task to: it starts with no conversation \
history, gets only the task the main agent writes for it, works on its own with its \
tools, and its final message is all the main agent sees of its work.

Reply with one JSON object and nothing else:
{"name": "...", "description": "...", "tools": ["..."], "system_prompt": "..."}

- name: two to four lowercase words joined by hyphens, naming the agent's job \
(e.g. "test-runner", "security-reviewer").
- description: one or two sentences: what the agent does and when to use it. The main \
agent reads only this when it chooses an agent, so name the situations.
- tools: the names of the tools the agent needs, taken from the list you are given, or \
null for all of them. An agent that only needs to read should not get tools that change \
files or run commands.
- system_prompt: the agent's instructions, addressed to it ("You are ..."): its role, \
how to go about its task step by step, what to check, and what its final report must \
contain (that report is the only thing returned). Markdown is fine.
"""


@dataclass(frozen=True, slots=True)
class Draft:
    """An agent as the model proposed it, checked."""

    name: str
    description: str
    system_prompt: str
    tools: tuple[str, ...] | None
    """None: all tools."""
    dropped: tuple[str, ...] = ()
    """Tool names the model gave that this session does not have (left out)."""


def _complete_args(repl: Repl) -> list[str]:
    return ["list", "create", "create --user", "show"]


@command(
    "agents",
    "Subagents: list them, /agents show N (what one did), /agents create [--user] DESCRIPTION",
    args=_complete_args,
)
async def _agents(repl: Repl, args: str) -> None:
    action, _, rest = args.strip().partition(" ")
    if action in ("", "list", "manage"):
        show_agents(repl)
    elif action == "create":
        await create_agent(repl, rest.strip())
    elif action == "show":
        show_task(repl, rest.strip())
    else:
        repl.console.print(Text(USAGE, style="red"))


# --- the list -------------------------------------------------------------------------------


def current_catalog(repl: Repl) -> tuple[AgentCatalog, bool]:
    """The agents on disk now, and whether the session's catalog was behind them (it is
    then brought up to date, so the list shown is the one the model gets)."""
    session = repl.session
    fresh = discover_agents(session.cwd, session.home)
    agents = session.subagents
    if agents is None or agents.catalog == fresh:
        return fresh, False
    agents.reload(fresh)
    return fresh, True


def show_agents(repl: Repl) -> None:
    console = repl.console
    catalog, changed = current_catalog(repl)
    order = {"builtin": 0, "project": 1, "user": 2}
    agents = sorted(catalog.agents.values(), key=lambda a: (order.get(a.source, 3), a.name))
    console.print(Text("Agents (a project agent wins over a personal one of the same name):"))
    for agent in agents:
        _show_agent(repl, agent)
    if all(a.source == "builtin" for a in agents):
        console.print(
            Text(
                "  No agents of your own yet: /agents create DESCRIPTION writes one, or put a "
                "Markdown file in .qwen/agents/ (see docs/subagents.md).",
                style="dim",
            )
        )
    if catalog.problems:
        console.print(Text("Agent files not used:", style="yellow"))
        for problem in catalog.problems:
            console.print(Text(f"  {problem}", style="yellow"))
    if changed:
        console.print(
            Text(
                "The agent files changed since they were read: the model gets this list "
                "from its next request.",
                style="dim",
            )
        )
    _show_tasks(repl)


def _show_agent(repl: Repl, agent: SubagentDef) -> None:
    line = Text(f"  {agent.name}", style="bold")
    where = _SOURCES.get(agent.source, agent.source)
    if agent.path is not None:
        where += f" · {_display(repl, agent.path)}"
    line.append(f"  ({where})", style="dim")
    repl.console.print(line)
    first = next((ln.strip() for ln in agent.description.splitlines() if ln.strip()), "")
    repl.console.print(Text(f"      {first[:200]}"))
    details = ["tools: " + (", ".join(agent.tools) if agent.tools is not None else "all tools")]
    if agent.disallowed_tools:
        details.append("never: " + ", ".join(agent.disallowed_tools))
    if agent.model != "inherit":
        details.append(f"model: {agent.model}")
    if agent.plan_only:
        details.append("plan mode (read-only)")
    repl.console.print(Text("      " + " · ".join(details), style="dim"))


def _display(repl: Repl, path: Path) -> str:
    """`path` relative to the project when it is inside it, else as it is."""
    from qwen_code.settings_files import project_root

    try:
        return str(path.relative_to(project_root(repl.session.cwd)))
    except ValueError:
        return str(path)


def _session_tasks(repl: Repl) -> list[SubagentTask]:
    agents = repl.session.subagents
    return list(agents.tasks) if agents is not None else []


def show_task(repl: Repl, which: str) -> None:
    """`/agents show N`: the N-th subagent of this session (see `/agents`), expanded."""
    tasks = _session_tasks(repl)
    if not which.isdigit() or not 1 <= int(which) <= len(tasks):
        count = f"1-{len(tasks)}" if tasks else "none yet"
        repl.console.print(Text(f"Usage: /agents show N (this session's subagents: {count})"))
        return
    task = tasks[int(which) - 1]
    repl.console.print(Text.assemble((task.name, "bold magenta"), f"  {task.description}"))
    if task.transcript is None or not task.transcript.exists():
        repl.console.print(Text("No transcript (session recording is off).", style="dim"))
        return
    show_transcript(repl.console, task.transcript)


def _show_tasks(repl: Repl) -> None:
    tasks = _session_tasks(repl)
    if not tasks:
        return
    repl.console.print(Text("Subagents of this session (/agents show N for what one did):"))
    for number, task in enumerate(tasks, 1):
        elapsed = (task.ended if task.ended is not None else time.monotonic()) - task.started
        kind = " · background" if task.background else ""
        line = Text(f"  {number}. {task.name}", style="bold")
        line.append(f"  {task.description}  ")
        line.append(f"{task.status} · {format_elapsed(elapsed)}{kind}", style=_status(task.status))
        repl.console.print(line)


def _status(status: str) -> str:
    return {"running": "cyan", "completed": "green", "failed": "red"}.get(status, "yellow")


def format_elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60} s"


# --- /agents create -------------------------------------------------------------------------


def split_scope(args: str) -> tuple[Source, str]:
    """`--user DESCRIPTION` → ("user", DESCRIPTION); the project is the default."""
    scope: Source = "project"
    words = args.split(maxsplit=1)
    while words and words[0] in ("--user", "--project"):
        scope = "user" if words[0] == "--user" else "project"
        words = words[1].split(maxsplit=1) if len(words) > 1 else []
    return scope, " ".join(words).strip()


def agent_folder(repl: Repl, scope: Source) -> Path:
    """Where `/agents create` writes: the project's `.qwen/agents/` or `$QWEN_HOME/agents/`."""
    from qwen_code.settings_files import project_root

    session = repl.session
    if scope == "user":
        return session.home / "agents"
    return project_root(session.cwd) / ".qwen" / "agents"


def offered_tools(repl: Repl) -> list[str]:
    """The session's tools an agent may be given (not those that ask the user: a subagent
    has nobody to ask)."""
    return [tool.name for tool in repl.session.registry if tool.name not in USER_ONLY_TOOLS]


async def create_agent(repl: Repl, args: str) -> None:
    console = repl.console
    scope, description = split_scope(args)
    if not description:
        console.print(Text(USAGE, style="red"))
        return
    tools = offered_tools(repl)
    where = "for this project" if scope == "project" else "for the user, in every project"
    messages = [
        {"role": "system", "content": WRITER_PROMPT},
        {
            "role": "user",
            "content": (
                f"Write an agent from this description:\n\n{description}\n\n"
                f"Tools available: {', '.join(tools)}.\n"
                f"The agent will be saved {where}."
            ),
        },
    ]
    try:
        with console.status("Writing the agent…"):
            task = asyncio.ensure_future(repl.session.client.complete(messages))
            done, response = await repl.io.run_cancellable(task)
    except ModelError as exc:
        console.print(Text(f"Could not ask the model for the agent: {exc}", style="red"))
        return
    if not done:
        console.print(Text("Cancelled; nothing was written.", style="yellow"))
        return
    count_request(repl, response)
    folder = agent_folder(repl, scope)
    try:
        draft = parse_reply(response.text, tools)
        content = render_agent_file(
            draft.name,
            draft.description,
            draft.system_prompt,
            list(draft.tools) if draft.tools is not None else None,
        )
        parse_agent_text(content, folder / f"{draft.name}.md", scope)
    except (ValueError, TypeError) as exc:
        console.print(
            Text(
                f"The model's reply is not a usable agent ({exc}); nothing was written. "
                "Try again, perhaps with a more specific description.",
                style="red",
            )
        )
        excerpt = " ".join(response.text.split())
        if excerpt:
            cut = "…" if len(excerpt) > 300 else ""
            console.print(Text(f"  The reply began: {excerpt[:300]}{cut}", style="dim"))
        return
    await _confirm_and_write(repl, draft, content, folder / f"{draft.name}.md", scope)


async def _confirm_and_write(
    repl: Repl, draft: Draft, content: str, path: Path, scope: Source
) -> None:
    console = repl.console
    console.print(Text.assemble("Agent file ", (_display(repl, path), "bold"), ":"))
    console.rule(style="dim")
    console.print(Text(content.rstrip("\n")))
    console.rule(style="dim")
    if draft.dropped:
        console.print(
            Text(
                "  Left out tools this session does not have: " + ", ".join(draft.dropped),
                style="yellow",
            )
        )
    for note in _shadow_notes(repl, draft.name, path, scope):
        console.print(Text(f"  {note}", style="yellow"))
    if not await ask_yes_no(repl, _question(repl, path)):
        console.print(Text("Nothing was written."))
        return
    from qwen_code.atomic import atomic_write

    try:
        atomic_write(path, content.encode("utf-8"))
    except OSError as exc:
        console.print(Text(f"Could not write {path}: {exc}", style="red"))
        return
    console.print(Text(f"Wrote {_display(repl, path)}."))
    agents = repl.session.subagents
    if agents is not None:
        agents.reload(discover_agents(repl.session.cwd, repl.session.home))
        console.print(
            Text(f"The model can use the {draft.name} agent from its next request.", style="dim")
        )


def _question(repl: Repl, path: Path) -> str:
    """Whether to write the file, or (said first) to replace the one already there."""
    if not path.exists():
        return "Write it?"
    repl.console.print(
        Text(f"  {_display(repl, path)} already exists; writing replaces it.", style="yellow")
    )
    return "Overwrite it?"


def _shadow_notes(repl: Repl, name: str, path: Path, scope: Source) -> list[str]:
    """What the new agent hides, or what hides it, among the agents of the same name."""
    session = repl.session
    existing = discover_agents(session.cwd, session.home).get(name)
    if existing is None or existing.path == path:
        return []
    if existing.source == "builtin":
        return [f"It replaces the built-in {name} agent where it applies."]
    if existing.source == "project" and scope == "user":
        return [f"The project's own {name} agent ({existing.path}) wins over it here."]
    return [f"It takes the place of the {name} agent in {existing.path}."]


def count_request(repl: Repl, response: ModelResponse) -> None:
    """Count the request's tokens and cost in the session's statistics, as /compress does;
    the context figure stays the conversation's."""
    from qwen_code.agent.events import AssistantMessage

    stats = repl.stats
    last = stats.last_prompt_tokens
    stats.observe(AssistantMessage(text=response.text, usage=response.usage))
    stats.last_prompt_tokens = last


async def ask_yes_no(repl: Repl, question: str) -> bool:
    """One key on the REPL's input: y is yes; n, Enter, Esc or Ctrl+C is no."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

    bindings = KeyBindings()

    def answer(event: KeyPressEvent, yes: bool) -> None:
        event.app.current_buffer.insert_text("yes" if yes else "no")
        event.app.exit(result=yes)

    for key in ("y", "Y"):
        bindings.add(key, eager=True)(lambda event: answer(event, True))
    for key in ("n", "N", "enter", "escape", "c-c", "c-d"):
        bindings.add(key, eager=True)(lambda event: answer(event, False))
    bindings.add("<any>")(lambda event: None)
    prompt = PromptSession[bool](key_bindings=bindings, input=repl.io.input, output=repl.io.output)
    try:
        return bool(await prompt.prompt_async(f"{question} [y/N] "))
    except (KeyboardInterrupt, EOFError):
        return False


# --- reading the model's reply --------------------------------------------------------------


def parse_reply(text: str, tools: list[str]) -> Draft:
    """The model's reply → a checked `Draft`; ValueError says what is wrong with it. The
    JSON object may sit in a code fence, after reasoning, or before more text."""
    data = _json_object(text)
    name = kebab_name(_string(data, "name"))
    description = _string(data, "description")
    prompt = _string(data, "system_prompt", "systemPrompt", "prompt", "instructions")
    chosen, dropped = _tools(data.get("tools"), tools)
    return Draft(name, description, prompt, chosen, dropped)


def _json_object(text: str) -> dict[str, Any]:
    text = _THINK.sub("", text)
    decoder = json.JSONDecoder(strict=False)  # raw newlines inside strings are common
    found: list[dict[str, Any]] = []
    for chunk in [*_FENCE.findall(text), text]:
        for brace in re.finditer(r"\{", chunk):
            try:
                value, _ = decoder.raw_decode(chunk, brace.start())
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                if {"name", "description"} & value.keys():
                    return value
                found.append(value)
    if found:
        return found[0]
    raise ValueError("it holds no JSON object")


def _string(data: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise ValueError(f"its {keys[0]!r} is missing or empty")


def kebab_name(raw: str) -> str:
    """`Code Reviewer` → `code-reviewer`; ValueError when nothing usable is left."""
    name = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")
    name = name[:MAX_NAME].rstrip("-")
    if not _KEBAB.match(name):
        raise ValueError(f"its name {raw!r} has no letters or digits")
    return name


def _tools(value: Any, offered: list[str]) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """(the tools chosen, None for all; the names given that this session lacks)."""
    if value is None or value == [] or (isinstance(value, str) and value.strip() in ("", "*")):
        return None, ()
    if isinstance(value, str):
        if value.strip().lower() in ("all", "all tools"):
            return None, ()
        items = value.split(",")
    elif isinstance(value, list):
        items = [str(item) for item in value]
    else:
        raise ValueError("its 'tools' is neither a list nor null")
    known = set(offered)
    chosen: list[str] = []
    dropped: list[str] = []
    for item in items:
        bare = item.strip()
        if not bare:
            continue
        for name in TOOL_ALIASES.get(bare, (bare,)):
            server = name.startswith("mcp__") and any(t.startswith(name + "__") for t in known)
            if name in known or server:
                chosen.append(name)
            else:
                dropped.append(bare)
    if not chosen:
        raise ValueError(f"it names no tool this session has ({', '.join(dropped)})")
    return tuple(dict.fromkeys(chosen)), tuple(dict.fromkeys(dropped))
