"""`/chat save|resume|list|delete TAG`, `/resume`, `/restore [ID]`: saved conversations
and checkpoints from inside the session."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from qwen_code.errors import InputError
from qwen_code.session import resume
from qwen_code.session.checkpoints import CheckpointError, Checkpoints
from qwen_code.ui.commands import command

if TYPE_CHECKING:
    from qwen_code.ui.repl import Repl

CHAT_USAGE = "Usage: /chat save TAG | /chat resume TAG | /chat list | /chat delete TAG"


def _tags(repl: Repl) -> list[str]:
    return [tag for tag, _, _ in resume.list_chats(repl.home, repl.session.cwd)]


@command("chat", "Named conversations: /chat save|resume|list|delete TAG", args=_tags)
async def _chat(repl: Repl, args: str) -> None:
    action, _, tag = args.partition(" ")
    tag = tag.strip()
    session = repl.session
    try:
        if action == "save" and tag:
            messages = session.agent.conversation.messages[1:]
            path = resume.save_chat(repl.home, session.cwd, tag, messages, session.model)
            repl.console.print(Text(f"Saved the conversation as {tag!r} ({path})."))
        elif action == "resume" and tag:
            await session.replace_conversation(resume.load_chat(repl.home, session.cwd, tag))
            repl.console.print(Text(f"Resumed the conversation {tag!r}."))
        elif action == "delete" and tag:
            done = resume.delete_chat(repl.home, session.cwd, tag)
            repl.console.print(Text(f"Deleted {tag!r}." if done else f"No saved chat {tag!r}."))
        elif action == "list":
            _list_chats(repl)
        else:
            repl.console.print(f"[red]{CHAT_USAGE}[/red]")
    except InputError as exc:
        repl.console.print(Text(str(exc), style="red"))


def _list_chats(repl: Repl) -> None:
    chats = resume.list_chats(repl.home, repl.session.cwd)
    if not chats:
        repl.console.print("No saved chats. /chat save TAG saves this one.")
        return
    table = Table("tag", "saved", "messages", box=None)
    for tag, saved, count in chats:
        table.add_row(Text(tag), time.strftime("%Y-%m-%d %H:%M", time.localtime(saved)), str(count))
    repl.console.print(table)


@command("resume", "Continue another saved session of this project")
async def _resume(repl: Repl, args: str) -> None:
    from qwen_code.session.store import find_session, load
    from qwen_code.ui.picker import pick_session

    none = "No saved sessions for this project yet."
    session_id = args.strip() or await pick_session(
        repl.console, repl.home, repl.session.cwd, none=none
    )
    if not session_id:
        return
    path = find_session(repl.home, repl.session.cwd, session_id)
    if path is None:
        repl.console.print(Text(f"No saved session {session_id!r}.", style="red"))
        return
    saved = load(path)
    await repl.session.replace_conversation(saved.messages)
    repl.show_resumed(saved.messages)


@command("restore", "Undo changes: list checkpoints, or /restore ID to go back to one")
async def _restore(repl: Repl, args: str) -> None:
    session = repl.session
    checkpoints = Checkpoints(repl.home, session.cwd)
    try:
        if not args.strip():
            _list_checkpoints(repl, checkpoints)
            return
        current = session.agent.conversation.messages[1:]
        restored = checkpoints.restore(args.strip(), current=current)
    except CheckpointError as exc:
        repl.console.print(Text(str(exc), style="red"))
        return
    if restored.messages is not None:
        await session.replace_conversation(restored.messages)
        repl.recount_context()
    files = len(restored.restored) + len(restored.deleted)
    repl.console.print(
        Text(
            f"Restored checkpoint {restored.checkpoint.id[:8]}: {files} file(s) put back "
            f"({len(restored.deleted)} created since were removed); the conversation is back "
            f"to before {restored.checkpoint.prompt[:60]!r}."
        )
    )
    if restored.undo_id:
        undo = f"Changed your mind? /restore {restored.undo_id[:8]}"
        repl.console.print(Text(undo, style="dim"))


def _list_checkpoints(repl: Repl, checkpoints: Checkpoints) -> None:
    found = checkpoints.list(session_id=repl.session.id, limit=20)
    if not found:
        repl.console.print(
            "No checkpoints in this session yet (one is made before the first "
            "change of each prompt)."
        )
        return
    table = Table("id", "turn", "prompt", "time", "files changed since", box=None)
    for checkpoint in found:
        when = time.strftime("%H:%M:%S", time.localtime(checkpoint.created))
        changed = ", ".join(checkpoint.changed[:4]) + (" …" if len(checkpoint.changed) > 4 else "")
        table.add_row(
            checkpoint.id[:8],
            str(checkpoint.turn),
            Text(checkpoint.prompt[:40]),
            when,
            Text(changed or "none"),
        )
    repl.console.print(table)
    repl.console.print("[dim]/restore ID puts the files and the conversation back.[/dim]")
