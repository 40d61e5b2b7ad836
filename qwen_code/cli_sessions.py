"""`qwen-code sessions list|show|delete` and `qwen-code checkpoints list|restore`.

Only typer is imported at module level; the session modules are imported inside the
commands, so `--help` stays fast. `register(app)` adds both groups to the main app. Each
command reads its working directory, home and output stream from the `Environment`
that `cli.main` passes as the context object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from qwen_code.cli_help import HelpGroup
from qwen_code.environment import Environment, from_context

if TYPE_CHECKING:
    from pathlib import Path

sessions_app = typer.Typer(
    cls=HelpGroup,
    help="Saved sessions of this project.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@sessions_app.command("list")
def sessions_list(
    ctx: typer.Context,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list sessions without a prompt.")
    ] = False,
) -> None:
    """List this project's sessions, most recent first (continue one with -r ID); -p marks
    headless runs."""
    from qwen_code.session.resume import describe
    from qwen_code.session.store import list_sessions

    env = from_context(ctx)
    every = list_sessions(env.home, env.cwd, include_empty=True)
    sessions = every if show_all else [info for info in every if not info.empty]
    if not sessions:
        print("No saved sessions for this project.", file=env.stdout)
    for info in sessions:
        print(describe(info), file=env.stdout)
    hidden = len(every) - len(sessions)
    if hidden:
        print(
            f"({hidden} session(s) without a prompt not shown; --all lists them)",
            file=env.stderr,
        )


@sessions_app.command("show")
def sessions_show(
    ctx: typer.Context,
    session_id: Annotated[str, typer.Argument(help="Session id (or prefix).")],
) -> None:
    """Print a session's conversation."""
    from qwen_code.session.store import load

    env = from_context(ctx)
    messages = load(_session_path(env, session_id)).messages
    if not messages:
        print(
            "This session has no messages (it was cleared or restored to its start).",
            file=env.stdout,
        )
    for message in messages:
        role = message.get("role", "?")
        content = message.get("content") or ""
        calls = ", ".join(c["function"]["name"] for c in message.get("tool_calls") or ())
        text = content if isinstance(content, str) else str(content)
        print(
            f"[{role}]{' calls ' + calls if calls else ''}\n{text.strip()[:2000]}\n",
            file=env.stdout,
        )


@sessions_app.command("delete")
def sessions_delete(
    ctx: typer.Context,
    session_id: Annotated[str, typer.Argument(help="Session id (or prefix).")],
) -> None:
    """Delete a saved session."""
    env = from_context(ctx)
    path = _session_path(env, session_id)
    path.unlink()
    print(f"Deleted {path.stem}.", file=env.stdout)


def _session_path(env: Environment, session_id: str) -> Path:
    from qwen_code.errors import InputError
    from qwen_code.session.store import find_session

    path = find_session(env.home, env.cwd, session_id)
    if path is None:
        raise InputError(f"No saved session {session_id!r} for this project.")
    return path


checkpoints_app = typer.Typer(
    cls=HelpGroup,
    help="Workspace checkpoints (undo what the agent changed).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@checkpoints_app.command("list")
def checkpoints_list(ctx: typer.Context) -> None:
    """List this project's checkpoints, newest first, with the files changed since each."""
    import time

    from qwen_code.session.checkpoints import Checkpoints

    env = from_context(ctx)
    found = Checkpoints(env.home, env.cwd).list(limit=50)
    if not found:
        print("No checkpoints for this project.", file=env.stdout)
    for cp in found:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(cp.created))
        changed = ", ".join(cp.changed[:5]) + (" ..." if len(cp.changed) > 5 else "")
        print(
            f"{cp.id[:8]}  {when}  session {cp.session_id[:8]}  turn {cp.turn}  "
            f"{cp.prompt[:40]!r}  changed since: {changed or 'none'}",
            file=env.stdout,
        )


@checkpoints_app.command("restore")
def checkpoints_restore(
    ctx: typer.Context,
    checkpoint_id: Annotated[str, typer.Argument(help="Checkpoint id (or prefix).")],
) -> None:
    """Put the files back as they were at a checkpoint (and its session's conversation)."""
    from qwen_code.session.checkpoints import CheckpointError, Checkpoints
    from qwen_code.session.rewind import current_messages, rewind_transcript

    env = from_context(ctx)
    home, cwd, out = env.home, env.cwd, env.stdout
    checkpoints = Checkpoints(home, cwd)
    try:
        found = checkpoints.find(checkpoint_id)
        current = current_messages(home, cwd, found.session_id)
        restored = checkpoints.restore(found.id, current=current)
    except CheckpointError as exc:
        print(f"qwen-code: {exc}", file=env.stderr)
        raise typer.Exit(1) from exc
    for name in restored.restored:
        print(f"restored {name}", file=out)
    for name in restored.deleted:
        print(f"removed  {name}", file=out)
    session = rewind_transcript(home, cwd, restored)
    if session:
        print(
            f"The conversation of session {session[:8]} is back to that point: "
            f"qwen-code -r {session} continues it.",
            file=out,
        )
    if restored.undo_id:
        print(f"Changed your mind? qwen-code checkpoints restore {restored.undo_id[:8]}", file=out)


def register(app: typer.Typer) -> None:
    """Add `sessions` and `checkpoints` to `app`."""
    app.add_typer(sessions_app, name="sessions")
    app.add_typer(checkpoints_app, name="checkpoints")
