"""Runs one model response's tool calls: validate, settle approval, execute, report.

Consecutive read-only calls run concurrently; anything that changes the workspace runs
alone and in order, after its approval. Every call ends in exactly one `ToolResult`,
whether it ran, was denied, or had bad arguments.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from qwen_code.agent.approval import (
    AllowRule,
    ApprovalRequest,
    Approver,
    Ask,
    Deny,
    decide,
    parse_rules,
    suggest_rule,
)
from qwen_code.agent.events import ApprovalRequested, Event, ToolCall, ToolCallStarted, ToolResult
from qwen_code.config import ApprovalMode
from qwen_code.tools.base import ToolContext, ToolKind, ToolOutput
from qwen_code.tools.registry import ToolRegistry, ValidCall


@dataclass(slots=True, kw_only=True)
class ToolRunner:
    registry: ToolRegistry
    ctx: ToolContext
    approver: Approver
    mode: ApprovalMode = "default"
    rules: list[AllowRule] = field(default_factory=list)
    before_change: Callable[[ToolCall, ToolKind], Awaitable[None]] | None = None
    """Called before a tool that changes the workspace runs (checkpoints hook in here)."""

    def set_mode(self, mode: ApprovalMode) -> None:
        """Switch approval mode mid-session (the workspace boundary stays)."""
        self.mode = mode

    async def run(self, calls: tuple[ToolCall, ...]) -> AsyncIterator[Event]:
        batch: list[tuple[ToolCall, ValidCall]] = []
        for call in calls:
            prepared = self._prepare(call)
            if isinstance(prepared, ValidCall) and prepared.tool.kind in ("read", "think"):
                batch.append((call, prepared))
                continue
            async for event in self._run_batch(batch):
                yield event
            batch = []
            async for event in self._run_one(call, prepared):
                yield event
        async for event in self._run_batch(batch):
            yield event

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
        results = await asyncio.gather(*(self._execute(call, valid) for call, valid in batch))
        for result, output in results:
            yield result
            for event in output.events:
                yield event

    async def _run_one(self, call: ToolCall, prepared: ValidCall | str) -> AsyncIterator[Event]:
        if isinstance(prepared, str):
            yield ToolCallStarted(call=call)
            yield ToolResult(call=call, output=prepared, is_error=True)
            return
        yield ToolCallStarted(call=call, summary=prepared.tool.summary(prepared.params))
        decision = decide(self.mode, prepared.tool.kind, call, self.rules)
        if isinstance(decision, Deny):
            yield ApprovalRequested(
                call=call, reason=decision.reason, decision="denied", message=decision.reason
            )
            yield ToolResult(call=call, output=f"Error: {decision.reason}", is_error=True)
            return
        if isinstance(decision, Ask):
            request = ApprovalRequest(
                call=call,
                kind=prepared.tool.kind,
                reason=decision.reason,
                summary=prepared.tool.summary(prepared.params),
                preview=await prepared.tool.preview(prepared.params, self.ctx),
                suggested_rule=suggest_rule(call),
            )
            answer = await self.approver(request)
            if answer.approved and answer.remember:
                self.rules.extend(parse_rules([answer.rule or request.suggested_rule]))
            verdict = "allowed" if answer.approved else "denied"
            yield ApprovalRequested(
                call=call, reason=decision.reason, decision=verdict, message=answer.message
            )
            if not answer.approved:
                denial = answer.message or f"The user denied the {call.name} call."
                yield ToolResult(call=call, output=denial, is_error=True)
                return
        if self.before_change is not None:
            await self.before_change(call, prepared.tool.kind)
        result, output = await self._execute(call, prepared)
        yield result
        for event in output.events:
            yield event

    async def _execute(self, call: ToolCall, valid: ValidCall) -> tuple[ToolResult, ToolOutput]:
        started = time.monotonic()
        output = await self.registry.execute(valid, self.ctx)
        result = ToolResult(
            call=call,
            output=output.content,
            is_error=output.is_error,
            display=output.display,
            data=output.data,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        return result, output
