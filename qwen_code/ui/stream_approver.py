"""`--permission-prompt-tool stdio`: approvals asked of the program on the other end.

A call that needs approval becomes a `can_use_tool` control request on stdout, as
Claude Code sends it; the program's `control_response` answers it: `{"behavior":
"allow", "updatedInput": {...}, "updatedPermissions": [...]}` or `{"behavior": "deny",
"message": "...", "interrupt": true}`. An error response, a malformed answer or the end
of stdin refuse the call. Only calls that need approval are asked about: the approval
mode and the rules decide first, as for every front end.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from qwen_code.agent.approval import ApprovalAnswer, ApprovalRequest

SendRequest = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
"""Sends a control request and returns its response (raises `ControlFailed`)."""

_DESTINATIONS = {
    "session": "session",
    "localSettings": "project",
    "projectSettings": "project",
    "userSettings": "user",
}


class ControlFailed(Exception):
    """The program answered a control request with an error, or could not answer."""


class StdioApprover:
    """Asks over the control protocol. `interrupt` is called when a denial asks for the
    turn to stop (`"interrupt": true`)."""

    def __init__(self, send: SendRequest, interrupt: Callable[[], None]) -> None:
        self.send = send
        self.interrupt = interrupt

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        try:
            response = await self.send(can_use_tool_request(request))
        except ControlFailed as exc:
            return ApprovalAnswer(approved=False, message=f"Permission was not given: {exc}")
        answer = answer_from(response)
        if not answer.approved and response.get("interrupt") is True:
            self.interrupt()
        return answer


def can_use_tool_request(request: ApprovalRequest) -> dict[str, Any]:
    """The `can_use_tool` request for an approval (Claude Code's fields)."""
    call = request.call
    body: dict[str, Any] = {
        "subtype": "can_use_tool",
        "tool_name": call.name,
        "input": call.arguments,
        "tool_use_id": call.id,
        "permission_suggestions": suggestions(request),
        "blocked_path": None,
        "decision_reason": request.reason,
        "title": request.summary or call.name,
        "description": request.reason,
    }
    if request.agent:
        body["agent_id"] = request.agent
    return body


def suggestions(request: ApprovalRequest) -> list[dict[str, Any]]:
    """The "always allow" rule an answer may send back, as a permission update."""
    if not request.rememberable:
        return []
    name, content = split_rule(request.suggested_rule)
    rule: dict[str, Any] = {"toolName": name}
    if content is not None:
        rule["ruleContent"] = content
    return [{"type": "addRules", "rules": [rule], "behavior": "allow", "destination": "session"}]


def split_rule(rule: str) -> tuple[str, str | None]:
    """`Bash(git status *)` -> ("Bash", "git status *"); `edit` -> ("edit", None)."""
    match = re.fullmatch(r"\s*([^()\s]+)\s*(?:\((.*)\))?\s*", rule, re.DOTALL)
    if match is None:
        return rule, None
    return match[1], match[2]


def answer_from(response: dict[str, Any]) -> ApprovalAnswer:
    """An `ApprovalAnswer` from a `can_use_tool` response."""
    behavior = response.get("behavior")
    message = response.get("message")
    if behavior != "allow":
        if behavior != "deny":
            message = f"The permission answer was not understood ({behavior!r})."
        return ApprovalAnswer(approved=False, message=str(message or "Denied by the user."))
    updated = response.get("updatedInput")
    remember, rule = _remembered(response.get("updatedPermissions"))
    return ApprovalAnswer(
        approved=True,
        updated_input=updated if isinstance(updated, dict) else None,
        remember=remember,  # type: ignore[arg-type]
        rule=rule,
    )


def _remembered(updates: Any) -> tuple[str | None, str | None]:
    """The first "add an allow rule" update: where to keep it and the rule."""
    for update in updates if isinstance(updates, list) else ():
        if not isinstance(update, dict) or update.get("type") not in ("addRules", "replaceRules"):
            continue
        if update.get("behavior", "allow") != "allow":
            continue
        where = _DESTINATIONS.get(str(update.get("destination", "session")), "session")
        for rule in update.get("rules") or ():
            if isinstance(rule, dict) and rule.get("toolName"):
                content = rule.get("ruleContent")
                text = f"{rule['toolName']}({content})" if content else str(rule["toolName"])
                return where, text
    return None, None
