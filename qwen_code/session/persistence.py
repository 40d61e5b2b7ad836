"""What a live session keeps on disk: its transcript (as it happens) and checkpoints
(before the first change of each prompt). Front ends get both through `Session.run`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qwen_code.agent.events import (
    AssistantMessage,
    Compressed,
    Event,
    ToolCall,
    ToolResult,
    TurnEnd,
)
from qwen_code.session.checkpoints import CheckpointError, Checkpoints
from qwen_code.session.store import SessionWriter, sessions_dir
from qwen_code.tools.base import ToolKind

if TYPE_CHECKING:
    from qwen_code.agent.conversation import Conversation
    from qwen_code.config import Settings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Persistence:
    writer: SessionWriter | None
    checkpoints: Checkpoints | None
    session_id: str
    include_shell: bool = False
    turn: int = 0
    prompt: str = ""
    _checkpointed: bool = False
    _warm: asyncio.Future[None] | None = field(default=None, repr=False)
    last_checkpoint: str | None = None

    @classmethod
    def create(
        cls, settings: Settings, *, home: Path, cwd: Path, session_id: str, model: str
    ) -> Persistence:
        general = settings.general
        writer = None
        if general.session_recording:
            path = sessions_dir(home, cwd) / f"{session_id}.jsonl"
            writer = SessionWriter(path, session_id=session_id, cwd=cwd, model=model)
        checkpoints = Checkpoints(home, cwd) if general.checkpointing.enabled else None
        return cls(writer, checkpoints, session_id, general.checkpointing.include_shell)

    def start_warm_up(self) -> None:
        """Load gitpython and open the shadow repository in a background (daemon) thread,
        so the first checkpoint does not hold up the first edit, and a short run does not
        wait for it at exit."""
        if self.checkpoints is None or self._warm is not None:
            return
        with contextlib.suppress(RuntimeError):  # no running loop: no warm-up
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            checkpoints = self.checkpoints

            def warm() -> None:
                error: BaseException | None = None
                try:
                    checkpoints.warm()
                except BaseException as exc:  # reported when the checkpoint is made
                    error = exc
                with contextlib.suppress(RuntimeError):  # the loop ended first: nobody waits
                    loop.call_soon_threadsafe(_settle, future, error)

            threading.Thread(target=warm, name="qwen-code-git-warm-up", daemon=True).start()
            self._warm = future

    async def run(
        self, conversation: Conversation, events: AsyncIterator[Event]
    ) -> AsyncIterator[Event]:
        """Pass the events on, saving the transcript as messages are added."""
        self.turn += 1
        self._checkpointed = False
        try:
            async for event in events:
                if isinstance(event, AssistantMessage | ToolResult | TurnEnd | Compressed):
                    self.sync(conversation)
                if isinstance(event, AssistantMessage):
                    # From here on the process mostly waits on the model and the tools:
                    # a good moment to load git for the first checkpoint.
                    self.start_warm_up()
                yield event
        finally:
            self.sync(conversation)

    def sync(self, conversation: Conversation) -> None:
        if self.writer is None:
            return
        try:
            self.writer.sync(conversation.messages[1:])
        except OSError as exc:  # a full disk must not end the session
            log.warning("could not save the session transcript: %s", exc)

    async def before_change(
        self, call: ToolCall, kind: ToolKind, conversation: Conversation
    ) -> None:
        """Snapshot the workspace before the first change of this prompt."""
        if self.checkpoints is None or self._checkpointed:
            return
        if kind != "edit" and not (kind == "execute" and self.include_shell):
            return
        self._checkpointed = True
        if self._warm is not None:
            with contextlib.suppress(Exception):  # a failed warm-up: create() reports it
                await asyncio.shield(self._warm)
        history = conversation.messages[1:]
        start = _last_user_index(history)
        try:
            self.last_checkpoint = await asyncio.to_thread(
                self.checkpoints.create,
                session_id=self.session_id,
                turn=self.turn,
                prompt=_text(history[start]) if start is not None else "",
                messages=history[:start] if start is not None else history,
            )
        except CheckpointError as exc:
            log.warning("no checkpoint before %s: %s", call.name, exc)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def restart(self, session_id: str, *, home: Path, cwd: Path, model: str) -> None:
        """A new conversation (/clear): a new transcript file; checkpoints carry on."""
        self.close()
        self.session_id = session_id
        self.turn = 0
        if self.writer is not None:
            path = sessions_dir(home, cwd) / f"{session_id}.jsonl"
            self.writer = SessionWriter(path, session_id=session_id, cwd=cwd, model=model)


def _last_user_index(messages: list[dict[str, Any]]) -> int | None:
    """Where the current prompt starts: a checkpoint restores the conversation to just
    before it (the files are as they were when it was sent)."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "user":
            return index
    return None


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
