"""Session statistics (`/stats`): tokens, turns, tool calls and time per tool.

Fed with the same events every front end sees, so it needs no hooks in the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qwen_code.agent.events import (
    ApprovalRequested,
    AssistantMessage,
    Event,
    ToolResult,
    TurnEnd,
    UsageInfo,
)


@dataclass(slots=True)
class ToolStats:
    calls: int = 0
    errors: int = 0
    total_ms: int = 0


@dataclass(slots=True)
class SessionStats:
    usage: UsageInfo = field(default_factory=UsageInfo)
    last_prompt_tokens: int = 0
    """Prompt tokens of the latest request: how full the context window is."""
    requests: int = 0
    prompts: int = 0
    denials: int = 0
    tools: dict[str, ToolStats] = field(default_factory=dict)

    def observe(self, event: Event) -> None:
        match event:
            case AssistantMessage(usage=usage):
                self.requests += 1
                if usage is not None:
                    self.usage = self.usage + usage
                    self.last_prompt_tokens = usage.prompt_tokens + usage.completion_tokens
            case ToolResult(call=call, is_error=is_error, duration_ms=ms):
                entry = self.tools.setdefault(call.name, ToolStats())
                entry.calls += 1
                entry.errors += int(is_error)
                entry.total_ms += ms
            case ApprovalRequested(decision="denied"):
                self.denials += 1
            case TurnEnd():
                self.prompts += 1

    @property
    def tool_calls(self) -> int:
        return sum(t.calls for t in self.tools.values())
