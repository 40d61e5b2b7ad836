"""`qwen-code sessions list|show|delete` and `qwen-code checkpoints list|restore`.

Only typer is imported at module level; the session modules are imported inside the
commands, so `--help` stays fast. `register(app)` adds both groups to the main app.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

sessions_app = typer.Typer(
    help="Saved sessions of this project.", no_args_is_help=True, rich_markup_mode=None
)


@sessions_app.command("list")
def sessions_list() -> None:
    """List this project's sessions, most recent first (continue one with -r ID)."""
    from pathlib import Path

    from qwen_code.config import qwen_home
    from qwen_code.session.resume import describe
    from qwen_code.session.store import list_sessions

    sessions = list_sessions(qwen_home(), Path.cwd())
    if not sessions:
        print("No saved sessions for this project.")
    for info in sessions:
        print(describe(info))


@sessions_app.command("show")
def sessions_show(
    session_id: Annotated[str, typer.Argument(help="Session id (or prefix).")],
) -> None:
    """Print a session's conversation."""
    from qwen_code.session.store import load

    messages = load(_session_path(session_id)).messages
    if not messages:
        print("This session has no messages (it was cleared or restored to its start).")
    for message in messages:
        role = message.get("role", "?")
        content = message.get("content") or ""
        calls = ", ".join(c["function"]["name"] for c in message.get("tool_calls") or ())
        text = content if isinstance(content, str) else str(content)
        print(f"[{role}]{' calls ' + calls if calls else ''}\n{text.strip()[:2000]}\n")


@sessions_app.command("delete")
def sessions_delete(
    session_id: Annotated[str, typer.Argument(help="Session id (or prefix).")],
) -> None:
    """Delete a saved session."""
    path = _session_path(session_id)
    path.unlink()
    print(f"Deleted {path.stem}.")


def _session_path(session_id: str) -> Any:
    from pathlib import Path

    from qwen_code.config import qwen_home
    from qwen_code.errors import InputError
    from qwen_code.session.store import find_session

    path = find_session(qwen_home(), Path.cwd(), session_id)
    if path is None:
        raise InputError(f"No saved session {session_id!r} for this project.")
    return path


checkpoints_app = typer.Typer(
    help="Workspace checkpoints (undo what the agent changed).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@checkpoints_app.command("list")
def checkpoints_list() -> None:
    """List this project's checkpoints, newest first, with the files changed since each."""
    import time
    from pathlib import Path

    from qwen_code.config import qwen_home
    from qwen_code.session.checkpoints import Checkpoints

    found = Checkpoints(qwen_home(), Path.cwd()).list(limit=50)
    if not found:
        print("No checkpoints for this project.")
    for cp in found:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(cp.created))
        changed = ", ".join(cp.changed[:5]) + (" ..." if len(cp.changed) > 5 else "")
        print(
            f"{cp.id[:8]}  {when}  session {cp.session_id[:8]}  turn {cp.turn}  "
            f"{cp.prompt[:40]!r}  changed since: {changed or 'none'}"
        )


@checkpoints_app.command("restore")
def checkpoints_restore(
    checkpoint_id: Annotated[str, typer.Argument(help="Checkpoint id (or prefix).")],
) -> None:
    """Put the files back as they were at a checkpoint (and its session's conversation)."""
    from pathlib import Path

    from qwen_code.config import qwen_home
    from qwen_code.session.checkpoints import CheckpointError, Checkpoints
    from qwen_code.session.rewind import current_messages, rewind_transcript

    home, cwd = qwen_home(), Path.cwd()
    checkpoints = Checkpoints(home, cwd)
    try:
        found = checkpoints.find(checkpoint_id)
        current = current_messages(home, cwd, found.session_id)
        restored = checkpoints.restore(found.id, current=current)
    except CheckpointError as exc:
        raise typer.Exit(_fail(str(exc))) from exc
    for name in restored.restored:
        print(f"restored {name}")
    for name in restored.deleted:
        print(f"removed  {name}")
    session = rewind_transcript(home, cwd, restored)
    if session:
        print(
            f"The conversation of session {session[:8]} is back to that point: "
            f"qwen-code -r {session} continues it."
        )
    if restored.undo_id:
        print(f"Changed your mind? qwen-code checkpoints restore {restored.undo_id[:8]}")


def _fail(message: str) -> int:
    print(f"qwen-code: {message}", file=sys.stderr)
    return 1


def register(app: typer.Typer) -> None:
    """Add `sessions` and `checkpoints` to `app`."""
    app.add_typer(sessions_app, name="sessions")
    app.add_typer(checkpoints_app, name="checkpoints")
