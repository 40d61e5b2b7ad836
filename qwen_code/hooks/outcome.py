"""What one hook's run means (`hook_outcome`), and the outcomes of an event's hooks
merged into one (`merge`), by Claude Code's and Qwen Code's rules.

Exit 0 with a JSON object on stdout: its fields decide (`continue`, `stopReason`,
`systemMessage`, `decision`, `reason`, `hookSpecificOutput`). Exit 0 with other stdout
(bare JSON values such as `42` included): context for the model on `CONTEXT_EVENTS`, a
message for the user elsewhere; output that looks like a JSON object but does not parse
is never context (it is reported as the hook's error). Exit 2: blocked, `reason` is
stderr, stdout is ignored. Any other exit, a timeout, a failed start: an error for the
user, never a block.
"""

from __future__ import annotations

import json
from typing import Any

from qwen_code.hooks.config import HookSpec
from qwen_code.hooks.process import HookRun
from qwen_code.hooks.types import CONTEXT_EVENTS, HookOutcome, Permission

BLOCKING_EXIT = 2
_DETAIL_CHARS = 500
"""How much of a failed hook's stderr its error shows."""
_PERMISSIONS: dict[str, Permission] = {
    "allow": "allow",
    "approve": "allow",
    "deny": "deny",
    "block": "deny",
    "ask": "ask",
}
_RANK = {None: 0, "allow": 1, "ask": 2, "deny": 3}


def label(spec: HookSpec) -> str:
    """A hook as named in messages: its command (shortened) and where it came from."""
    command = " ".join(spec.command.split())
    command = command if len(command) <= 60 else command[:57] + "..."
    return f"{spec.event} hook `{command}` ({spec.source})"


def hook_outcome(spec: HookSpec, run: HookRun) -> HookOutcome:
    """The outcome of one hook that ran."""
    outcome = HookOutcome(ran=1)
    name = label(spec)
    if run.exit_code is None:
        outcome.errors.append(f"{name} {run.error}{_detail(run.stderr)}")
    elif run.exit_code == BLOCKING_EXIT:
        outcome.blocked = True
        outcome.reason = run.stderr.strip() or f"blocked by {name}"
    elif run.exit_code != 0:
        how = f"killed by signal {-run.exit_code}" if run.exit_code < 0 else "failed"
        outcome.errors.append(f"{name} {how} (exit {run.exit_code}){_detail(run.stderr)}")
    else:
        _read_stdout(spec, run.stdout, outcome)
    if run.truncated:
        outcome.errors.append(f"{name} printed more than 1 MB; the rest was dropped")
    return outcome


def _detail(stderr: str) -> str:
    text = stderr.strip()
    if not text:
        return ""
    return ": " + (text if len(text) <= _DETAIL_CHARS else "..." + text[-_DETAIL_CHARS:])


def _read_stdout(spec: HookSpec, stdout: str, outcome: HookOutcome) -> None:
    text = stdout.strip()
    if not text:
        return
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            outcome.errors.append(f"{label(spec)} printed invalid JSON; its output is ignored")
            return
        if isinstance(data, dict):
            read_json_output(data, outcome)
            return
    if spec.event in CONTEXT_EVENTS:
        outcome.additional_context.append(text)
    else:
        outcome.system_messages.append(text)


def read_json_output(data: dict[str, Any], outcome: HookOutcome) -> None:
    """The fields of a hook's JSON output, into `outcome`. Values of the wrong type are
    ignored, as are unknown fields (`suppressOutput` among them: nothing of a JSON
    output is shown to begin with)."""
    if data.get("continue") is False:
        outcome.stop = True
        outcome.stop_reason = _text(data.get("stopReason"))
    if message := _text(data.get("systemMessage")):
        outcome.system_messages.append(message)
    decision = _text(data.get("decision")).lower()
    reason = _text(data.get("reason"))
    if decision in ("block", "deny"):
        outcome.blocked = True
        outcome.reason = reason or "blocked by a hook"
    elif decision in _PERMISSIONS:
        outcome.permission = _PERMISSIONS[decision]
        outcome.permission_reason = reason
    specific = data.get("hookSpecificOutput")
    if isinstance(specific, dict):
        _read_specific(specific, outcome)


def _read_specific(specific: dict[str, Any], outcome: HookOutcome) -> None:
    """`hookSpecificOutput`: PreToolUse's permission fields, PermissionRequest's
    `decision` object, `updatedInput` and `additionalContext`."""
    permission = _PERMISSIONS.get(_text(specific.get("permissionDecision")).lower())
    if permission is not None:
        outcome.permission = permission
        outcome.permission_reason = _text(specific.get("permissionDecisionReason"))
    if isinstance(specific.get("updatedInput"), dict):
        outcome.updated_input = specific["updatedInput"]
    if context := _text(specific.get("additionalContext")):
        outcome.additional_context.append(context)
    decision = specific.get("decision")
    if not isinstance(decision, dict):
        return
    behavior = _PERMISSIONS.get(_text(decision.get("behavior")).lower())
    message = _text(decision.get("message"))
    if behavior is not None:
        outcome.permission = behavior
        outcome.permission_reason = message
    if isinstance(decision.get("updatedInput"), dict):
        outcome.updated_input = decision["updatedInput"]
    if decision.get("interrupt") is True:
        outcome.stop = True
        outcome.stop_reason = outcome.stop_reason or message


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def merge(outcomes: list[HookOutcome]) -> HookOutcome:
    """One outcome for an event's hooks, in configuration order: any block blocks (the
    reasons joined), deny > ask > allow (the first hook's reason of the winning kind),
    the first `updated_input` is used, the rest adds up."""
    total = HookOutcome()
    for part in outcomes:
        total.ran += part.ran
        if part.blocked:
            total.blocked = True
            total.reason = "\n".join(r for r in (total.reason, part.reason) if r)
        if _RANK[part.permission] > _RANK[total.permission]:
            total.permission = part.permission
            total.permission_reason = part.permission_reason
        elif part.permission == total.permission and not total.permission_reason:
            total.permission_reason = part.permission_reason
        if total.updated_input is None:
            total.updated_input = part.updated_input
        if part.stop:
            total.stop = True
            total.stop_reason = total.stop_reason or part.stop_reason
        total.additional_context.extend(part.additional_context)
        total.system_messages.extend(part.system_messages)
        total.errors.extend(part.errors)
    return total
