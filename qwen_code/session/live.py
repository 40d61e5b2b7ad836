"""A running session: the one owner of an agent and of what watches it.

`Session` holds the agent (which holds the client, the tool runner with its registry,
context and approver, and the conversation) and derives everything else from it, so
each fact lives in one place: `session.client` *is* `session.agent.model`.

Whatever must happen alongside the agent (saving the transcript, checkpoints before a
change, soon hooks) is a `SessionObserver`: it subscribes once and is told about turns,
events, changes about to be made, conversation swaps, /clear and close. Front ends only
consume `session.run(prompt)`'s events.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from qwen_code.agent.events import Event, ToolCall
from qwen_code.agent.loop import Agent
from qwen_code.session.models import context_window_for, max_output_tokens, model_config
from qwen_code.tools.base import ToolKind
from qwen_code.tools.shell import shutdown_background_jobs

if TYPE_CHECKING:
    from qwen_code.agent.approval import Approver
    from qwen_code.agent.tool_runner import ToolRunner
    from qwen_code.config import Provider, Settings
    from qwen_code.hooks import Hooks
    from qwen_code.llm.client import ChatClient
    from qwen_code.llm.pricing import PriceTable
    from qwen_code.llm.server_probe import ServerInfo
    from qwen_code.mcp.manager import McpManager
    from qwen_code.memory import ContextFile
    from qwen_code.subagents.runner import Subagents
    from qwen_code.tools.base import ToolContext
    from qwen_code.tools.registry import ToolRegistry


class SessionObserver:
    """Subscribes to a session (`Session.observe`). Every method does nothing unless
    overridden; each is awaited in turn, in subscription order.

    Order within a prompt: `on_turn_start`, then `on_event` for each event (and
    `before_change` before each tool call that edits files or runs a command, which may
    wait, never refuse), then `on_turn_end` (also when the turn failed or was cancelled).
    """

    async def on_turn_start(self, session: Session, prompt: str) -> None:
        """A user prompt is about to go to the model."""

    async def on_event(self, session: Session, event: Event) -> None:
        """An event of the running turn, before the front end sees it."""

    async def before_change(self, session: Session, call: ToolCall, kind: ToolKind) -> None:
        """A tool call that changes the workspace (`edit`) or runs a command (`execute`)
        was approved and is about to run."""

    async def on_turn_end(self, session: Session) -> None:
        """The turn is over: completed, failed, stopped by a limit or cancelled."""

    async def on_conversation_replaced(self, session: Session) -> None:
        """The conversation was swapped for another (a checkpoint, a saved chat)."""

    async def on_cleared(self, session: Session) -> None:
        """/clear: a new conversation with a new `session.id` has begun."""

    async def on_close(self, session: Session) -> None:
        """The session is closing; the agent is still there to read."""


ObserverT = TypeVar("ObserverT", bound=SessionObserver)


@dataclass(slots=True, kw_only=True)
class Session:
    """One conversation with its model client, tools and scratch space."""

    id: str
    agent: Agent
    settings: Settings
    provider: Provider
    home: Path
    """qwen-code's own directory (QWEN_HOME): sessions, checkpoints, settings."""
    system_prompt: str
    context_files: list[ContextFile] = field(default_factory=list)
    pricing: PriceTable | None = None
    """Token prices (settings `modelPricing` over the built-in table), for cost display."""
    observers: list[SessionObserver] = field(default_factory=list)
    mcp: McpManager | None = None
    """The session's MCP servers, when any is configured."""
    subagents: Subagents | None = None
    """What runs the `agent` tool's subagents (and holds their background tasks)."""
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Closed with the session, before its client (extra model clients)."""
    hooks: Hooks | None = None
    """The user's hooks (settings `hooks`), when any is configured and may run."""
    notes: list[str] = field(default_factory=list)
    """What opening the session left for the user to read (hooks left out, ...)."""
    server: ServerInfo | None = None
    """What a local model server told about itself at start-up (`llm.server_probe`)."""
    started_at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.runner.before_change = self._before_change

    # --- what the agent holds, named ----------------------------------------------------

    @property
    def client(self) -> ChatClient:
        return self.agent.model  # type: ignore[return-value]

    @property
    def runner(self) -> ToolRunner:
        return self.agent.tools

    @property
    def registry(self) -> ToolRegistry:
        return self.agent.tools.registry

    @property
    def tool_ctx(self) -> ToolContext:
        return self.agent.tools.ctx

    @property
    def approver(self) -> Approver:
        return self.agent.tools.approver

    @property
    def cwd(self) -> Path:
        return self.tool_ctx.workspace.root

    @property
    def model(self) -> str:
        return self.client.config.model

    @property
    def context_window(self) -> int | None:
        """Tokens the model accepts, when known (settings, server, or the built-in table)."""
        return self.agent.budget.window

    # --- observers ------------------------------------------------------------------------

    def observe(self, observer: SessionObserver) -> None:
        self.observers.append(observer)

    def observer(self, kind: type[ObserverT]) -> ObserverT | None:
        """The first observer of type `kind`, or None."""
        return next((o for o in self.observers if isinstance(o, kind)), None)

    async def _before_change(self, call: ToolCall, kind: ToolKind) -> None:
        for observer in self.observers:
            await observer.before_change(self, call, kind)

    # --- running --------------------------------------------------------------------------

    async def run(
        self, prompt: str, *, media: tuple[dict[str, Any], ...] = ()
    ) -> AsyncIterator[Event]:
        """`agent.run(prompt)`, with every observer told as it goes; `media`: attached
        images, as content parts."""
        observers = list(self.observers)
        for observer in observers:
            await observer.on_turn_start(self, prompt)
        try:
            async for event in self.agent.run(prompt, media=media):
                for observer in observers:
                    await observer.on_event(self, event)
                yield event
        finally:
            for observer in observers:
                await observer.on_turn_end(self)

    async def replace_conversation(self, messages: list[dict[str, Any]]) -> None:
        """Continue from other messages (a restored checkpoint, a saved chat)."""
        self.agent.conversation.reset(messages)
        self.agent.budget.reset()
        for observer in self.observers:
            await observer.on_conversation_replaced(self)

    async def clear(self) -> None:
        """Start a new conversation, with a new id and transcript (same system prompt, so
        server prefix caches still hit). The old session can still be resumed."""
        self.id = str(uuid.uuid4())
        self.agent.conversation.reset()
        self.agent.budget.reset()
        for observer in self.observers:
            await observer.on_cleared(self)

    def switch_model(self, model: str, served: list[dict[str, Any]] | None = None) -> None:
        """Use another model from the next request on."""
        client = self.client
        client.config = model_config(self.settings, self.provider, model)
        budget = self.agent.budget
        budget.window = context_window_for(self.settings, model, served)
        budget.max_output_tokens = max_output_tokens(client.config)

    async def aclose(self) -> None:
        """Stop background jobs, tell the observers, close connections, remove the
        scratch directory."""
        try:
            if self.subagents is not None:
                await self.subagents.aclose()
            await shutdown_background_jobs(self.tool_ctx)
            if self.tool_ctx.sandbox is not None:
                self.tool_ctx.sandbox.close()
        finally:
            try:
                for observer in self.observers:
                    await observer.on_close(self)
            finally:
                for close in self.closers:
                    await close()
                await self.client.aclose()
                if self.tool_ctx.scratch_dir is not None:
                    shutil.rmtree(self.tool_ctx.scratch_dir, ignore_errors=True)
