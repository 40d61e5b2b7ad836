"""Which hooks of an event run for one value (a tool id, an agent type, a trigger).

Qwen Code's matcher syntax, so a `matcher` written for Qwen Code or Claude Code works
unchanged: `""`, `"*"` and `".*"` match everything; the whole matcher is first compared
exactly; a `|` list (not starting with `^` or `(`) matches when an entry is `*`, `.*` or
exactly the value; otherwise the matcher is an unanchored regular expression (a list
becomes the alternation of its trimmed, non-empty entries). On tool events an entry may
also be one of Claude Code's tool names or Qwen Code's display names (`Bash`, `Write`,
`ReadFile`), each naming exactly one of our tools, compared exactly (never as a regex).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qwen_code.tool_names import CLAUDE_TOOL_NAMES

TOOL_EVENTS = frozenset(
    {"PreToolUse", "PermissionRequest", "PostToolUse", "PostToolUseFailure", "PermissionDenied"}
)
"""Events whose matcher is compared with a tool id (and so may use a tool alias)."""

TOOL_ALIASES: dict[str, str] = {
    **CLAUDE_TOOL_NAMES,
    # Qwen Code's display and legacy names.
    "Shell": "run_shell_command",
    "ShellTool": "run_shell_command",
    "EditTool": "edit",
    "WriteFile": "write_file",
    "WriteFileTool": "write_file",
    "ReadFile": "read_file",
    "ReadFileTool": "read_file",
    "GrepTool": "grep_search",
    "SearchFiles": "grep_search",
    "search_file_content": "grep_search",
    "GlobTool": "glob",
    "FindFiles": "glob",
    "ListFiles": "list_directory",
    "ListFilesTool": "list_directory",
    "ReadFolder": "list_directory",
    "TodoList": "todo_write",
    "TodoWriteTool": "todo_write",
    "WebFetchTool": "web_fetch",
    "WebSearchTool": "web_search",
    "AgentTool": "agent",
    "task": "agent",
    "TaskTool": "agent",
    "SkillTool": "skill",
    "ExitPlanModeTool": "exit_plan_mode",
    "SaveMemory": "save_memory",
    "SaveMemoryTool": "save_memory",
}
"""Other names of our tools that a tool event's matcher may use, each for one tool."""

_EVERYTHING = frozenset({"", "*", ".*"})


@dataclass(frozen=True, slots=True)
class Matcher:
    """One `matcher`, compiled once."""

    text: str
    everything: bool = False
    names: frozenset[str] = frozenset()
    """Values compared exactly (the whole matcher, and a list's entries)."""
    regex: re.Pattern[str] | None = None
    error: str = ""
    """Why the regular expression does not compile (then it never matches)."""

    def matches(self, value: str, *, tool_event: bool = False) -> bool:
        if self.everything or value in self.names:
            return True
        if tool_event and any(TOOL_ALIASES.get(name) == value for name in self.names):
            return True
        return self.regex is not None and self.regex.search(value) is not None


def compile_matcher(text: str) -> Matcher:
    """Compile a matcher (see the module docstring). A regex that does not compile makes
    a matcher that never matches, with the reason in `error`."""
    if text.strip() in _EVERYTHING:
        return Matcher(text, everything=True)
    if text.startswith(("^", "(")):
        return _with_regex(text, frozenset({text}), text)
    entries = [entry for entry in (_trim(part) for part in split_entries(text)) if entry]
    if any(entry in _EVERYTHING for entry in entries):
        return Matcher(text, everything=True)
    names = frozenset({text, *entries})
    if not entries:
        return Matcher(text, names=names)
    return _with_regex(text, names, "|".join(entries))


def _with_regex(text: str, names: frozenset[str], pattern: str) -> Matcher:
    try:
        return Matcher(text, names=names, regex=re.compile(pattern))
    except (re.error, RecursionError, OverflowError) as exc:
        return Matcher(text, error=f"matcher {text!r} is not a valid regex: {exc}")


def split_entries(text: str) -> list[str]:
    """`text` split at each `|` that is outside `[...]` and `(...)` and not escaped."""
    entries: list[str] = []
    current: list[str] = []
    depth, in_class, escaped = 0, False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif char == "|" and depth == 0:
            entries.append("".join(current))
            current = []
            continue
        current.append(char)
    entries.append("".join(current))
    return entries


def _trim(entry: str) -> str:
    """Spaces around a list entry go, except an escaped one at its end (`\\.env\\ `)."""
    start = entry.lstrip()
    end = start.rstrip()
    trailing_backslashes = len(end) - len(end.rstrip("\\"))
    if trailing_backslashes % 2 == 1 and len(end) < len(start):
        return start[: len(end) + 1]
    return end
