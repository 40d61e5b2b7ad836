"""What a live session keeps on disk: its transcript (as it happens) and checkpoints
(before the first change of each prompt). `Persistence` is a session observer: the
session tells it about each turn, event and change, so front ends get both for free."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from qwen_code.agent.events import (
    AssistantMessage,
    Compressed,
    Event,
    ToolCall,
    ToolResult,
    TurnEnd,
)
from qwen_code.session.checkpoints import CheckpointError, Checkpoints, Snapshot
from qwen_code.session.live import SessionObserver
from qwen_code.session.store import SessionWriter, sessions_dir
from qwen_code.tools.base import ToolKind

if TYPE_CHECKING:
    from qwen_code.agent.conversation import Conversation
    from qwen_code.config import Settings
    from qwen_code.session.live import Session

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(slots=True)
class Persistence(SessionObserver):
    writer: SessionWriter | None
    checkpoints: Checkpoints | None
    session_id: str
    include_shell: bool = False
    turn: int = 0
    prompt: str = ""
    _checkpointed: bool = False
    _warm: asyncio.Future[None] | None = field(default=None, repr=False)
    _snapshot: asyncio.Future[Snapshot] | None = field(default=None, repr=False)
    last_checkpoint: str | None = None
    save_problem: str | None = None
    """Why the transcript is not fully saved right now (None when it is): set at the first
    failed save and logged once, cleared when a later save catches up."""
    _notice_shown: bool = field(default=False, repr=False)
    title: str | None = None
    """The session's title for listings, when the front end knows it better than the first
    user message does (a headless run with piped stdin: the `-p` text). See `name_session`."""

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
        """Load gitpython and open the shadow repository in the background (the REPL does
        this while the user types the first prompt)."""
        if self.checkpoints is not None and self._warm is None:
            self._warm = _in_daemon_thread(self.checkpoints.warm)
            _forget(self._warm)  # a failure shows when a checkpoint is made

    def _start_snapshot(self, conversation: Conversation) -> None:
        """Snapshot the workspace in the background, once per prompt, as soon as the
        request is out: by the time the model asks for its first change the snapshot is
        usually there, and that change waits for nothing but a ref update."""
        if self.checkpoints is None or self._snapshot is not None:
            return
        history = conversation.messages[1:]
        start = _last_user_index(history)
        checkpoints, turn, session_id = self.checkpoints, self.turn, self.session_id
        prompt = _text(history[start]) if start is not None else ""
        self._snapshot = _in_daemon_thread(
            lambda: checkpoints.snapshot(session_id=session_id, turn=turn, prompt=prompt)
        )

    # --- as a session observer -------------------------------------------------------------

    async def on_turn_start(self, session: Session, prompt: str) -> None:
        self.turn += 1
        self._checkpointed = False
        self._snapshot = None
        self._label(session)

    async def on_event(self, session: Session, event: Event) -> None:
        """Save the transcript as messages are added. The first event means the request
        has been sent: from here on the process mostly waits on the model, a good time
        to snapshot."""
        conversation = session.agent.conversation
        self._start_snapshot(conversation)
        if isinstance(event, AssistantMessage | ToolResult | TurnEnd | Compressed):
            self.sync(conversation)

    async def on_turn_end(self, session: Session) -> None:
        self.sync(session.agent.conversation)
        _forget(self._snapshot)

    async def before_change(self, session: Session, call: ToolCall, kind: ToolKind) -> None:
        await self.checkpoint_before(call, kind, session.agent.conversation)

    async def on_conversation_replaced(self, session: Session) -> None:
        self._label(session)
        self.sync(session.agent.conversation)

    async def on_cleared(self, session: Session) -> None:
        self.restart(session.id, home=session.home, cwd=session.cwd, model=session.model)
        self.sync(session.agent.conversation)

    async def on_close(self, session: Session) -> None:
        self.sync(session.agent.conversation)
        self.close()

    # --- the work ----------------------------------------------------------------------------

    def _label(self, session: Session) -> None:
        """Tell the writer of a new file what its header says: the title, and whether
        nobody can be asked (a headless run), so listings tell those from conversations."""
        if self.writer is not None:
            sandbox = session.tool_ctx.sandbox
            headless = sandbox is not None and sandbox.headless
            self.writer.label(title=self.title, headless=headless)

    def sync(self, conversation: Conversation) -> None:
        """Save what is new. A failure (a full disk) never ends the session: it is reported
        once, and every later call tries again to write what is missing."""
        if self.writer is None:
            return
        try:
            self.writer.sync(conversation.messages[1:])
        except OSError as exc:
            self._save_failed(exc)
            return
        if self.save_problem is not None:
            log.warning("session saved again: nothing is missing from %s", self.writer.path)
            self.save_problem = None

    def _save_failed(self, exc: OSError) -> None:
        if self.save_problem is not None:
            return  # already reported: not once per message
        reason = exc.strerror or str(exc) or type(exc).__name__
        self.save_problem = (
            f"session could not be saved: {reason}; the conversation continues but -c may "
            "miss part of it"
        )
        self._notice_shown = False
        log.warning("%s", self.save_problem)

    def take_save_notice(self) -> str | None:
        """The save problem for a front end to show, once per problem (None otherwise)."""
        if self.save_problem is None or self._notice_shown:
            return None
        self._notice_shown = True
        return self.save_problem

    async def checkpoint_before(
        self, call: ToolCall, kind: ToolKind, conversation: Conversation
    ) -> None:
        """Make the prompt's snapshot a checkpoint before its first change. A shell
        command that is not checkpointed still waits for a snapshot in progress, so the
        snapshot never sees half of what the command does."""
        if self.checkpoints is None or self._checkpointed or kind not in ("edit", "execute"):
            return
        self._start_snapshot(conversation)
        assert self._snapshot is not None
        try:
            snapshot = await asyncio.shield(self._snapshot)
        except Exception as exc:  # no git, unwritable home: the change goes ahead
            self._checkpointed = True
            log.warning("no checkpoint before %s: %s", call.name, exc)
            return
        if kind == "execute" and not self.include_shell:
            return
        self._checkpointed = True
        history = conversation.messages[1:]
        start = _last_user_index(history)
        messages = history[:start] if start is not None else history
        try:
            # In a thread: the lock may be held by a snapshot of an interrupted prompt.
            self.last_checkpoint = await asyncio.to_thread(
                self.checkpoints.adopt, snapshot, messages
            )
        except (CheckpointError, OSError) as exc:
            log.warning("no checkpoint before %s: %s", call.name, exc)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def restart(self, session_id: str, *, home: Path, cwd: Path, model: str) -> None:
        """A new conversation (/clear): a new transcript file; checkpoints carry on."""
        self.close()
        self.session_id = session_id
        self.turn = 0
        self.title = None  # a new conversation: its own first prompt names it
        self.save_problem = None  # the new file gets its own report
        if self.writer is not None:
            path = sessions_dir(home, cwd) / f"{session_id}.jsonl"
            self.writer = SessionWriter(path, session_id=session_id, cwd=cwd, model=model)


def name_session(session: Session, title: str | None) -> None:
    """Title a new session by what the user asked, before its first prompt runs: a
    headless run's `-p` text, which the first user message holds after piped stdin
    (`cat f | qwen-code -p "explain this"` is listed as "explain this"). A continued
    session keeps the title it began with."""
    persistence = session.observer(Persistence)
    if persistence is not None and title and title.strip():
        persistence.title = title


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


def _in_daemon_thread(work: Callable[[], T]) -> asyncio.Future[T] | None:
    """Run `work` in a daemon thread (a short run never waits for it at exit); the future
    settles on the running loop. None when there is no running loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    future: asyncio.Future[T] = loop.create_future()

    def target() -> None:
        try:
            result: Any = work()
            error: BaseException | None = None
        except BaseException as exc:  # handed to whoever awaits the future
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop ended first: nobody waits
            loop.call_soon_threadsafe(_settle, future, result, error)

    threading.Thread(target=target, name="qwen-code-checkpoints", daemon=True).start()
    return future


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _forget(future: asyncio.Future[Any] | None) -> None:
    """Retrieve an unused future's error, if any, so asyncio does not warn about it."""
    if future is None:
        return
    if future.done():
        if not future.cancelled():
            future.exception()
    else:
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
