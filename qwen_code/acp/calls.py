"""The tool calls the editor has been told about in a session.

A call is announced (`tool_call`) when the agent starts it; the permission request and
the final `tool_call_update` repeat its title and diff, so both are kept here, by call
id, until the call ends. Calls the editor never saw announced (a subagent's, an MCP
server asking to start) are described from the approval request alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from acp import text_block, tool_content

from qwen_code.acp.diffs import planned_diff
from qwen_code.acp.updates import tool_finish, tool_kind, tool_locations, tool_start, tool_title
from qwen_code.agent.approval import Allow
from qwen_code.tools.registry import ValidCall

if TYPE_CHECKING:
    from pathlib import Path

    from acp.schema import (
        FileEditToolCallContent,
        ToolCallProgress,
        ToolCallStart,
        ToolCallUpdate,
        ToolKind,
    )

    from qwen_code.agent.approval import ApprovalRequest
    from qwen_code.agent.events import ToolCall, ToolCallStarted, ToolResult
    from qwen_code.session.live import Session


@dataclass(slots=True)
class Announced:
    title: str
    kind: ToolKind
    diff: FileEditToolCallContent | None = None


@dataclass(slots=True)
class ToolCallBook:
    """Announced calls by id. `session` is set once the session is open (the approver,
    which refers to the book, is needed to open it)."""

    session: Session | None = None
    calls: dict[str, Announced] = field(default_factory=dict)

    async def start(self, event: ToolCallStarted) -> ToolCallStart:
        """The `tool_call` update for a call about to be settled and run: `in_progress`
        when it will run without asking, else `pending` (a permission request follows)."""
        assert self.session is not None
        call = event.call
        tool = self.session.registry.get(call.name)
        announced = Announced(
            title=tool_title(call.name, event.summary),
            kind=tool_kind(call.name, tool.kind if tool is not None else None),
            diff=await planned_diff(self.session.tool_ctx, call),
        )
        self.calls[call.id] = announced
        status = "in_progress" if self._runs_unasked(call) else "pending"
        return tool_start(
            call,
            title=announced.title,
            kind=announced.kind,
            status=status,
            cwd=self.session.cwd,
            diff=announced.diff,
        )

    def finish(self, result: ToolResult) -> ToolCallProgress:
        announced = self.calls.pop(result.call.id, None)
        return tool_finish(result, announced.diff if announced is not None else None)

    def permission_view(self, request: ApprovalRequest, cwd: Path) -> ToolCallUpdate:
        """The call as the permission request shows it: as announced, or (never
        announced) from the request, with its preview as text."""
        from acp.schema import ToolCallUpdate

        call = request.call
        announced = self.calls.get(call.id)
        if announced is not None:
            content = [announced.diff] if announced.diff is not None else None
            title, kind = announced.title, announced.kind
        else:
            title = tool_title(call.name, request.summary)
            if request.agent:
                title = f"{request.agent}: {title}"
            kind = tool_kind(call.name, request.kind)
            preview = request.preview or request.reason
            content = [tool_content(text_block(preview))] if preview else None
        return ToolCallUpdate(
            tool_call_id=call.id,
            title=title,
            kind=kind,
            status="pending",
            content=content,
            locations=tool_locations(call.arguments, cwd) or None,
            raw_input=call.arguments or None,
        )

    def _runs_unasked(self, call: ToolCall) -> bool:
        """Whether the approval policy lets the call run without a question (asked the
        way the tool runner will ask it; a call that fails validation never runs)."""
        assert self.session is not None
        runner = self.session.runner
        checked = runner.registry.validate(call.name, call.arguments)
        if call.parse_error or not isinstance(checked, ValidCall):
            return False
        return isinstance(runner.decide(call, checked), Allow)
