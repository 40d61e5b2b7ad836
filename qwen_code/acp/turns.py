"""A session run from the editor: its prompt turns, streamed as `session/update`s.

Each `session/prompt` runs one user turn in its own task, so `session/cancel` can cancel
it (the agent loop closes what was in progress and keeps the history consistent); the
prompt is then answered with stop reason `cancelled`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from acp import RequestError

from qwen_code.acp.options import mode_changed
from qwen_code.acp.prompt import user_message
from qwen_code.acp.updates import (
    error_message,
    message,
    plan_from_todos,
    stop_reason,
    thought,
    tool_running,
)
from qwen_code.agent.events import (
    ApprovalRequested,
    AssistantMessage,
    Error,
    TextDelta,
    TodosUpdated,
    ToolCallStarted,
    ToolNotice,
    ToolResult,
    TurnEnd,
)
from qwen_code.errors import QwenCodeError

if TYPE_CHECKING:
    from acp.interfaces import Client
    from acp.schema import StopReason

    from qwen_code.acp.calls import ToolCallBook
    from qwen_code.agent.events import Event
    from qwen_code.session.live import Session

log = logging.getLogger(__name__)


class TurnUpdates:
    """One turn's events as updates, in order; `stop` is how the turn ended."""

    def __init__(self, session: Session, book: ToolCallBook) -> None:
        self.session = session
        self.book = book
        self.stop: StopReason = "end_turn"
        self.finish_reason: str | None = None
        self.mode = session.runner.mode
        self._handlers: dict[type, Callable[[Any], Awaitable[list[Any]]]] = {
            TextDelta: self._text,
            AssistantMessage: self._assistant,
            ToolCallStarted: self._started,
            ApprovalRequested: self._approval,
            ToolResult: self._result,
            TodosUpdated: self._todos,
            ToolNotice: self._notice,
            Error: self._error,
            TurnEnd: self._end,
        }

    async def convert(self, event: Event) -> list[Any]:
        handler = self._handlers.get(type(event))
        found = await handler(event) if handler is not None else []
        if self.session.runner.mode != self.mode:  # exit_plan_mode switched it
            self.mode = self.session.runner.mode
            found.extend(mode_changed(self.session))
        return found

    async def _text(self, event: TextDelta) -> list[Any]:
        return [message(event.text)] if event.text else []

    async def _assistant(self, event: AssistantMessage) -> list[Any]:
        self.finish_reason = event.finish_reason
        return []

    async def _started(self, event: ToolCallStarted) -> list[Any]:
        return [await self.book.start(event)]

    async def _approval(self, event: ApprovalRequested) -> list[Any]:
        return [tool_running(event.call.id)] if event.decision == "allowed" else []

    async def _result(self, event: ToolResult) -> list[Any]:
        return [self.book.finish(event)]

    async def _todos(self, event: TodosUpdated) -> list[Any]:
        return [plan_from_todos(event.todos)]

    async def _notice(self, event: ToolNotice) -> list[Any]:
        return [thought(event.message)]

    async def _error(self, event: Error) -> list[Any]:
        return [thought(event.message)] if event.retrying else [error_message(event)]

    async def _end(self, event: TurnEnd) -> list[Any]:
        self.stop = stop_reason(event, self.finish_reason)
        return []


@dataclass(slots=True, kw_only=True)
class EditorSession:
    """A qwen-code session and the editor's view of it."""

    session: Session
    client: Client
    book: ToolCallBook
    notes: list[str] = field(default_factory=list)
    """What start-up left out (context files, MCP servers), shown at the first prompt."""
    turn: asyncio.Task[StopReason] | None = None
    cancelled: bool = False

    @property
    def id(self) -> str:
        return self.session.id

    async def prompt(self, blocks: list[Any]) -> StopReason:
        """Run one user turn to its end; `cancelled` when `cancel` stopped it."""
        if self.turn is not None and not self.turn.done():
            raise RequestError.invalid_request({"message": "A prompt is already running here."})
        self.cancelled = False
        self.turn = asyncio.create_task(self._run(blocks))
        return await self.turn

    def cancel(self) -> None:
        if self.turn is not None and not self.turn.done():
            self.cancelled = True
            self.turn.cancel()

    async def send(self, update: Any) -> None:
        await self.client.session_update(session_id=self.id, update=update)

    async def aclose(self) -> None:
        self.cancel()
        if self.turn is not None:
            await asyncio.wait({self.turn})  # its outcome was the prompt's to report
        await self.session.aclose()

    async def _run(self, blocks: list[Any]) -> StopReason:
        try:
            return await self._drive(blocks)
        except asyncio.CancelledError:
            if not self.cancelled:
                raise
            return "cancelled"
        except ConnectionError:
            return "end_turn"  # the editor went away; nobody reads the answer
        except QwenCodeError as exc:
            await self.send(message(f"\n\n**Error:** {exc}\n"))
            return "end_turn"
        except Exception as exc:
            log.warning("the turn failed: %r", exc, exc_info=log.isEnabledFor(logging.DEBUG))
            await self.send(message(f"\n\n**Internal error:** {exc!r}\n"))
            return "end_turn"

    async def _drive(self, blocks: list[Any]) -> StopReason:
        notes, self.notes = self.notes, []
        said = await user_message(self.session.tool_ctx, blocks)
        for note in [*notes, *said.notes]:
            await self.send(thought(f"qwen-code: {note}\n"))
        if not said.text and not said.media:
            return "end_turn"
        updates = TurnUpdates(self.session, self.book)
        events = self.session.run(said.text, media=said.media)
        async with contextlib.aclosing(events):  # type: ignore[type-var]
            async for event in events:
                for update in await updates.convert(event):
                    await self.send(update)
        return updates.stop
