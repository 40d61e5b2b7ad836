"""Events a tool may emit beside its result (`ToolOutput.events`); the agent passes them
on to the front ends with its own (`qwen_code.agent.events.Event`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


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
