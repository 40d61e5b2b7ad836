"""Where the agent consults the user's hooks (settings `hooks`; see `qwen_code.hooks`).

The loop and the tool runner call these at Claude Code's moments: `UserPromptSubmit`
before a prompt goes to the model, `PreToolUse` before a call is approved and run,
`PermissionRequest` before the user is asked, `PostToolUse` / `PostToolUseFailure` after
it ran, `Stop` when the model is about to end its turn. Each returns plain values the
caller acts on; what a hook says for the user comes back as `ToolNotice`s.

A hook can make qwen-code stricter (block, deny, ask) in every approval mode, yolo
included. It can also allow a call without asking, but never past a deny rule or plan
mode, which are checked after it (`ToolRunner._settle`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qwen_code.agent.events import ToolCall, ToolResult
from qwen_code.tools.events import ToolNotice

if TYPE_CHECKING:
    from qwen_code.hooks import HookOutcome, Hooks

STOP_BLOCK_CAP = 8
"""Consecutive Stop-hook blocks in one turn before the turn ends anyway (Qwen Code's
`stopHookBlockingCap` default), so a hook that always blocks cannot loop forever."""


def notices(outcome: HookOutcome, event: str) -> list[ToolNotice]:
    """What the hooks of `event` said for the user: messages, and hooks that failed."""
    said = [ToolNotice(message=f"{event} hook: {m}", level="info") for m in outcome.system_messages]
    failed = [ToolNotice(message=f"{event} hook failed: {e}") for e in outcome.errors]
    return [*said, *failed]


def context_block(event: str, text: str) -> str:
    """Context a hook added, as the model reads it (inside the message it belongs to)."""
    return f"<hook-context event={event!r}>\n{text.strip()}\n</hook-context>"


@dataclass(slots=True)
class PromptVerdict:
    """`UserPromptSubmit`: blocked (the reason for the user), or the context to send."""

    blocked: str | None = None
    context: list[str] = field(default_factory=list)
    notices: list[ToolNotice] = field(default_factory=list)


async def on_prompt(hooks: Hooks | None, prompt: str) -> PromptVerdict:
    """`UserPromptSubmit` for the prompt about to go to the model."""
    if hooks is None or not hooks.active("UserPromptSubmit"):
        return PromptVerdict()
    outcome = await hooks.fire("UserPromptSubmit", {"prompt": prompt})
    verdict = PromptVerdict(notices=notices(outcome, "UserPromptSubmit"))
    if outcome.blocked or outcome.stop:
        why = outcome.reason or outcome.stop_reason or "no reason given"
        verdict.blocked = f"A UserPromptSubmit hook blocked the prompt: {why}"
    elif outcome.context:
        verdict.context.append(context_block("UserPromptSubmit", outcome.context))
    return verdict


async def on_stop(
    hooks: Hooks | None,
    last_text: str,
    *,
    active: bool,
    event: str = "Stop",
    extra: dict[str, Any] | None = None,
) -> HookOutcome | None:
    """`Stop` (a subagent's: `SubagentStop`, matched on its type): the outcome when a
    hook ran (blocked: go on, with `reason` for the model)."""
    if hooks is None or not hooks.active(event):
        return None
    fields = {"stop_hook_active": active, "last_assistant_message": last_text, **(extra or {})}
    match = str(extra.get("agent_type", "")) if extra else None
    return await hooks.fire(event, fields, match=match)


async def on_subagent_start(
    hooks: Hooks | None, agent_id: str, agent_type: str
) -> tuple[str | None, list[ToolNotice]]:
    """`SubagentStart`: context for the subagent's first message, and notices."""
    if hooks is None or not hooks.active("SubagentStart"):
        return None, []
    fields = {"agent_id": agent_id, "agent_type": agent_type}
    outcome = await hooks.fire("SubagentStart", fields, match=agent_type)
    context = context_block("SubagentStart", outcome.context) if outcome.context else None
    return context, notices(outcome, "SubagentStart")


async def before_tool(hooks: Hooks | None, call: ToolCall, mode: str) -> HookOutcome | None:
    """`PreToolUse` for one call, or None when no hook is configured for it."""
    if hooks is None or not hooks.active("PreToolUse"):
        return None
    return await hooks.fire("PreToolUse", _tool_fields(call, mode), match=call.name)


async def on_permission(
    hooks: Hooks | None, call: ToolCall, mode: str, suggested_rule: str
) -> HookOutcome | None:
    """`PermissionRequest`: a hook may answer for the user (`permission` allow or deny)."""
    if hooks is None or not hooks.active("PermissionRequest"):
        return None
    fields = _tool_fields(call, mode)
    if suggested_rule:
        fields["permission_suggestions"] = [
            {"type": "addRules", "rules": [{"toolName": suggested_rule}], "behavior": "allow"}
        ]
    return await hooks.fire("PermissionRequest", fields, match=call.name)


async def after_tool(
    hooks: Hooks | None, result: ToolResult, mode: str, duration_ms: int
) -> tuple[ToolResult, list[ToolNotice]]:
    """`PostToolUse` (or `PostToolUseFailure` for an error result): a block's reason and
    added context go to the model with the result."""
    event = "PostToolUseFailure" if result.is_error else "PostToolUse"
    if hooks is None or not hooks.active(event):
        return result, []
    fields = _tool_fields(result.call, mode)
    response = {"output": result.output, "is_error": result.is_error}
    fields["tool_response"] = response
    if result.is_error:
        fields["error"] = result.output
    fields["duration_ms"] = duration_ms
    outcome = await hooks.fire(event, fields, match=result.call.name)
    extra = []
    if outcome.blocked:
        extra.append(f"{event} hook: {outcome.reason or 'blocked'}")
    if outcome.context:
        extra.append(context_block(event, outcome.context))
    if extra:
        output = "\n\n".join([result.output, *extra])
        result = ToolResult(call=result.call, output=output, is_error=result.is_error)
    return result, notices(outcome, event)


def _tool_fields(call: ToolCall, mode: str) -> dict[str, Any]:
    return {
        "tool_name": call.name,
        "tool_input": call.arguments,
        "tool_use_id": call.id,
        "tool_call_id": call.id,
        "permission_mode": mode,
    }
