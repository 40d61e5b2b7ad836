"""What the hooks of one event decided, and the events there are.

`HookOutcome` is the merged answer of every hook that ran for one event (they run in
parallel): the core reads only this, never a hook's raw output. Field by field it is
what Claude Code and Qwen Code read from a hook: exit code 2 or `decision: "block"` /
`"deny"` blocks (`blocked`, with `reason` for the model or the user), `continue: false`
stops (`stop`, `stop_reason`), `hookSpecificOutput.permissionDecision` (PreToolUse) or
`hookSpecificOutput.decision.behavior` (PermissionRequest) decide approval
(`permission`), `updatedInput` replaces a tool call's arguments, `additionalContext` and
plain stdout (where the event allows) add context for the model, `systemMessage` and
failed hooks are shown to the user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EVENTS = (
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "PostToolUseFailure",
    "UserPromptSubmit",
    "Stop",
    "SubagentStart",
    "SubagentStop",
    "PreCompact",
    "PostCompact",
    "SessionStart",
    "SessionEnd",
    "Notification",
)
"""The events qwen-code fires (Claude Code's and Qwen Code's names)."""

CONTEXT_EVENTS = frozenset({"SessionStart", "UserPromptSubmit"})
"""Events whose plain stdout (exit 0, not a JSON object) is context for the model."""

Permission = Literal["allow", "deny", "ask"]


@dataclass(slots=True)
class HookOutcome:
    """The merged result of one event's hooks. Blocking wins over allowing; a deny over
    an ask over an allow; the first `updated_input` in configuration order is used."""

    blocked: bool = False
    reason: str = ""
    """Why it was blocked (stderr of an exit 2, or `reason`): for the model on PreToolUse,
    PostToolUse, Stop and SubagentStop, for the user elsewhere."""
    permission: Permission | None = None
    permission_reason: str = ""
    updated_input: dict[str, Any] | None = None
    additional_context: list[str] = field(default_factory=list)
    stop: bool = False
    """`continue: false`: end the turn (or the session start) now."""
    stop_reason: str = ""
    system_messages: list[str] = field(default_factory=list)
    """For the user: `systemMessage`s, and plain stdout of events without context."""
    errors: list[str] = field(default_factory=list)
    """For the user: hooks that failed (exit code other than 0 and 2, a timeout, a
    command that could not start), each named; they never block."""
    ran: int = 0
    """How many hooks ran (0: none matched)."""

    @property
    def context(self) -> str:
        return "\n\n".join(c for c in self.additional_context if c.strip())
