"""Questions for the person in the editor, as ACP `session/request_permission` requests.

`EditorApprover` is the session's approver: a tool call that needs approval is shown
with allow once / allow always / reject; "allow always" adds the call's rule for the rest
of the session, as in the terminal (`ApprovalAnswer(remember="session")`), and is not
offered where no rule can cover the call (an ask rule, a protected path, an escalation).

`EditorUser` answers the tools that talk to the user the same way: `exit_plan_mode`'s
plan review and `ask_user_question`'s questions (one request per question; the editor
shows the options as buttons).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from acp import RequestError, text_block, tool_content
from acp.schema import AllowedOutcome, PermissionOption, ToolCallUpdate

from qwen_code.agent.approval import ApprovalAnswer
from qwen_code.tools.events import CURRENT_CALL
from qwen_code.tools.user_input import Answer, PlanReview

if TYPE_CHECKING:
    from pathlib import Path

    from acp.interfaces import Client
    from acp.schema import RequestPermissionResponse

    from qwen_code.acp.calls import ToolCallBook
    from qwen_code.agent.approval import ApprovalRequest
    from qwen_code.tools.user_input import Question

log = logging.getLogger(__name__)

ALLOW_ONCE = "allow_once"
ALLOW_ALWAYS = "allow_always"
REJECT_ONCE = "reject_once"
SKIP = "skip"


def approval_options(request: ApprovalRequest) -> list[PermissionOption]:
    """Allow once, allow always (only where it can mean something), reject."""
    options = [PermissionOption(option_id=ALLOW_ONCE, name="Allow", kind="allow_once")]
    if request.rememberable:
        name = f"Always allow {request.suggested_rule}"
        options.append(PermissionOption(option_id=ALLOW_ALWAYS, name=name, kind="allow_always"))
    options.append(PermissionOption(option_id=REJECT_ONCE, name="Reject", kind="reject_once"))
    return options


def answer_for(request: ApprovalRequest, response: RequestPermissionResponse) -> ApprovalAnswer:
    """The editor's choice as the tool runner takes it."""
    outcome = response.outcome
    name = request.call.name
    if not isinstance(outcome, AllowedOutcome):  # the turn is being cancelled
        return ApprovalAnswer(
            approved=False, message=f"The {name} call was not run: the user cancelled the turn."
        )
    if outcome.option_id == ALLOW_ALWAYS:
        return ApprovalAnswer(approved=True, remember="session")
    if outcome.option_id == ALLOW_ONCE:
        return ApprovalAnswer(approved=True)
    return ApprovalAnswer(approved=False)


class EditorApprover:
    """The `Approver` of a session run from an editor. Until `ready` (while the session
    opens, before the editor knows its id) nothing can be asked: a project's MCP server
    that wants approval to start is left out, with a note."""

    def __init__(self, client: Client, session_id: str, book: ToolCallBook, cwd: Path) -> None:
        self.client = client
        self.session_id = session_id
        self.book = book
        self.cwd = cwd
        self.ready = False

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        name = request.call.name
        if not self.ready:
            return ApprovalAnswer(approved=False, message=f"{name}: nobody could be asked yet.")
        try:
            response = await self.client.request_permission(
                session_id=self.session_id,
                tool_call=self.book.permission_view(request, self.cwd),
                options=approval_options(request),
            )
        except (RequestError, ConnectionError) as exc:
            log.warning("the editor did not answer a permission request: %s", exc)
            return ApprovalAnswer(
                approved=False,
                message=f"The {name} call was not run: the editor could not ask the user ({exc}).",
            )
        return answer_for(request, response)


PLAN_OPTIONS = [
    PermissionOption(option_id="auto-edit", name="Yes, and auto-accept edits", kind="allow_always"),
    PermissionOption(option_id="default", name="Yes, and approve each edit", kind="allow_once"),
    PermissionOption(option_id="keep", name="No, keep planning", kind="reject_once"),
]


class EditorUser:
    """The `UserChannel` of a session run from an editor."""

    def __init__(self, client: Client, session_id: str) -> None:
        self.client = client
        self.session_id = session_id

    async def review_plan(self, plan: str) -> PlanReview:
        choice = await self._choose("Ready to code?", plan, PLAN_OPTIONS, kind="switch_mode")
        if choice in ("auto-edit", "default"):
            return PlanReview(approved=True, mode=choice)  # type: ignore[arg-type]
        return PlanReview(approved=False)

    async def ask(self, questions: Sequence[Question]) -> list[Answer] | None:
        """Each question as its own request (one option each; a multi-select question
        takes one too); None when the user skips or cancels one."""
        answers = []
        for question in questions:
            options = [
                PermissionOption(option_id=str(i), name=option.label, kind="allow_once")
                for i, option in enumerate(question.options)
            ]
            options.append(PermissionOption(option_id=SKIP, name="Skip", kind="reject_once"))
            body = "\n".join(f"- **{o.label}**: {o.description}" for o in question.options)
            choice = await self._choose(question.question, body, options, kind="think")
            if choice is None or choice == SKIP:
                return None
            answers.append(Answer(labels=(question.options[int(choice)].label,)))
        return answers

    async def _choose(
        self, title: str, body: str, options: list[PermissionOption], *, kind: Any
    ) -> str | None:
        """The option id picked; None when the request was cancelled or failed."""
        call = ToolCallUpdate(
            tool_call_id=CURRENT_CALL.get() or "question",
            title=title,
            kind=kind,
            status="pending",
            content=[tool_content(text_block(body))],
        )
        try:
            response = await self.client.request_permission(
                session_id=self.session_id, tool_call=call, options=options
            )
        except (RequestError, ConnectionError) as exc:
            log.warning("the editor did not answer a question: %s", exc)
            return None
        outcome = response.outcome
        return outcome.option_id if isinstance(outcome, AllowedOutcome) else None
