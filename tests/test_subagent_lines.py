"""The REPL's live lines for running subagents: one per agent, what it runs now, gone
when it ends; a nested agent's steps show on its top-level agent's line."""

from __future__ import annotations

from qwen_code.agent.events import SubagentEvent, ToolCall, ToolCallStarted, ToolResult, TurnEnd
from qwen_code.ui.subagent_lines import MAX_LINES, RunningAgents


def sub(call_id: str, event: object = None, agent: str = "explorer") -> SubagentEvent:
    return SubagentEvent(
        parent_call_id=call_id,
        agent=agent,
        description="find [A]",
        event=event,  # type: ignore[arg-type]
    )


def plain(agents: RunningAgents) -> list[str]:
    return [line.plain for line in agents.lines()]


def test_one_line_per_running_agent_with_its_current_tool() -> None:
    agents = RunningAgents()
    agents.update(sub("c1"))
    agents.update(sub("c2", agent="general-purpose"))
    grep = ToolCall(id="g", name="grep_search", arguments={"pattern": "A"})
    agents.update(sub("c1", ToolCallStarted(call=grep, summary="'A'")))
    lines = plain(agents)
    assert len(lines) == 2
    assert lines[0].startswith("  ⎿ explorer · find [A] · grep_search 'A' · ")
    assert lines[1].startswith("  ⎿ general-purpose · find [A] · ")
    agents.update(sub("c1", ToolResult(call=grep, output="a.py:1")))
    assert "grep_search" not in plain(agents)[0]
    agents.update(sub("c1", TurnEnd(reason="completed")))
    assert [line.split(" · ")[0] for line in plain(agents)] == ["  ⎿ general-purpose"]


def test_a_nested_agent_shows_on_its_parents_line_and_does_not_end_it() -> None:
    agents = RunningAgents()
    agents.update(sub("c1"))
    read = ToolCall(id="r", name="read_file", arguments={})
    nested = sub("n1", ToolCallStarted(call=read, summary="a.py"), agent="helper")
    agents.update(sub("c1", nested))
    assert "helper: read_file a.py" in plain(agents)[0]
    agents.update(sub("c1", sub("n1", TurnEnd(reason="completed"), agent="helper")))
    assert len(plain(agents)) == 1


def test_many_agents_are_summed_up() -> None:
    agents = RunningAgents()
    for n in range(MAX_LINES + 3):
        agents.update(sub(f"c{n}"))
    lines = plain(agents)
    assert len(lines) == MAX_LINES + 1
    assert lines[-1] == "  ⎿ … 3 more"
