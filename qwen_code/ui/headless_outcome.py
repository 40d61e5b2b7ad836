"""What a headless run did, gathered from its events: `RunInfo` (what `init` says),
`Outcome` (what the result says: reason, usage, denials, exit code) and the `Recorder`
that fills the outcome in as the events go by. Every headless front end (text, json,
stream-json, stream-json input, the SDK runtime) shares them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from qwen_code.agent.events import (
    ApprovalRequested,
    AssistantMessage,
    Error,
    Event,
    SideUsage,
    SubagentEvent,
    ToolCallStarted,
    ToolResult,
    TurnEnd,
    UsageInfo,
)
from qwen_code.errors import ExitCode
from qwen_code.llm.pricing import PriceTable
from qwen_code.llm.tokens import add_usage, is_estimate


@dataclass(slots=True, kw_only=True)
class RunInfo:
    session_id: str
    model: str
    cwd: str
    tools: list[str]
    permission_mode: str
    version: str
    mcp_servers: list[dict[str, str]] = field(default_factory=list)
    """`{"name", "status"}` per configured MCP server (Claude Code's init shape)."""
    pricing: PriceTable | None = None
    """Token prices for `total_cost_usd` (the session's; default: the built-in table)."""
    server: dict[str, Any] | None = None
    """What a local model server told about itself (`ServerInfo.to_json()`), for `init`."""
    started_at: float = field(default_factory=time.monotonic)


@dataclass(slots=True, kw_only=True)
class Outcome:
    """How the run ended, with everything the `result` message reports."""

    reason: str
    result: str = ""
    num_turns: int = 0
    error: str | None = None
    error_kind: str | None = None
    usage: UsageInfo = field(default_factory=UsageInfo)
    requests: list[UsageInfo] = field(default_factory=list)
    """Usage of each model request, for pricing (tiers depend on each request's size)."""
    api_seconds: float = 0.0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    denials: list[dict[str, Any]] = field(default_factory=list)
    structured_output: dict[str, Any] | None = None
    """`--json-schema`: the accepted `structured_output` call's arguments."""

    @property
    def is_error(self) -> bool:
        return self.reason != "completed"

    @property
    def estimated(self) -> bool:
        """Whether some of `usage` is qwen-code's estimate (the server reported none)."""
        return any(is_estimate(u) for u in self.requests)

    @property
    def cut_off(self) -> bool:
        """The run ended on a reply cut off at the output token limit."""
        return self.reason == "error" and self.error_kind in MAX_TOKENS_KINDS

    @property
    def subtype(self) -> str:
        if self.cut_off:
            return "error_max_tokens"
        return _SUBTYPES.get(self.reason, "error_during_execution")

    def exit_code(self) -> int:
        if self.reason == "completed":
            return ExitCode.OK
        if self.reason == "max_turns":
            return ExitCode.MAX_TURNS
        if self.reason in BUDGET_REASONS:
            return ExitCode.BUDGET
        if self.reason == "cancelled":
            return ExitCode.INTERRUPTED
        if self.cut_off:
            return ExitCode.MAX_TOKENS
        return ExitCode.AUTH if self.error_kind == "auth" else ExitCode.ERROR

    def count_unreported(self, usages: list[UsageInfo]) -> None:
        """Add the estimated usage of requests cut short, which no event reported
        (`Agent.take_unreported`): an interrupted run still says what it used."""
        for usage in usages:
            self.usage = add_usage(self.usage, usage)
            self.requests.append(usage)


BUDGET_REASONS = frozenset({"max_budget_usd", "max_wall_time", "max_tool_calls"})
MAX_TOKENS_KINDS = frozenset({"max_tokens", "output_limit"})
"""Error kinds of a reply cut off at the output limit (`finish_reason: length` twice, or
a reply the client stopped far past the limit)."""
_SUBTYPES = {
    "completed": "success",
    "max_turns": "error_max_turns",
    "cancelled": "error_interrupted",
    "max_budget_usd": "error_max_budget_usd",
    "max_wall_time": "error_max_wall_time",
    "max_tool_calls": "error_max_tool_calls",
    "structured_output_retries": "error_max_structured_output_retries",
}


class Recorder:
    """Collects what the result message needs while events go by."""

    def __init__(self) -> None:
        self.outcome = Outcome(reason="error")
        self._calls: dict[str, dict[str, Any]] = {}

    def observe(self, event: Event) -> None:
        if isinstance(event, SubagentEvent | SideUsage):
            self._subagent(event)
            return
        match event:
            case ToolCallStarted(call=call):
                entry = {"id": call.id, "name": call.name, "arguments": call.arguments}
                self._calls[call.id] = entry
                self.outcome.tool_calls.append(entry)
            case ToolResult(call=call, is_error=is_error):
                self._calls.get(call.id, {})["is_error"] = is_error
            case ApprovalRequested(call=call, decision="denied"):
                self.outcome.denials.append(
                    {"tool_name": call.name, "tool_use_id": call.id, "tool_input": call.arguments}
                )
            case AssistantMessage(usage=usage) if usage is not None:
                self.outcome.usage = add_usage(self.outcome.usage, usage)
                self.outcome.requests.append(usage)
            case Error(message=message, kind=kind, retrying=False):
                self.outcome.error, self.outcome.error_kind = message, kind
            case TurnEnd(reason=reason, final_text=text, num_turns=turns, error=error):
                self.outcome.reason, self.outcome.result = reason, text
                self.outcome.num_turns = turns
                self.outcome.error = error or self.outcome.error

    def _subagent(self, event: SubagentEvent | SideUsage) -> None:
        """A subagent's requests (and a tool's own) count in the run's usage and cost, its
        refusals in the denials; its tool calls are its own."""
        inner = event.innermost()[1] if isinstance(event, SubagentEvent) else event
        match inner:
            case AssistantMessage(usage=usage) | SideUsage(usage=usage) if usage is not None:
                self.outcome.usage = add_usage(self.outcome.usage, usage)
                self.outcome.requests.append(usage)
            case ApprovalRequested(call=call, decision="denied"):
                self.outcome.denials.append(
                    {"tool_name": call.name, "tool_use_id": call.id, "tool_input": call.arguments}
                )
