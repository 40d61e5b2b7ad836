"""Finding the session to continue (`--continue`, `--resume ID`) and named chats (`/chat`)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qwen_code.config import project_id
from qwen_code.errors import InputError
from qwen_code.session.store import LoadedSession, SessionInfo, find_session, list_sessions, load

if TYPE_CHECKING:
    from qwen_code.session.live import Session

PICK = "__pick__"
"""`--resume` given without an id: let the user pick."""

HEADLESS_TAG = "-p"
"""Marks a headless run (`qwen-code -p`, a program) in session listings."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""Not for the terminal: a title may be a piped file's first line (older sessions)."""


def describe(info: SessionInfo) -> str:
    """One line of a session listing: id, time, size, then `-p` for a headless run and the
    title (what the user asked first)."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.modified))
    title = " ".join(_CONTROL.sub(" ", info.title).split()) or "(no message)"
    tag = HEADLESS_TAG if info.headless else ""
    return (
        f"{info.id[:8]}  {when}  {info.messages:>4} msgs  {info.size / 1024:>7.1f} KB  "
        f"{tag:<{len(HEADLESS_TAG)}}  {title[:60]}"
    )


def resume_hint(session: Session) -> str | None:
    """What to print when the REPL ends: the command that continues this session; None
    when nothing of it is saved (no prompt sent yet, recording off)."""
    from qwen_code.session.persistence import Persistence

    persistence = session.observer(Persistence)
    writer = persistence.writer if persistence is not None else None
    if writer is None or not writer.path.is_file():
        return None
    if not any(m.get("role") == "user" for m in session.agent.conversation.messages):
        return None
    return f"Resume this session with: qwen-code -r {session.id}"


def resolve(home: Path, cwd: Path, *, latest: bool, session_id: str | None) -> LoadedSession | None:
    """The session to continue, or None for a new one. Raises InputError when asked for a
    session that does not exist."""
    if session_id and session_id != PICK:
        path = find_session(home, cwd, session_id)
        if path is None:
            raise InputError(
                f"No saved session {session_id!r} for this project.{_recent(home, cwd)}"
            )
        return load(path)
    if latest:
        sessions = list_sessions(home, cwd, limit=1)
        if not sessions:
            raise InputError("There is no saved session for this project to continue.")
        return load(sessions[0].path)
    return None


def damage_notice(loaded: LoadedSession | None) -> str | None:
    """One line for stderr when loading skipped damaged lines (a torn write, a full disk):
    the conversation continues, but without what those lines held."""
    if loaded is None or not loaded.torn_lines:
        return None
    return f"skipped {loaded.torn_lines} damaged line(s) in session file {loaded.info.path}"


def _recent(home: Path, cwd: Path) -> str:
    sessions = list_sessions(home, cwd, limit=5)
    if not sessions:
        return ""
    return "\nRecent sessions:\n" + "\n".join(f"  {describe(s)}" for s in sessions)


def chats_dir(home: Path, cwd: Path) -> Path:
    return home / "projects" / project_id(cwd) / "chats"


def _tag_path(home: Path, cwd: Path, tag: str) -> Path:
    if not re.fullmatch(r"[\w.-]{1,64}", tag):
        raise InputError("A chat tag is 1-64 letters, digits, '.', '-' or '_'.")
    return chats_dir(home, cwd) / f"{tag}.json"


def save_chat(home: Path, cwd: Path, tag: str, messages: list[dict[str, Any]], model: str) -> Path:
    from qwen_code.atomic import atomic_write

    path = _tag_path(home, cwd, tag)
    record = {"tag": tag, "saved": time.time(), "model": model, "messages": messages}
    atomic_write(path, json.dumps(record, ensure_ascii=False).encode("utf-8"))
    return path


def load_chat(home: Path, cwd: Path, tag: str) -> list[dict[str, Any]]:
    path = _tag_path(home, cwd, tag)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"No saved chat {tag!r}. /chat list shows them.") from exc
    except ValueError as exc:
        raise InputError(f"The saved chat {tag!r} is damaged ({path}).") from exc
    messages = record.get("messages") if isinstance(record, dict) else None
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def list_chats(home: Path, cwd: Path) -> list[tuple[str, float, int]]:
    """(tag, saved time, message count), newest first."""
    found = []
    for path in chats_dir(home, cwd).glob("*.json"):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            found.append((path.stem, float(record.get("saved", 0)), len(record["messages"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(found, key=lambda item: item[1], reverse=True)


def delete_chat(home: Path, cwd: Path, tag: str) -> bool:
    path = _tag_path(home, cwd, tag)
    if path.exists():
        path.unlink()
        return True
    return False
