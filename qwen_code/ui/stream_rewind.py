"""`rewind_files`: put the workspace back as it was when a user message was sent.

Checkpoints (`session.checkpoints`) are made before the first change of a turn, so the
files as they were at a user message are the first checkpoint made at or after that
message's turn; when none was made since, nothing has changed and there is nothing to
do. Only files are rewound, as in Claude Code; the conversation goes on. The state just
before is itself saved as a checkpoint (`qwen-code checkpoints list`), so a rewind can be
undone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qwen_code.ui.stream_control import BadRequest

if TYPE_CHECKING:
    from qwen_code.session.live import Session


def rewind_files(session: Session, checkpoint_id: str | None, *, dry_run: bool) -> dict[str, Any]:
    """Restore the checkpoint (None: nothing changed since); what changed, or would."""
    from qwen_code.session.checkpoints import CheckpointError, Checkpoints

    if checkpoint_id is None:
        return {"canRewind": True, "filesChanged": []}
    if not session.settings.general.checkpointing.enabled:
        raise BadRequest(
            "checkpointing is off (general.checkpointing.enabled), so nothing to rewind"
        )
    checkpoints = Checkpoints(session.home, session.cwd)
    try:
        if dry_run:
            found = checkpoints.find(checkpoint_id)
            return {"canRewind": True, "filesChanged": list(found.changed)}
        restored = checkpoints.restore(checkpoint_id)
    except CheckpointError as exc:
        raise BadRequest(f"cannot rewind: {exc}") from None
    return {
        "canRewind": True,
        "filesChanged": [*restored.restored, *restored.deleted],
        "undoCheckpoint": restored.undo_id,
    }
