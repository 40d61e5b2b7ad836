"""The REPL's live lines for running subagents: one line each under the spinner
(`⎿ explorer · find A · grep_search foo · 12s`), gone when the agent ends; the `agent`
call's own line and result stay in the scrollback as for any tool."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.text import Text

from qwen_code.agent.events import SubagentEvent, ToolCallStarted, ToolResult, TurnEnd

MAX_LINES = 6


@dataclass(slots=True)
class _Running:
    agent: str
    description: str
    started: float = field(default_factory=time.monotonic)
    current: str = ""
    calls: int = 0


class RunningAgents:
    """What each running subagent (by its `agent` call's id) is doing now."""

    def __init__(self) -> None:
        self._running: dict[str, _Running] = {}

    def __bool__(self) -> bool:
        return bool(self._running)

    def clear(self) -> None:
        self._running.clear()

    def update(self, event: SubagentEvent) -> None:
        state = self._running.get(event.parent_call_id)
        if event.event is None or state is None:
            state = _Running(event.agent, event.description)
            self._running[event.parent_call_id] = state
        if isinstance(event.event, TurnEnd):  # this agent is done (a nested one: not)
            del self._running[event.parent_call_id]
            return
        node, inner = event.innermost()
        who = "" if node is event else f"{node.agent}: "
        if isinstance(inner, ToolCallStarted):
            state.current = f"{who}{inner.call.name} {inner.summary}".strip()
            state.calls += 1
        elif isinstance(inner, ToolResult):
            state.current = ""

    def lines(self, dot: str = "·") -> list[Text]:
        now = time.monotonic()
        shown = list(self._running.values())[:MAX_LINES]
        lines = []
        for state in shown:
            line = Text("  ⎿ ", style="dim")
            line.append(state.agent, style="magenta")
            line.append(f" {dot} {state.description}", style="dim")
            if state.current:
                line.append(f" {dot} {state.current}", style="dim")
            line.append(f" {dot} {int(now - state.started)}s", style="dim")
            line.no_wrap, line.overflow = True, "ellipsis"
            lines.append(line)
        if len(self._running) > MAX_LINES:
            lines.append(Text(f"  ⎿ … {len(self._running) - MAX_LINES} more", style="dim"))
        return lines
