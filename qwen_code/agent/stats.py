"""Session statistics (`/stats`): tokens, turns, tool calls, time per tool and cost.

Fed with the same events every front end sees, so it needs no hooks in the loop. Cost
is priced per request (the price tier depends on each request's input tokens) when a
front end asks for it with the model in use: `stats.settle(model, pricing)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qwen_code.agent.events import (
    ApprovalRequested,
    AssistantMessage,
    Compressed,
    Event,
    SideUsage,
    SubagentEvent,
    ToolResult,
    TurnEnd,
    UsageInfo,
)
from qwen_code.llm.pricing import CostTotals, PriceTable, cache_creation_tokens, total_cost
from qwen_code.llm.tokens import add_usage, is_estimate


@dataclass(slots=True)
class ToolStats:
    calls: int = 0
    """Calls that ran (denied ones are counted in `denied`, not here)."""
    errors: int = 0
    denied: int = 0
    total_ms: int = 0


@dataclass(slots=True)
class SessionStats:
    usage: UsageInfo = field(default_factory=UsageInfo)
    last_prompt_tokens: int = 0
    """Prompt tokens of the latest request: how full the context window is."""
    last_estimated: bool = False
    """`last_prompt_tokens` is an estimate: the server reported no usage for that request."""
    requests: int = 0
    prompts: int = 0
    denials: int = 0
    compressions: int = 0
    tools: dict[str, ToolStats] = field(default_factory=dict)
    cache_creation_tokens: int = 0
    """Input tokens written to DashScope's explicit cache (billed at 125%)."""
    costs: CostTotals = field(default_factory=CostTotals)
    """Cost of the requests priced so far (see `settle`)."""
    _unpriced: list[UsageInfo] = field(default_factory=list, init=False, repr=False)
    _denied_calls: set[str] = field(default_factory=set, init=False, repr=False)
    """Ids of calls denied and not yet answered: their results are refusals, not errors."""

    def observe(self, event: Event) -> None:
        if isinstance(event, SubagentEvent):
            self._subagent(event)
        else:
            self._own(event)

    def _own(self, event: Event) -> None:
        match event:
            case AssistantMessage(usage=usage):
                self.requests += 1
                if usage is not None:
                    self.usage = add_usage(self.usage, usage)
                    self.cache_creation_tokens += cache_creation_tokens(usage)
                    self._unpriced.append(usage)
                    self.last_prompt_tokens = usage.prompt_tokens + usage.completion_tokens
                    self.last_estimated = is_estimate(usage)
            case ToolResult():
                self._tool_result(event)
            case ApprovalRequested(decision="denied", call=call):
                self.denials += 1
                self._denied_calls.add(call.id)
            case Compressed(usage=usage, after_tokens=after):
                self.compressions += 1
                self.last_prompt_tokens = after
                self.requests += usage is not None  # the summarizing request
                self._extra(usage)
            case TurnEnd():
                self.prompts += 1
            case SideUsage(usage=usage):  # a tool's own request (a page summary)
                self.requests += 1
                self._extra(usage)

    def _tool_result(self, event: ToolResult) -> None:
        entry = self.tools.setdefault(event.call.name, ToolStats())
        if event.call.id in self._denied_calls:  # a refusal, not a failure of the tool
            self._denied_calls.discard(event.call.id)
            entry.denied += 1
        else:
            entry.calls += 1
            entry.errors += int(event.is_error)
            entry.total_ms += event.duration_ms

    def _extra(self, usage: UsageInfo | None) -> None:
        """A request outside the conversation's own (a summary, a tool's side request)."""
        if usage is not None:
            self.usage = add_usage(self.usage, usage)
            self._unpriced.append(usage)

    def _subagent(self, event: SubagentEvent) -> None:
        """A subagent's requests, tool calls and denials count as the session's; its
        context is its own, so the window figure stays the main conversation's."""
        _, inner = event.innermost()
        if isinstance(inner, AssistantMessage | Compressed | SideUsage):
            last = self.last_prompt_tokens, self.last_estimated
            self._own(inner)
            self.last_prompt_tokens, self.last_estimated = last
        elif isinstance(inner, ToolResult | ApprovalRequested):
            self._own(inner)

    def settle(self, model: str, pricing: PriceTable | None = None) -> CostTotals:
        """Price the requests observed since the last call at `model`'s prices (`pricing`,
        else the built-in table) and return the session totals. Call it with the model in
        use before switching models, so every request is priced at its own model."""
        if self._unpriced:
            self.costs.merge(total_cost(model, self._unpriced, pricing))
            self._unpriced.clear()
        return self.costs

    @property
    def cost_usd(self) -> float | None:
        """Cost of the priced requests; None when any request's cost is unknown."""
        return self.costs.cost_usd

    @property
    def cache_savings_usd(self) -> float:
        return self.costs.savings_usd

    @property
    def estimated(self) -> bool:
        """Whether some of `usage` is qwen-code's estimate (a server that reports none)."""
        return is_estimate(self.usage)

    @property
    def tool_calls(self) -> int:
        return sum(t.calls for t in self.tools.values())
