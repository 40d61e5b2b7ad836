"""Subagent definitions: Markdown files with YAML front matter, as Qwen Code and Claude
Code write them (`name`, `description`, `tools`, `disallowedTools`, `model`, `maxTurns`,
`runConfig`, `approvalMode` / `permissionMode`, `color`); the body is the agent's system
prompt.

Looked for in `.qwen/agents/` and `.claude/agents/` of the project and in
`$QWEN_HOME/agents/` and `~/.claude/agents/`; a project agent wins over a personal one of
the same name, and either over the built-in `general-purpose`. An agent file can only
narrow what its agent may do: its tool list restricts, and of the approval modes only
`plan` (stricter than the session's) is honoured; nothing in it widens approvals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from qwen_code.front_matter import one_line, split_front_matter

Source: TypeAlias = Literal["builtin", "project", "user"]

GENERAL_PURPOSE = "general-purpose"
MAX_AGENT_BYTES = 256_000
_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")

TOOL_ALIASES: dict[str, tuple[str, ...]] = {
    "Bash": ("run_shell_command",),
    "Shell": ("run_shell_command",),
    "Read": ("read_file",),
    "ReadFile": ("read_file",),
    "Edit": ("edit",),
    "MultiEdit": ("edit",),
    "Write": ("write_file",),
    "WriteFile": ("write_file",),
    "Grep": ("grep_search",),
    "Glob": ("glob",),
    "LS": ("list_directory",),
    "TodoWrite": ("todo_write",),
    "WebFetch": ("web_fetch",),
    "WebSearch": ("web_search",),
    "Skill": ("skill",),
    "Task": ("agent",),
    "Agent": ("agent",),
}
"""Claude Code's tool names in an agent's `tools` list, as ours."""

_PLAN_MODES = {"plan"}
"""The `approvalMode` / `permissionMode` values an agent file may set: only stricter ones."""


@dataclass(frozen=True, slots=True)
class SubagentDef:
    name: str
    description: str
    system_prompt: str
    source: Source
    path: Path | None = None
    tools: tuple[str, ...] | None = None
    """Allowed tool names (ours; `mcp__server` means all of that server's tools); None: all."""
    disallowed_tools: tuple[str, ...] = ()
    model: str = "inherit"
    """`inherit`, `fast` (setting `fastModel`) or a model id."""
    max_turns: int | None = None
    max_time_s: float | None = None
    plan_only: bool = False
    """The file asks for plan mode: the agent may read and plan, never change anything."""
    color: str | None = None

    def allows(self, tool: str) -> bool:
        """Whether this agent may have `tool` (before the session's own exclusions)."""
        if any(_matches(tool, pattern) for pattern in self.disallowed_tools):
            return False
        return self.tools is None or any(_matches(tool, pattern) for pattern in self.tools)


def _matches(tool: str, pattern: str) -> bool:
    return tool == pattern or (pattern.startswith("mcp__") and tool.startswith(pattern + "__"))


@dataclass(slots=True)
class AgentCatalog:
    agents: dict[str, SubagentDef] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def get(self, name: str) -> SubagentDef | None:
        return self.agents.get(name)

    def names(self) -> list[str]:
        return list(self.agents)

    def prompt_list(self) -> str:
        """The available agents, one line each, for the `agent` tool's description."""
        return "\n".join(f"- {a.name}: {one_line(a.description)}" for a in self.agents.values())


def general_purpose() -> SubagentDef:
    from qwen_code import prompts

    return SubagentDef(
        name=GENERAL_PURPOSE,
        description=(
            "General-purpose agent for researching complex questions, searching for code "
            "and carrying out multi-step tasks on its own."
        ),
        system_prompt=prompts.load("agents/general-purpose.md", {}).strip(),
        source="builtin",
    )


def agent_dirs(cwd: Path, home: Path) -> list[tuple[Path, Source]]:
    """Where agents are looked for, lowest precedence first."""
    from qwen_code.settings_files import project_root

    root = project_root(cwd)
    return [
        (Path.home() / ".claude" / "agents", "user"),
        (home / "agents", "user"),
        (root / ".claude" / "agents", "project"),
        (root / ".qwen" / "agents", "project"),
    ]


def discover_agents(cwd: Path, home: Path) -> AgentCatalog:
    """The built-in agent and every agent file this session can use."""
    catalog = AgentCatalog()
    catalog.agents[GENERAL_PURPOSE] = general_purpose()
    for folder, source in agent_dirs(cwd, home):  # later places win
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.md")):
            try:
                agent = parse_agent(path, source)
            except (OSError, ValueError) as exc:
                catalog.problems.append(f"{path}: {exc}")
                continue
            catalog.agents[agent.name] = agent
    return catalog


def parse_agent(path: Path, source: Source) -> SubagentDef:
    """An agent file → `SubagentDef`; ValueError says what is wrong with it."""
    if path.stat().st_size > MAX_AGENT_BYTES:
        raise ValueError(f"larger than {MAX_AGENT_BYTES:,} bytes")
    return parse_agent_text(path.read_text(encoding="utf-8", errors="replace"), path, source)


def parse_agent_text(text: str, path: Path | None, source: Source) -> SubagentDef:
    meta, rest = split_front_matter(text)
    name = str(meta.get("name") or (path.stem if path else "")).strip()
    description = str(meta.get("description") or "").strip()
    if not _NAME.match(name):
        raise ValueError(f"name {name!r} may hold only letters, digits, _ . -")
    if not description:
        raise ValueError("description is missing")
    body = rest.strip()
    if not body:
        raise ValueError("the system prompt (the text after the front matter) is empty")
    run_config = meta.get("runConfig") if isinstance(meta.get("runConfig"), dict) else {}
    mode = meta.get("approvalMode", meta.get("permissionMode"))
    tools = meta.get("tools")
    return SubagentDef(
        name=name,
        description=description,
        system_prompt=body,
        source=source,
        path=path,
        tools=None if tools is None or tools == "*" else _tool_list(tools, "tools"),
        disallowed_tools=_tool_list(meta.get("disallowedTools"), "disallowedTools"),
        model=_model(meta.get("model")),
        max_turns=_positive(meta.get("maxTurns", run_config.get("max_turns"))),
        max_time_s=_minutes(run_config.get("max_time_minutes")),
        plan_only=str(mode) in _PLAN_MODES,
        color=str(meta["color"]) if isinstance(meta.get("color"), str) else None,
    )


def sdk_agent(name: str, spec: Any) -> SubagentDef:
    """An agent defined in a program's options (the Claude Agent SDK's `agents`:
    `{"description", "prompt", "tools", "model"}`); ValueError when it is not one."""
    if not isinstance(spec, dict):
        raise ValueError("an agent must be an object with description and prompt")
    description, prompt = spec.get("description"), spec.get("prompt")
    if not isinstance(description, str) or not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("an agent needs a description and a prompt")
    tools = spec.get("tools")
    return SubagentDef(
        name=name,
        description=description,
        system_prompt=prompt,
        source="user",
        tools=None if tools is None else _tool_list(tools, "tools"),
        disallowed_tools=_tool_list(spec.get("disallowedTools"), "disallowedTools"),
        model=_model(spec.get("model")),
        max_turns=_positive(spec.get("maxTurns")),
    )


def _tool_list(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        items = re.split(r",(?![^(]*\))", value)
    elif isinstance(value, list):
        items = [str(v) for v in value]
    else:
        raise ValueError(f"{key} must be a list or a comma-separated string")
    names: list[str] = []
    for item in items:
        bare = item.strip().split("(", 1)[0].strip()  # `Bash(git *)`: the tool, not the rule
        if bare:
            names.extend(TOOL_ALIASES.get(bare, (bare,)))
    return tuple(dict.fromkeys(names))


def _model(value: Any) -> str:
    text = str(value).strip() if value is not None else ""
    return text or "inherit"


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _minutes(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value) * 60
    return None


def render_agent_file(
    name: str, description: str, system_prompt: str, tools: list[str] | None = None
) -> str:
    """The Markdown file for an agent (what `/agents create` writes)."""
    import yaml

    meta: dict[str, Any] = {"name": name, "description": description}
    if tools:
        meta["tools"] = list(tools)
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100).strip()
    return f"---\n{front}\n---\n\n{system_prompt.strip()}\n"
