"""After a checkpoint restore from the command line: rewind the session's transcript too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qwen_code.session.checkpoints import Restored
from qwen_code.session.store import SessionWriter, find_session, load


def current_messages(home: Path, cwd: Path, session_id: str) -> list[dict[str, Any]] | None:
    """The saved conversation of a session as it stands, None when there is none."""
    path = find_session(home, cwd, session_id) if session_id else None
    return load(path).messages if path is not None else None


def rewind_transcript(home: Path, cwd: Path, restored: Restored) -> str | None:
    """Append a `replace` record with the checkpoint's conversation to its session file,
    so `--resume` continues from there. Returns the session id, or None."""
    session_id = restored.checkpoint.session_id
    if restored.messages is None or not session_id:
        return None
    path = find_session(home, cwd, session_id)
    if path is None:
        return None
    writer = SessionWriter(path, session_id=session_id, cwd=cwd, model="")
    try:
        writer.replace(restored.messages)
    finally:
        writer.close()
    return session_id
