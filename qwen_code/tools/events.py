"""Events a tool may emit beside its result (`ToolOutput.events`); the agent passes them
on to the front ends with its own (`qwen_code.agent.events.Event`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

PROGRESS: ContextVar[Callable[[Any], None] | None] = ContextVar("tool_progress", default=None)
"""Where a running tool may send events while it works (a subagent's steps): set by the
tool runner around each execution; the runner yields them to the loop as they come."""
CURRENT_CALL: ContextVar[str] = ContextVar("tool_call_id", default="")
"""The id of the tool call being executed (for events that name their parent call)."""
CONFIRM: ContextVar[Callable[[str], Awaitable[bool]] | None] = ContextVar(
    "tool_confirm", default=None
)
"""Ask the user, while a tool runs, to approve something it found only then (a fetched
URL that resolves to a private address): `await CONFIRM.get()(reason)`. Set by the tool
runner per call; the answer follows the session's approver (headless: no)."""
ALLOWED_HOST: ContextVar[Callable[[str], bool] | None] = ContextVar("allowed_host", default=None)
"""Whether an allow rule names this host for the running tool (`WebFetch(domain:HOST)`):
a network tool then needs no question for it, private address or not. Set per call."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TodosUpdated:
    """The model rewrote its task list."""

    todos: tuple[dict[str, Any], ...]
    type: Literal["todos_updated"] = "todos_updated"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolNotice:
    """Something the user should know about how a tool ran (not for the model), e.g.
    that commands run unsandboxed because the sandbox cannot be had here."""

    message: str
    level: Literal["info", "warning"] = "warning"
    type: Literal["tool_notice"] = "tool_notice"


@dataclass(frozen=True, slots=True, kw_only=True)
class SideUsage:
    """A model request a tool made for its own use (`ToolContext.side_model`): it counts
    in the session's usage and cost."""

    usage: Any
    """The request's `UsageInfo`."""
    model: str = ""
    purpose: str = ""
    type: Literal["side_usage"] = "side_usage"
