"""The agent's events as ACP `session/update` payloads, and how a turn's end reads there.

Pure functions of the events (and the session's folder for paths), so the mapping can be
tested without a connection; `turns.TurnUpdates` applies them in order during a turn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acp import (
    plan_entry,
    start_tool_call,
    text_block,
    tool_content,
    update_agent_message_text,
    update_agent_thought_text,
    update_plan,
    update_tool_call,
)

if TYPE_CHECKING:
    from acp.schema import (
        AgentMessageChunk,
        AgentPlanUpdate,
        AgentThoughtChunk,
        FileEditToolCallContent,
        StopReason,
        ToolCallLocation,
        ToolCallProgress,
        ToolCallStart,
        ToolCallStatus,
        ToolKind,
    )

    from qwen_code.agent.events import Error, ToolCall, ToolResult, TurnEnd

KIND_BY_TOOL: dict[str, ToolKind] = {
    "read_file": "read",
    "list_directory": "read",
    "skill": "read",
    "glob": "search",
    "grep_search": "search",
    "edit": "edit",
    "write_file": "edit",
    "save_memory": "edit",
    "run_shell_command": "execute",
    "web_fetch": "fetch",
    "web_search": "fetch",
    "todo_write": "think",
    "agent": "think",
    "ask_user_question": "think",
    "exit_plan_mode": "switch_mode",
}
"""ACP's kind for each built-in tool (the editor picks an icon by it)."""

KIND_BY_POLICY: dict[str, ToolKind] = {
    "read": "read",
    "edit": "edit",
    "execute": "execute",
    "think": "think",
    "network": "fetch",
}
"""For other tools (MCP servers'): from the kind the approval policy knows them by."""

VERBS = {
    "read_file": "Read",
    "list_directory": "List",
    "glob": "Find",
    "grep_search": "Search",
    "edit": "Edit",
    "write_file": "Write",
    "save_memory": "Save memory",
    "web_fetch": "Fetch",
    "web_search": "Web search",
    "todo_write": "Update the plan",
    "agent": "Agent",
    "skill": "Skill",
    "ask_user_question": "Ask the user",
    "exit_plan_mode": "Ready to code?",
}
PATH_KEYS = ("file_path", "path", "absolute_path", "dir_path")
"""Arguments that name a file or folder: the editor can follow them (`locations`)."""
RESULT_CHARS = 20_000
"""Most characters of a tool's output shown in the editor (the model still gets it all)."""


def tool_kind(name: str, policy_kind: str | None) -> ToolKind:
    """ACP's kind for a tool: by its name when built in, else by its policy kind."""
    if name in KIND_BY_TOOL:
        return KIND_BY_TOOL[name]
    return KIND_BY_POLICY.get(policy_kind or "", "other")


def tool_title(name: str, summary: str) -> str:
    """One line for the editor: `Read src/app.py`, the command for a shell call."""
    if name == "run_shell_command":
        return summary or "Shell command"
    verb = VERBS.get(name, name)
    if name in ("todo_write", "exit_plan_mode"):
        return verb
    return f"{verb} {summary}" if summary else verb


def tool_locations(arguments: Mapping[str, Any], cwd: Path) -> list[ToolCallLocation]:
    """The files a call names, as absolute paths (relative ones are the session's)."""
    from acp.schema import ToolCallLocation

    found = []
    for key in PATH_KEYS:
        raw = arguments.get(key)
        if isinstance(raw, str) and raw.strip():
            path = Path(raw).expanduser()
            found.append(ToolCallLocation(path=str(path if path.is_absolute() else cwd / path)))
    return found


def tool_start(
    call: ToolCall,
    *,
    title: str,
    kind: ToolKind,
    status: ToolCallStatus,
    cwd: Path,
    diff: FileEditToolCallContent | None = None,
) -> ToolCallStart:
    """The `tool_call` update that announces a call (with its diff, for an edit)."""
    return start_tool_call(
        call.id,
        title,
        kind=kind,
        status=status,
        content=[diff] if diff is not None else None,
        locations=tool_locations(call.arguments, cwd) or None,
        raw_input=call.arguments,
    )


def tool_finish(
    result: ToolResult, diff: FileEditToolCallContent | None = None
) -> ToolCallProgress:
    """The `tool_call_update` that ends a call: completed (an edit shows its diff) or
    failed, with what it said."""
    shown = result.output if result.is_error else (result.display or result.output)
    if len(shown) > RESULT_CHARS:
        shown = shown[:RESULT_CHARS] + f"\n… ({len(shown) - RESULT_CHARS} more characters)"
    content: list[Any] = [diff] if diff is not None and not result.is_error else []
    if shown.strip():
        content.append(tool_content(text_block(shown)))
    return update_tool_call(
        result.call.id,
        status="failed" if result.is_error else "completed",
        content=content,
    )


def tool_running(call_id: str) -> ToolCallProgress:
    return update_tool_call(call_id, status="in_progress")


def plan_from_todos(todos: Sequence[Mapping[str, Any]]) -> AgentPlanUpdate:
    """The todo list as the editor's plan."""
    statuses = ("pending", "in_progress", "completed")
    entries = []
    for todo in todos:
        status = todo.get("status")
        entries.append(
            plan_entry(
                str(todo.get("content", "")),
                status=status if status in statuses else "pending",  # type: ignore[arg-type]
            )
        )
    return update_plan(entries)


def message(text: str) -> AgentMessageChunk:
    return update_agent_message_text(text)


def thought(text: str) -> AgentThoughtChunk:
    return update_agent_thought_text(text)


def error_message(error: Error) -> AgentMessageChunk:
    """A failure that ended the turn, said in the conversation (the editor shows no log)."""
    what = "Stopped" if error.kind == "loop" else "The model request failed"
    return message(f"\n\n**{what}:** {error.message}\n")


def stop_reason(end: TurnEnd, finish_reason: str | None = None) -> StopReason:
    """How the turn's end reads in the prompt response. A reply the server filtered
    (`finish_reason` content_filter) is a refusal; a failure has been explained in the
    conversation, so it ends the turn as usual."""
    if end.reason == "max_turns":
        return "max_turn_requests"
    if end.reason == "cancelled":
        return "cancelled"
    if finish_reason == "content_filter":
        return "refusal"
    return "end_turn"
