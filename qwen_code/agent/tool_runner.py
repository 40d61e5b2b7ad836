"""Runs one model response's tool calls: validate, settle approval, execute, report.

Consecutive read-only calls run concurrently; anything that changes the workspace runs
alone and in order, after its approval. Every call ends in exactly one `ToolResult`,
whether it ran, was denied, or had bad arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from qwen_code.agent.approval import (
    Allow,
    ApprovalAnswer,
    ApprovalRequest,
    Approver,
    Ask,
    Deny,
    Permissions,
    decide,
    parse_rules,
    suggest_rule,
)
from qwen_code.agent.events import ApprovalRequested, Event, ToolCall, ToolCallStarted, ToolResult
from qwen_code.agent.hook_points import after_tool, before_tool, notices, on_permission
from qwen_code.agent.permissions import domain_covers
from qwen_code.config import ApprovalMode
from qwen_code.tools.base import ToolContext, ToolKind, ToolOutput
from qwen_code.tools.events import ALLOWED_HOST, CONFIRM, CURRENT_CALL, PROGRESS
from qwen_code.tools.registry import ToolRegistry, ValidCall

if TYPE_CHECKING:
    from qwen_code.hooks import Hooks

T = TypeVar("T")


@dataclass(slots=True, kw_only=True)
class ToolRunner:
    registry: ToolRegistry
    ctx: ToolContext
    approver: Approver
    mode: ApprovalMode = "default"
    permissions: Permissions = field(default_factory=Permissions)
    """Allow, ask and deny rules (and "always" answers); see `approval.decide`."""
    before_change: Callable[[ToolCall, ToolKind], Awaitable[None]] | None = None
    """Called before a tool that changes the workspace runs (checkpoints hook in here)."""
    agent_label: str = ""
    """The subagent these calls are made for ("" for the main agent), named in approvals."""
    hooks: Hooks | None = None
    """The user's hooks (`PreToolUse`, `PermissionRequest`, `PostToolUse`...), if any."""

    def __post_init__(self) -> None:
        if self.permissions.workspace is None:
            self.permissions.workspace = self.ctx.workspace
        if self.permissions.home is None:
            self.permissions.home = self.ctx.home
        self.ctx.approval_mode = self.mode

    def restricted(self, names: Collection[str], **changes: Any) -> ToolRunner:
        """A runner for only these tools, sharing everything else: approver, rules and
        the before-change hook (a subagent's tools); `changes` replace other fields
        (its own context, mode and label)."""
        return dataclasses.replace(self, registry=self.registry.subset(names), **changes)

    def set_mode(self, mode: ApprovalMode) -> None:
        """Switch approval mode mid-session (the workspace boundary stays)."""
        self.mode = mode
        self.ctx.approval_mode = mode

    async def run(self, calls: tuple[ToolCall, ...]) -> AsyncIterator[Event]:
        batch: list[tuple[ToolCall, ValidCall]] = []
        for call in calls:
            prepared = self._prepare(call)
            if isinstance(prepared, ValidCall) and self._runs_freely(call, prepared):
                batch.append((call, prepared))
                continue
            async for event in self._run_batch(batch):
                yield event
            batch = []
            async for event in self._run_one(call, prepared):
                yield event
        async for event in self._run_batch(batch):
            yield event

    def _runs_freely(self, call: ToolCall, valid: ValidCall) -> bool:
        """A read-only call that no deny or ask rule stops: it may run alongside others
        (not when `PreToolUse` hooks are to see it first)."""
        if self.hooks is not None and self.hooks.active("PreToolUse"):
            return False
        kind = valid.tool.kind
        return kind in ("read", "think") and isinstance(self.decide(call, valid), Allow)

    def _prepare(self, call: ToolCall) -> ValidCall | str:
        if call.parse_error:
            return (
                f"Error: the arguments of {call.name} are not a valid JSON object "
                f"({call.parse_error}). Call the tool again with a JSON object of arguments."
            )
        checked = self.registry.validate(call.name, call.arguments)
        return checked if isinstance(checked, ValidCall) else f"Error: {checked}"

    async def _run_batch(self, batch: list[tuple[ToolCall, ValidCall]]) -> AsyncIterator[Event]:
        if not batch:
            return
        for call, valid in batch:
            yield ToolCallStarted(call=call, summary=valid.tool.summary(valid.params))
        holder: list[list[tuple[ToolResult, ToolOutput]]] = []
        gather = lambda: asyncio.gather(*(self._execute(c, v) for c, v in batch))  # noqa: E731
        async for event in _with_progress(gather, holder):
            yield event
        for result, output in holder[0]:
            yield result
            for event in output.events:
                yield event

    async def _run_one(self, call: ToolCall, prepared: ValidCall | str) -> AsyncIterator[Event]:
        if isinstance(prepared, str):
            yield ToolCallStarted(call=call)
            yield ToolResult(call=call, output=prepared, is_error=True)
            return
        yield ToolCallStarted(call=call, summary=prepared.tool.summary(prepared.params))
        events, settled = await self._settle(call, prepared)
        for event in events:
            yield event
        if settled is None:
            return
        call, prepared = settled
        if self.before_change is not None:
            await self.before_change(call, prepared.tool.kind)
        holder: list[tuple[ToolResult, ToolOutput]] = []
        async for event in _with_progress(lambda: self._execute(call, prepared), holder):
            yield event
        result, output = holder[0]
        yield result
        for event in output.events:
            yield event

    async def _settle(
        self, call: ToolCall, prepared: ValidCall
    ) -> tuple[list[Event], tuple[ToolCall, ValidCall] | None]:
        """Approval for one call: the events to report, and the call to run (None when it
        is refused; its arguments edited when the approver or a hook changed them).
        `PreToolUse` hooks go first: they may block, rewrite the input, force a question
        or spare one; deny rules and plan mode still apply after them."""
        hooked = await self._pre_tool_hooks(call, prepared)
        if isinstance(hooked, list):
            return hooked, None
        events, call, prepared, verdict = hooked
        decision = self.decide(call, prepared)
        if verdict == "allow" and isinstance(decision, Ask) and decision.source == "mode":
            decision = Allow()
        elif verdict == "ask" and isinstance(decision, Allow):
            decision = Ask("a PreToolUse hook asks for confirmation", source="escalation")
        settled = await self._approve(call, prepared, decision)
        return [*events, *settled[0]], settled[1]

    async def _pre_tool_hooks(
        self, call: ToolCall, prepared: ValidCall
    ) -> list[Event] | tuple[list[Event], ToolCall, ValidCall, str | None]:
        """`PreToolUse`: the events to report when a hook refused the call; else the
        notices, the call (input rewritten by a hook, checked again) and the hook's
        permission verdict."""
        outcome = await before_tool(self.hooks, call, self.mode)
        if outcome is None:
            return [], call, prepared, None
        said: list[Event] = list(notices(outcome, "PreToolUse"))
        if outcome.blocked or outcome.permission == "deny" or outcome.stop:
            why = outcome.reason or outcome.permission_reason or outcome.stop_reason
            reason = f"A PreToolUse hook blocked this call: {why or 'no reason given'}"
            return [
                *said,
                ApprovalRequested(call=call, reason=reason, decision="denied", message=reason),
                ToolResult(call=call, output=f"Error: {reason}", is_error=True),
            ]
        if outcome.updated_input is not None and outcome.updated_input != call.arguments:
            edited = self._edited(call, outcome.updated_input)
            if isinstance(edited, str):
                refused = ApprovalRequested(call=call, reason=edited, decision="denied")
                return [*said, refused, ToolResult(call=call, output=edited, is_error=True)]
            call, prepared = edited
        return said, call, prepared, outcome.permission

    async def _approve(
        self, call: ToolCall, prepared: ValidCall, decision: Allow | Ask | Deny
    ) -> tuple[list[Event], tuple[ToolCall, ValidCall] | None]:
        """Carry out the mode's and the rules' decision: refuse, run, or ask (a
        `PermissionRequest` hook may answer first)."""
        if isinstance(decision, Deny):
            reason = decision.reason
            return [
                ApprovalRequested(call=call, reason=reason, decision="denied", message=reason),
                ToolResult(call=call, output=f"Error: {reason}", is_error=True),
            ], None
        if not isinstance(decision, Ask):
            return [], (call, prepared)
        answer = await self._hooked_answer(call, decision) or await self.ask(
            call, prepared, decision
        )
        verdict = "allowed" if answer.approved else "denied"
        events: list[Event] = [
            ApprovalRequested(
                call=call, reason=decision.reason, decision=verdict, message=answer.message
            )
        ]
        if not answer.approved:
            denial = answer.message or f"The user denied the {call.name} call."
            return [*events, ToolResult(call=call, output=denial, is_error=True)], None
        if answer.updated_input is None or answer.updated_input == call.arguments:
            return events, (call, prepared)
        edited = self._edited(call, answer.updated_input)
        if isinstance(edited, str):
            return [*events, ToolResult(call=call, output=edited, is_error=True)], None
        return events, edited

    async def _hooked_answer(self, call: ToolCall, decision: Ask) -> ApprovalAnswer | None:
        """A `PermissionRequest` hook's answer for the user, or None (ask the user)."""
        rule = suggest_rule(call) if decision.source == "mode" else ""
        outcome = await on_permission(self.hooks, call, self.mode, rule)
        if outcome is None or outcome.permission not in ("allow", "deny"):
            return None
        if outcome.permission == "deny":
            why = outcome.permission_reason or outcome.reason or "no reason given"
            return ApprovalAnswer(approved=False, message=f"Denied by a hook: {why}")
        return ApprovalAnswer(approved=True, updated_input=outcome.updated_input)

    def _edited(
        self, call: ToolCall, arguments: dict[str, Any]
    ) -> tuple[ToolCall, ValidCall] | str:
        """The call with the arguments its approver gave instead, checked as the model's
        are; an error text when they are invalid or a deny rule refuses them."""
        edited = dataclasses.replace(call, arguments=arguments)
        checked = self.registry.validate(call.name, arguments)
        if not isinstance(checked, ValidCall):
            return f"Error: the edited arguments are invalid: {checked}"
        decision = decide(self.mode, checked.tool.kind, edited, self.permissions)
        if isinstance(decision, Deny):
            return f"Error: {decision.reason}"
        return edited, checked

    def decide(self, call: ToolCall, valid: ValidCall) -> Allow | Ask | Deny:
        """What the mode and the rules say about a call (see `approval.decide`); a call
        the tool marks as an escalation is asked about every time, yolo included."""
        decision = decide(self.mode, valid.tool.kind, call, self.permissions)
        if isinstance(decision, Deny):
            return decision
        escalation = valid.tool.escalation(valid.params, self.ctx)
        if escalation:
            return Ask(escalation, source="escalation")
        if isinstance(decision, Ask) and decision.source == "mode" and valid.tool.preapproved:
            return Allow()
        return decision

    async def ask(
        self, call: ToolCall, valid: ValidCall, decision: Ask, *, why: str = ""
    ) -> ApprovalAnswer:
        """Ask the approver; an "always" answer adds its rule to the session's allow rules
        (never for ask rules or protected paths, which no allow rule covers). `why` is
        added to the reason shown (e.g. "for a custom command")."""
        request = ApprovalRequest(
            call=call,
            kind=valid.tool.kind,
            reason=f"{decision.reason} ({why})" if why else decision.reason,
            summary=valid.tool.summary(valid.params),
            preview=await valid.tool.preview(valid.params, self.ctx),
            suggested_rule=suggest_rule(call) if decision.source == "mode" else "",
            source=decision.source,
            agent=self.agent_label,
        )
        answer = await self.approver(request)
        rule = answer.rule or request.suggested_rule
        if answer.approved and answer.remember and request.rememberable and rule:
            self.permissions.remember(rule)
        return answer

    async def _confirm(self, call: ToolCall, valid: ValidCall, reason: str) -> bool:
        """A question a running tool asks (see `tools.events.CONFIRM`): asked every time,
        never remembered, refused where nobody can answer."""
        answer = await self.ask(call, valid, Ask(reason, source="escalation"))
        return answer.approved

    def _host_allowed(self, call: ToolCall, host: str) -> bool:
        """Whether an allow rule names `host` for this tool (`WebFetch(domain:HOST)`; a
        bare `WebFetch` rule names no host)."""
        probe = dataclasses.replace(call, arguments={"url": f"https://{host}/"})
        rules = [r for r in self.permissions.allow if r.names(call.name) and not r.whole_tool]
        return any(domain_covers(rule, probe, loose=False) for rule in rules)

    async def _execute(self, call: ToolCall, valid: ValidCall) -> tuple[ToolResult, ToolOutput]:
        """Run the tool. Known credential values in its output are redacted here, the one
        place every result passes before the model, the session file or a checkpoint."""
        started = time.monotonic()
        CURRENT_CALL.set(call.id)  # this task's own context: concurrent calls do not mix
        CONFIRM.set(lambda reason: self._confirm(call, valid, reason))
        ALLOWED_HOST.set(lambda host: self._host_allowed(call, host))
        output = await self.registry.execute(valid, self.ctx)
        if output.grant_rules:
            self.permissions.extend(parse_rules(output.grant_rules, split_commas=False))
        if output.switch_mode is not None:
            self.set_mode(output.switch_mode)  # type: ignore[arg-type]
        redact = self.ctx.credentials.redact
        result = ToolResult(
            call=call,
            output=redact(output.content),
            is_error=output.is_error,
            display=None if output.display is None else redact(output.display),
            data={k: redact(v) if isinstance(v, str) else v for k, v in output.data.items()},
            duration_ms=int((time.monotonic() - started) * 1000),
            media=output.media,
        )
        if self.hooks is not None:
            result, said = await after_tool(self.hooks, result, self.mode, result.duration_ms)
            output = dataclasses.replace(output, events=(*output.events, *said))
        return result, output


async def _with_progress(work: Callable[[], Awaitable[T]], holder: list[T]) -> AsyncIterator[Any]:
    """Run `work()`, yielding the events its tools send (`tools.events.PROGRESS`) as they
    come; its result is appended to `holder`. Closing the generator (the turn was
    cancelled) cancels the work."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    token = PROGRESS.set(queue.put_nowait)
    try:
        task = asyncio.ensure_future(work())  # tasks made now copy the context: tools see it
    finally:
        PROGRESS.reset(token)
    try:
        while not task.done():
            getter = asyncio.ensure_future(queue.get())
            try:
                await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                getter.cancel()
            if getter.done() and not getter.cancelled():
                yield getter.result()
        while not queue.empty():
            yield queue.get_nowait()
        holder.append(task.result())
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
