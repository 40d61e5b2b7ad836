"""Claude Code's names for qwen-code's built-in tools, one tool each: `--tools Bash,Read`
and hook matchers (`"Write|Edit"`). A settings-level module (no imports), so both the tools
and the hooks layers use this one table. (Permission rules have their own wider aliases:
`Read` there also covers grep and glob.)"""

from __future__ import annotations

from collections.abc import Iterable

CLAUDE_TOOL_NAMES = {
    "Bash": "run_shell_command",
    "Read": "read_file",
    "Edit": "edit",
    "MultiEdit": "edit",
    "Write": "write_file",
    "Grep": "grep_search",
    "Glob": "glob",
    "LS": "list_directory",
    "WebFetch": "web_fetch",
    "WebSearch": "web_search",
    "TodoWrite": "todo_write",
    "Task": "agent",
    "Agent": "agent",
    "Skill": "skill",
    "AskUserQuestion": "ask_user_question",
    "ExitPlanMode": "exit_plan_mode",
}


def tool_names(names: Iterable[str]) -> set[str]:
    """Our tool names for names given either way."""
    return {CLAUDE_TOOL_NAMES.get(name, name) for name in names}
