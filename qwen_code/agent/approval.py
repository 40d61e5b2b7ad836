"""Approval policy: the core decides, the front end asks, a denial is a message to the model.

Modes (as Qwen Code): `plan` allows read-only tools only; `default` allows reads and
asks for edits, writes and shell; `auto-edit` also allows edits and writes; `yolo`
allows everything. Allow rules (`--allowed-tools`, `tools.allowed`) add exceptions:
a tool name (`edit`), an alias (`Edit`, `Bash`, `Read`), or a shell command prefix
(`run_shell_command(git status)`, `Bash(npm test)`).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Literal, Protocol

from qwen_code.agent.events import ToolCall
from qwen_code.config import ApprovalMode
from qwen_code.tools.base import ToolKind

SHELL_TOOL = "run_shell_command"
_ALIASES: dict[str, tuple[str, ...]] = {
    "Bash": (SHELL_TOOL,),
    "Shell": (SHELL_TOOL,),
    "ShellTool": (SHELL_TOOL,),
    "Edit": ("edit", "write_file"),
    "Write": ("write_file",),
    "Read": ("read_file", "glob", "grep_search", "list_directory"),
}
"""Claude Code / Qwen Code rule names (capitalised) for our tools."""
_RULE = re.compile(r"^\s*([\w.:-]+)\s*(?:\((.*)\))?\s*$")
_SHELL_SPLIT = re.compile(r"\s*(?:&&|\|\||;|\||\n|&(?!>))\s*")


@dataclass(frozen=True, slots=True)
class Allow:
    pass


@dataclass(frozen=True, slots=True)
class Ask:
    reason: str


@dataclass(frozen=True, slots=True)
class Deny:
    reason: str


Decision = Allow | Ask | Deny


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRequest:
    """What a front end shows when it asks: the call, why it needs approval, a preview."""

    call: ToolCall
    kind: ToolKind
    reason: str
    summary: str = ""
    preview: str | None = None
    """What the call would change (a diff for edits), when the tool can tell."""
    suggested_rule: str = ""
    """The allow rule an "always" answer would add, e.g. `run_shell_command(git status)`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalAnswer:
    approved: bool
    message: str = ""
    """A note for the model (why it was denied, or what to do instead)."""
    remember: Literal["session", "project", "user"] | None = None
    """Allow calls like this from now on; the front end persists project/user rules."""
    rule: str | None = None
    """The rule to remember (defaults to the request's suggested rule)."""


class Approver(Protocol):
    """Asks whoever is in charge. The REPL prompts the user; headless never reads stdin."""

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer: ...


class HeadlessApprover:
    """Denies everything that needs approval, telling the model why and the user how."""

    def __init__(self, mode: ApprovalMode) -> None:
        self.mode = mode

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        flag = "--approval-mode auto-edit" if request.kind == "edit" else "--yolo"
        return ApprovalAnswer(
            approved=False,
            message=(
                f"The {request.call.name} call was not run: it needs approval in "
                f"{self.mode!r} mode and this non-interactive session cannot ask the user. "
                f"Do not retry it; finish what you can without it and tell the user it was "
                f"denied (they can rerun with {flag} or --allowed-tools {request.call.name})."
            ),
        )


@dataclass(frozen=True, slots=True)
class AllowRule:
    tools: tuple[str, ...]
    specifier: str | None = None


def parse_rules(rules: list[str]) -> list[AllowRule]:
    """Parse `name` / `name(specifier)` rules; comma-separated lists are accepted too."""
    parsed: list[AllowRule] = []
    for raw in rules:
        for part in _split_rule_list(raw):
            match = _RULE.match(part)
            if not match:
                continue
            name, spec = match.group(1), match.group(2)
            tools = _ALIASES.get(name, (name,))
            parsed.append(AllowRule(tools, spec.strip() if spec else None))
    return parsed


def _split_rule_list(raw: str) -> list[str]:
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


def rule_allows(rule: AllowRule, call: ToolCall) -> bool:
    if call.name not in rule.tools:
        return False
    if rule.specifier is None or rule.specifier in ("", "*"):
        return True
    if call.name == SHELL_TOOL:
        return _command_matches(str(call.arguments.get("command", "")), rule.specifier)
    return False


def _command_matches(command: str, prefix: str) -> bool:
    """Every sub-command (split on ;, &&, ||, |) must start with the allowed prefix."""
    prefix = prefix.removesuffix(":*").removesuffix("*").strip()
    if not prefix or "$(" in command or "`" in command:
        return False
    want = _words(prefix)
    subcommands = [c for c in _SHELL_SPLIT.split(command.strip()) if c]
    return bool(subcommands) and all(_words(c)[: len(want)] == want for c in subcommands)


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def decide(
    mode: ApprovalMode, kind: ToolKind, call: ToolCall, rules: list[AllowRule] | None = None
) -> Decision:
    """Whether a call may run, must be asked about, or is refused outright."""
    if kind in ("read", "think"):
        return Allow()
    if mode == "plan":
        return Deny(
            f"Plan mode allows only read-only tools; {call.name} was not run. Present the "
            "plan to the user instead of making changes."
        )
    if mode == "yolo" or (mode == "auto-edit" and kind == "edit"):
        return Allow()
    if any(rule_allows(rule, call) for rule in rules or ()):
        return Allow()
    what = "edits files" if kind == "edit" else "runs a command"
    return Ask(f"{call.name} {what}")


_SUBCOMMAND_TOOLS = frozenset(
    [
        "git",
        "npm",
        "pnpm",
        "yarn",
        "npx",
        "bun",
        "deno",
        "cargo",
        "go",
        "docker",
        "podman",
        "kubectl",
        "helm",
        "pip",
        "pip3",
        "poetry",
        "uv",
        "make",
        "dotnet",
        "gradle",
        "mvn",
        "bundle",
        "rake",
        "composer",
        "gh",
        "brew",
        "apt",
        "apt-get",
        "terraform",
        "nx",
    ]
)
"""Commands whose second word is a subcommand worth keeping in a rule (`git status`)."""


def suggest_rule(call: ToolCall) -> str:
    """The allow rule an "always allow" answer stores: the command's leading words for the
    shell (`run_shell_command(npm test)`, `run_shell_command(python -m pytest)`,
    `run_shell_command(ls)`), the tool's name otherwise."""
    if call.name != SHELL_TOOL:
        return call.name
    command = str(call.arguments.get("command", "")).strip()
    words = _words(_SHELL_SPLIT.split(command, maxsplit=1)[0]) if command else []
    if not words:
        return SHELL_TOOL
    prefix = words[:1]
    program = words[0].rsplit("/", 1)[-1]
    if program in _SUBCOMMAND_TOOLS and len(words) > 1 and not words[1].startswith("-"):
        prefix = words[:2]
    elif re.fullmatch(r"python[\d.]*", program) and words[1:2] == ["-m"] and len(words) > 2:
        prefix = words[:3]
    return f"{SHELL_TOOL}({' '.join(prefix)})"
