"""Approval policy: the core decides, the front end asks, a denial is a message to the model.

Modes (as Qwen Code): `plan` allows read-only tools only; `default` allows reads and
asks for edits, writes and shell; `auto-edit` also allows edits and writes; `yolo`
allows everything. Rules (`permissions.allow` / `ask` / `deny`, and the older
`tools.allowed` / `--allowed-tools` as allow rules; see `permissions`) come on top, in
this order: a deny rule refuses in every mode; plan mode refuses changes; an ask rule asks
in every mode; read-only tools and yolo run; a protected path (`.git/`, `.qwen/`, shell
start-up files, …) asks; an allow rule or auto-edit (for edits) runs; anything else asks.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from qwen_code.agent.events import ToolCall
from qwen_code.agent.permission_rules import (
    SHELL_TOOL,
    AllowRule,
    Rule,
    parse_rules,
    rule_fits_flag,
)
from qwen_code.agent.permissions import Permissions, suggest_rule
from qwen_code.config import ApprovalMode
from qwen_code.tools.base import ToolKind

__all__ = [
    "SHELL_TOOL",
    "Allow",
    "AllowRule",
    "ApprovalAnswer",
    "ApprovalRequest",
    "Approver",
    "Ask",
    "AskSource",
    "Decision",
    "Deny",
    "HeadlessApprover",
    "Permissions",
    "Rule",
    "decide",
    "parse_rules",
    "suggest_rule",
]

AskSource = Literal["mode", "rule", "protected", "escalation", "server"]
"""Why a call is asked about: the approval mode (an allow rule would cover it next
time), an ask rule, a protected path, or an escalation such as running a command outside
the sandbox (the last three asked every time, whatever the rules), or a project's MCP
server that wants to start (asked once per command line)."""


@dataclass(frozen=True, slots=True)
class Allow:
    pass


@dataclass(frozen=True, slots=True)
class Ask:
    reason: str
    source: AskSource = "mode"


@dataclass(frozen=True, slots=True)
class Deny:
    reason: str


Decision = Allow | Ask | Deny


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRequest:
    """What a front end shows when it asks: the call, why it needs approval, a preview."""

    call: ToolCall
    kind: ToolKind
    reason: str
    summary: str = ""
    preview: str | None = None
    """What the call would change (a diff for edits), when the tool can tell."""
    suggested_rule: str = ""
    """The allow rule an "always" answer would add, e.g. `Bash(git status *)`; "" when
    no rule can cover exactly this call."""
    source: AskSource = "mode"
    agent: str = ""
    """The subagent whose call this is ("" for the main agent), shown with the question."""

    @property
    def rememberable(self) -> bool:
        """Whether an "always" answer can mean anything: an allow rule covers neither ask
        rules nor protected paths."""
        return self.source == "mode" and bool(self.suggested_rule)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalAnswer:
    approved: bool
    message: str = ""
    """A note for the model (why it was denied, or what to do instead)."""
    remember: Literal["session", "project", "user"] | None = None
    """Allow calls like this from now on; the front end persists project/user rules."""
    rule: str | None = None
    """The rule to remember (defaults to the request's suggested rule)."""
    updated_input: dict[str, Any] | None = None
    """Run the call with these arguments instead (an SDK's `can_use_tool` may edit them);
    they are checked again as the model's would be, deny rules included."""


class Approver(Protocol):
    """Asks whoever is in charge. The REPL prompts the user; headless never reads stdin."""

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer: ...


class HeadlessApprover:
    """Denies everything that needs approval, telling the model why and the user how."""

    def __init__(self, mode: ApprovalMode) -> None:
        self.mode = mode

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        return ApprovalAnswer(approved=False, message=headless_denial(request, self.mode))


def headless_denial(request: ApprovalRequest, mode: ApprovalMode) -> str:
    """What the model is told when a non-interactive run cannot ask."""
    name = request.call.name
    if request.source == "protected":
        return (
            f"The {name} call was not run: {request.reason}. Changes to protected paths "
            f"need the user's own approval in an interactive session (or a run with --yolo), "
            f"and this non-interactive session cannot ask. Do not retry it or change the file "
            f"another way; finish what you can and tell the user it needs their approval."
        )
    if request.source == "escalation":
        return (
            f"The {name} call was not run: {request.reason}, which needs the user's own "
            f"approval every time, and this non-interactive session cannot ask. Do not retry "
            f"it or work around the sandbox; finish what you can inside it and tell the user "
            f"what was blocked (they can rerun with --sandbox off)."
        )
    if request.source == "rule":
        return (
            f"The {name} call was not run: {request.reason}, so it needs the user's "
            f"confirmation in every mode, and this non-interactive session cannot ask. Do not "
            f"retry it; finish what you can without it and tell the user it was not run."
        )
    return (
        f"The {name} call was not run: it needs approval in {mode!r} mode and this "
        f"non-interactive session cannot ask the user. Do not retry it; finish what you can "
        f"without it and tell the user it was denied (they can rerun with "
        f"{_how_to_allow(request)})."
    )


def _how_to_allow(request: ApprovalRequest) -> str:
    options = ["--approval-mode auto-edit"] if request.kind == "edit" else []
    rule = request.suggested_rule
    if rule and rule_fits_flag(rule):
        options.append(f"--allowed-tools {shlex.quote(rule)}")
    elif rule:
        options.append(f"the rule {rule} in permissions.allow")
    options.append("--yolo")
    return ", ".join(options[:-1]) + f" or {options[-1]}" if len(options) > 1 else options[0]


def decide(
    mode: ApprovalMode,
    kind: ToolKind,
    call: ToolCall,
    rules: Permissions | Sequence[Rule] | None = None,
) -> Decision:
    """Whether a call may run, must be asked about, or is refused outright.

    `rules` is the session's `Permissions` (a plain list of allow rules still works)."""
    perms = rules if isinstance(rules, Permissions) else Permissions(allow=list(rules or ()))
    denied = perms.match("deny", call)
    if denied:
        return Deny(
            f"{call.name} was not run: {denied}. Deny rules hold in every approval mode; do "
            "not retry this call or reach the same result another way."
        )
    if mode == "plan" and kind not in ("read", "think", "network"):
        return Deny(
            f"Plan mode allows only read-only tools; {call.name} was not run. Present the "
            "plan to the user instead of making changes."
        )
    asked = perms.match("ask", call)
    if asked:
        return Ask(asked, source="rule")
    if kind in ("read", "think") or mode == "yolo":
        return Allow()
    protected = perms.protected(call) if kind == "edit" else None
    if protected:
        return Ask(protected, source="protected")
    if perms.allows(call) or (mode == "auto-edit" and kind == "edit"):
        return Allow()
    what = {"edit": "edits files", "network": "reaches the network"}.get(kind, "runs a command")
    return Ask(f"{call.name} {what}")
