"""`/memory show | add TEXT | refresh` and `/init`: the instruction files (QWEN.md,
AGENTS.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.markdown import Markdown
from rich.text import Text

from qwen_code import memory
from qwen_code.prompts import build_system_prompt
from qwen_code.ui.commands import command

if TYPE_CHECKING:
    from qwen_code.ui.repl import Repl

USAGE = "Usage: /memory show | /memory add TEXT | /memory refresh"


@command(
    "memory",
    "Instruction files: /memory show, /memory add TEXT, /memory refresh",
    args=lambda repl: ["show", "add", "refresh"],
)
async def _memory(repl: Repl, args: str) -> None:
    action, _, rest = args.partition(" ")
    if action in ("", "show"):
        show(repl)
    elif action == "add" and rest.strip():
        name = memory.memory_file_name(repl.session.settings.context.file_names())
        path = memory.add_memory(rest, repl.home, name)
        repl.console.print(Text(f"Saved to {path}."))
        refresh(repl)
    elif action == "refresh":
        refresh(repl)
    else:
        repl.console.print(f"[red]{USAGE}[/red]")


@command("init", "Analyse the project and write a QWEN.md")
async def _init(repl: Repl, args: str) -> None:
    from qwen_code.prompts import load

    before = _project_files(repl)
    prompt = load("init.md", {}, project_dir=repl.session.cwd, user_dir=repl.home)
    await repl.send(prompt)
    if _project_files(repl) != before:  # the model wrote QWEN.md: use it from now on
        refresh(repl)


def _project_files(repl: Repl) -> dict[Path, tuple[int, int] | None]:
    """The project's own instruction files and their (mtime, size), None when absent."""
    names = repl.session.settings.context.file_names()
    found: dict[Path, tuple[int, int] | None] = {}
    for name in names:
        path = repl.session.cwd / name
        try:
            info = path.stat()
        except OSError:
            found[path] = None
        else:
            found[path] = (info.st_mtime_ns, info.st_size)
    return found


def show(repl: Repl) -> None:
    for note in memory.notices(repl.session.context_files):
        repl.console.print(Text(f"note: {note}", style="yellow"))
    files = [f for f in repl.session.context_files if not f.skipped]
    if not files:
        repl.console.print(
            "No QWEN.md or AGENTS.md in use. /init writes a QWEN.md for this project."
        )
        return
    for file in files:
        repl.console.rule(Text(str(file.path)))
        repl.console.print(Markdown(file.content))
        for imported in file.imports:
            repl.console.print(Text(f"imports {imported}", style="dim"))


def refresh(repl: Repl) -> None:
    """Read the files again and put the new system prompt into the conversation."""
    session = repl.session
    extra = [r for r in session.tool_ctx.workspace.extra_roots if r != session.tool_ctx.scratch_dir]
    prompt, files = build_system_prompt(
        session.settings, session.cwd, home=repl.home, extra_roots=extra
    )
    session.system_prompt, session.context_files = prompt, files
    messages = session.agent.conversation.messages
    if messages and messages[0]["role"] == "system":
        messages[0]["content"] = prompt
    names = ", ".join(str(f.path) for f in files if not f.skipped) or "none"
    repl.console.print(Text(f"Instruction files reloaded ({names}).", style="dim"))
    for note in memory.notices(files):
        repl.console.print(Text(f"note: {note}", style="yellow"))
