"""`can_use_tool`: the caller's own approval callback, as the session's `Approver`.

The session decides first (deny rules, plan mode, allow rules, the mode): only calls that
would be asked about in a terminal reach the callback. It answers `Allow()` (optionally
with `updated_input`, checked again as the model's arguments are) or `Deny(message)`;
`Deny(interrupt=True)` also ends the turn. Without a callback such calls are denied, as in
a headless run.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from qwen_code.agent.approval import ApprovalAnswer, ApprovalRequest, HeadlessApprover

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Allow:
    """Run the call; with `updated_input`, with these arguments instead."""

    updated_input: dict[str, Any] | None = None
    behavior: Literal["allow"] = "allow"


@dataclass(frozen=True, slots=True)
class Deny:
    """Do not run the call; `message` tells the model why. `interrupt`: end the turn too."""

    message: str = ""
    interrupt: bool = False
    behavior: Literal["deny"] = "deny"


PermissionResult: TypeAlias = Allow | Deny


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolPermissionContext:
    """What the session knows about a call it asks about."""

    tool_use_id: str
    kind: str
    """read, edit, execute, network or think."""
    decision_reason: str
    """Why it needs approval, e.g. "run_shell_command runs a command"."""
    summary: str = ""
    """The key argument in one line (a path, a command)."""
    preview: str | None = None
    """What the call would change (a diff for edits), when the tool can tell."""
    suggested_rule: str = ""
    """An allow rule that would cover this call, e.g. `Bash(git status *)`."""
    agent_id: str | None = None
    """The subagent making the call; None for the main agent."""
    permission_mode: str = "default"


class CallbackApprover:
    """The session's approver: the caller's `can_use_tool`, or headless denials."""

    def __init__(self, callback: Callable[..., Any] | None) -> None:
        self.callback = callback
        self.mode_of: Callable[[], str] = lambda: "default"
        """The session's approval mode now (set once the session is open)."""
        self.on_interrupt: Callable[[], None] = lambda: None
        """Ends the running turn (for `Deny(interrupt=True)`)."""

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        mode = self.mode_of()
        if self.callback is None:
            return await HeadlessApprover(mode)(request)  # type: ignore[arg-type]
        call = request.call
        context = ToolPermissionContext(
            tool_use_id=call.id,
            kind=request.kind,
            decision_reason=request.reason,
            summary=request.summary,
            preview=request.preview,
            suggested_rule=request.suggested_rule,
            agent_id=request.agent or None,
            permission_mode=mode,
        )
        try:
            verdict = self.callback(call.name, dict(call.arguments), context)
            if inspect.isawaitable(verdict):
                verdict = await verdict
        except Exception as exc:
            log.warning("can_use_tool failed for %s", call.name, exc_info=True)
            return ApprovalAnswer(
                approved=False,
                message=f"The {call.name} call was not run: the permission check failed "
                f"({type(exc).__name__}: {exc}).",
            )
        return self._answer(call.name, verdict)

    def _answer(self, name: str, verdict: Any) -> ApprovalAnswer:
        """`Allow`/`Deny` (or anything with their `behavior`, as the Claude Agent SDK's
        results have, or a bool) as the session's answer."""
        behavior = getattr(verdict, "behavior", None)
        if verdict is True or behavior == "allow":
            updated = getattr(verdict, "updated_input", None)
            return ApprovalAnswer(approved=True, updated_input=_copy(updated))
        if verdict is False or behavior == "deny":
            if getattr(verdict, "interrupt", False):
                self.on_interrupt()
            return ApprovalAnswer(approved=False, message=getattr(verdict, "message", "") or "")
        log.warning("can_use_tool returned %r for %s, not Allow or Deny", verdict, name)
        return ApprovalAnswer(
            approved=False,
            message=f"The {name} call was not run: the permission check gave no answer.",
        )


def _copy(updated: Any) -> dict[str, Any] | None:
    return None if updated is None else dict(updated)
