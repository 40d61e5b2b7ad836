"""Permission rules as written (`permissions.allow` / `ask` / `deny`, `tools.allowed`,
`--allowed-tools`): `Tool` or `Tool(specifier)`, with Claude Code / Qwen Code names and
ours, parsed into `Rule`s. What a rule matches is `permissions`' question.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

SHELL_TOOL = "run_shell_command"
READ_TOOLS = ("read_file", "grep_search", "glob", "list_directory")
EDIT_TOOLS = ("edit", "write_file")
_ALIASES: dict[str, tuple[str, ...]] = {
    "Bash": (SHELL_TOOL,),
    "Shell": (SHELL_TOOL,),
    "ShellTool": (SHELL_TOOL,),
    "Read": READ_TOOLS,
    "ReadFile": ("read_file",),
    "Edit": EDIT_TOOLS,
    "EditFile": ("edit",),
    "Write": ("write_file",),
    "WriteFile": ("write_file",),
    "Grep": ("grep_search",),
    "SearchFiles": ("grep_search",),
    "Glob": ("glob",),
    "FindFiles": ("glob",),
    "ListFiles": ("list_directory",),
    "WebFetch": ("web_fetch",),
    "WebSearch": ("web_search",),
    "TodoWrite": ("todo_write",),
    "SaveMemory": ("save_memory",),
}
"""Claude Code / Qwen Code rule names for our tools (our own names work as they are)."""
_LEGACY_PREFIX = frozenset([SHELL_TOOL, "ShellTool"])
"""Names whose star-less shell specifier is a word prefix (Gemini CLI / Qwen Code legacy)."""
PATH_ARGUMENT = {
    "read_file": "file_path",
    "write_file": "file_path",
    "edit": "file_path",
    "glob": "path",
    "grep_search": "path",
    "list_directory": "path",
}
"""The argument path rules match, per tool; absent directory arguments mean the root."""
_RULE = re.compile(r"^\s*([\w.:-]+)\s*(?:\((.*)\))?\s*$", re.DOTALL)

Tier = Literal["deny", "ask"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One parsed rule. `specifier` None means the whole tool."""

    raw: str
    tools: tuple[str, ...]
    specifier: str | None = None
    legacy: bool = False
    """Spelled `run_shell_command(…)` / `ShellTool(…)`: a star-less command is a prefix."""

    def names(self, tool: str) -> bool:
        return any(
            tool == name or (name.startswith("mcp__") and tool.startswith(name + "__"))
            for name in self.tools
        )

    @property
    def whole_tool(self) -> bool:
        return self.specifier is None or self.specifier.strip() == "*"


AllowRule = Rule
"""The old name, kept for callers that still import it."""


def parse_rule(text: str) -> Rule | None:
    """`Tool` or `Tool(specifier)`; None for text that is neither."""
    match = _RULE.match(text)
    if not match:
        return None
    name, spec = match.group(1), match.group(2)
    tools = _ALIASES.get(name, (name,))
    return Rule(text.strip(), tools, spec, legacy=name in _LEGACY_PREFIX)


def parse_rules(rules: Iterable[str], *, split_commas: bool = True) -> list[Rule]:
    """Parse rules. `--allowed-tools` and `tools.allowed` entries may hold several rules
    separated by commas (outside parentheses); `permissions.*` entries are one rule each."""
    parsed: list[Rule] = []
    for raw in rules:
        for part in split_rule_list(raw) if split_commas else [raw]:
            rule = parse_rule(part)
            if rule is not None:
                parsed.append(rule)
    return parsed


def split_rule_list(raw: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in raw:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in (s.strip() for s in parts) if p]


def rule_fits_flag(rule: str) -> bool:
    """Whether `--allowed-tools RULE` reads back as this one rule: the flag's values are
    split on every comma, so a rule holding one must go into the settings instead."""
    return "," not in rule and "\n" not in rule
