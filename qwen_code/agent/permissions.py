"""Permission rules (`permissions.allow` / `ask` / `deny`, `tools.allowed`, `--allowed-tools`)
and what they match: tool names, shell commands (parsed, see `shell_parse`) and paths.

A rule is `Tool` or `Tool(specifier)`, with Claude Code / Qwen Code names and ours. The
approval policy (`approval.decide`) asks a `Permissions` object three questions: does a
deny rule match, does an ask rule match, do the allow rules cover the call. Deny and ask
matching is wide (any simple command anywhere in a shell command, unknowable words count
as matching); allow matching is narrow (every simple command must be covered, and
constructs that can do something else than the words say never are).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from qwen_code.agent.shell_parse import (
    ParsedShell,
    Redirect,
    ShellPattern,
    Word,
    allow_words,
    deny_candidates,
    file_uses,
    match_words,
    parse_shell,
    path_arguments,
    shell_pattern,
)
from qwen_code.config import Settings, project_root
from qwen_code.tools.base import ToolError

if TYPE_CHECKING:
    from qwen_code.agent.events import ToolCall
    from qwen_code.tools.workspace import Workspace

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
_UNRESOLVABLE = (ToolError, OSError, ValueError, RuntimeError)
"""Outside the workspace, a NUL byte, `~nobody`: the tool itself refuses such a path."""
Bases = list[Path] | None
"""Where relative paths in a shell command start from (None: cannot be known)."""


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
        for part in _split_rule_list(raw) if split_commas else [raw]:
            rule = parse_rule(part)
            if rule is not None:
                parsed.append(rule)
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


def rule_fits_flag(rule: str) -> bool:
    """Whether `--allowed-tools RULE` reads back as this one rule: the flag's values are
    split on every comma, so a rule holding one must go into the settings instead."""
    return "," not in rule and "\n" not in rule


# --- path specifiers ---------------------------------------------------------------------

_GLOB_SEGMENT = re.compile(r"[*?]")


def path_matches(spec: str, path: Path, *, cwd: Path, root: Path, ignore_case: bool) -> bool:
    """Whether a resolved path, or a directory above it, matches a path specifier.

    `//abs/path` is absolute, `~/x` is in the home directory, `/x` is relative to the
    project root, `./x` and `x` to the working directory. `*` matches within one path
    segment, `**` any number of segments; dotfiles match like any other name. A rule
    naming a directory covers everything below it."""
    if not spec.strip():
        return False
    regex = _path_regex(spec.strip(), str(cwd), str(root), ignore_case)
    return any(regex.fullmatch(str(p)) for p in (path, *path.parents))


@lru_cache(maxsize=256)
def _path_regex(spec: str, cwd: str, root: str, ignore_case: bool) -> re.Pattern[str]:
    segments = _absolute(spec, cwd, root).split("/")[1:]
    fixed = next((i for i, s in enumerate(segments) if _GLOB_SEGMENT.search(s)), len(segments))
    base = os.path.realpath("/" + "/".join(segments[:fixed])).rstrip("/")
    parts = [re.escape(base)]
    for segment in segments[fixed:]:
        if segment == "**":
            parts.append("(?:/[^/]+)*")
        else:
            parts.append("/" + _segment_regex(segment))
    return re.compile("".join(parts) or "/", re.IGNORECASE if ignore_case else 0)


def _absolute(spec: str, cwd: str, root: str) -> str:
    if spec.startswith("//"):
        text = spec[1:]
    elif spec == "~" or spec.startswith("~/"):
        text = str(Path.home()) + spec[1:]
    elif spec.startswith("/"):
        text = root + spec
    else:
        text = cwd + "/" + spec
    return os.path.normpath(text)


def _segment_regex(segment: str) -> str:
    out = []
    for ch in segment:
        out.append("[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch))
    return "".join(out)


# --- protected paths ---------------------------------------------------------------------

_PROTECTED_DIRS = {
    ".git": "git runs the programs that .git/config and .git/hooks name (core.fsmonitor, hooks)",
    ".qwen": "qwen-code loads settings, commands and agents from .qwen",
    ".claude": "Claude Code loads settings and hooks from .claude",
    ".vscode": "the editor runs tasks and applies settings from .vscode",
}
_STARTUP_FILES = frozenset(
    [
        ".bashrc",
        ".bash_profile",
        ".bash_login",
        ".bash_logout",
        ".profile",
        ".zshrc",
        ".zprofile",
        ".zshenv",
        ".zlogin",
        ".zlogout",
    ]
)


def protected_why(path: Path, *, roots: Sequence[Path], home: Path | None) -> str | None:
    """Why writing the resolved `path` needs the user's own approval, or None.

    Names are compared case-insensitively and without trailing dots or spaces (what
    case-insensitive file systems treat as the same name)."""
    if home is not None:
        real_home = Path(os.path.realpath(home))
        if path == real_home or path.is_relative_to(real_home):
            return f"it is in the qwen-code home ({real_home}), which holds your settings"
    inside = [r for r in roots if path == r or path.is_relative_to(r)]
    parts = (
        path.relative_to(max(inside, key=lambda r: len(r.parts))).parts
        if inside
        else path.parts[1:]
    )
    names = [p.rstrip(". ").casefold() or p for p in parts]
    for name in names:
        if name in _PROTECTED_DIRS:
            return _PROTECTED_DIRS[name]
    last = names[-1] if names else ""
    if last == ".envrc":
        return "direnv runs .envrc when you enter its folder"
    if last in _STARTUP_FILES:
        return f"your shell runs {last} when it starts"
    if any(names[i : i + 2] == [".config", "fish"] for i in range(len(names) - 1)):
        return "fish runs its configuration when it starts"
    return None


# --- the policy --------------------------------------------------------------------------


@dataclass(slots=True)
class Permissions:
    """The session's rules, and what path rules and protected paths are resolved against.

    Built from settings and flags (`from_settings`); "always allow … this session"
    answers are added with `remember`. `workspace` and `home` (the qwen-code home) are
    filled in by the `ToolRunner` when not given."""

    allow: list[Rule] = field(default_factory=list)
    ask: list[Rule] = field(default_factory=list)
    deny: list[Rule] = field(default_factory=list)
    workspace: Workspace | None = None
    home: Path | None = None
    _project: Path | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, workspace: Workspace | None = None, home: Path | None = None
    ) -> Permissions:
        """`permissions.allow/ask/deny` plus the older `tools.allowed` and `--allowed-tools`
        (which `load_settings` merges into `settings.tools.allowed`)."""
        perms = settings.permissions
        return cls(
            allow=[
                *parse_rules(perms.allow, split_commas=False),
                *parse_rules(settings.tools.allowed),
            ],
            ask=parse_rules(perms.ask, split_commas=False),
            deny=parse_rules(perms.deny, split_commas=False),
            workspace=workspace,
            home=home,
        )

    def remember(self, rule: str) -> None:
        """Allow calls like one just approved for the rest of the session."""
        self.allow.extend(parse_rules([rule], split_commas=False))

    def extend(self, rules: Iterable[Rule]) -> None:
        """Add allow rules (what `runner.rules.extend(…)` did when the rules were a list)."""
        self.allow.extend(rules)

    # -- where things are --------------------------------------------------------------

    @property
    def cwd(self) -> Path:
        return self.workspace.root if self.workspace is not None else Path.cwd().resolve()

    @property
    def project_root(self) -> Path:
        if self._project is None:
            self._project = Path(os.path.realpath(project_root(self.cwd)))
        return self._project

    def resolve(self, raw: str, base: Path | None = None) -> Path | None:
        """A path as the tool would resolve it (symlinks followed), or as the shell would
        from `base`; outside the workspace too, since deny rules hold everywhere."""
        if self.workspace is not None and base is None:
            try:
                return self.workspace.resolve(raw)
            except _UNRESOLVABLE:
                pass
        try:
            return Path(os.path.realpath((base or self.cwd) / Path(raw).expanduser()))
        except _UNRESOLVABLE:
            return None

    def tool_path(self, call: ToolCall) -> Path | None:
        """The resolved path argument of a file tool (a directory tool's default: `.`)."""
        key = PATH_ARGUMENT.get(call.name)
        raw = call.arguments.get(key) if key else None
        if raw is None and key == "path":
            raw = "."
        return self.resolve(raw) if isinstance(raw, str) and raw.strip() else None

    def shell_cwd(self, call: ToolCall) -> Path:
        directory = call.arguments.get("directory")
        if isinstance(directory, str) and directory.strip():
            return self.resolve(directory) or self.cwd
        return self.cwd

    def covers(self, rule: Rule, path: Path, *, loose: bool) -> bool:
        """Whether a path rule (or a whole-tool rule) covers the resolved path."""
        if rule.whole_tool:
            return True
        return path_matches(
            rule.specifier or "", path, cwd=self.cwd, root=self.project_root, ignore_case=loose
        )

    def protected(self, call: ToolCall) -> str | None:
        """Why an edit tool's target is a protected path (the path, then why), or None.
        Resolved as the tool resolves it; a path the tool would refuse is not reported."""
        raw = call.arguments.get("file_path")
        if call.name not in EDIT_TOOLS or not isinstance(raw, str) or self.workspace is None:
            return None
        try:
            path = self.workspace.resolve(raw)
        except _UNRESOLVABLE:
            return None
        why = self.protected_path(path)
        return f"{self.workspace.display(path)} is a protected path: {why}" if why else None

    def protected_path(self, path: Path) -> str | None:
        roots = self.workspace.roots if self.workspace is not None else (self.cwd,)
        return protected_why(path, roots=roots, home=self.home)

    # -- deny and ask ------------------------------------------------------------------

    def match(self, tier: Tier, call: ToolCall) -> str | None:
        """Why a deny (or ask) rule covers the call, or None when none does."""
        rules = self.deny if tier == "deny" else self.ask
        if not rules:
            return None
        if call.name == SHELL_TOOL:
            return _ShellCheck(self, call, tier).run(rules)
        path = self.tool_path(call)
        for rule in rules:
            if rule.names(call.name) and self._tool_hit(rule, call, path):
                return f"{call.name} matches the {tier} rule {rule.raw}"
        return None

    def _tool_hit(self, rule: Rule, call: ToolCall, path: Path | None) -> bool:
        """A deny/ask rule against a tool other than the shell. A specifier this version
        cannot interpret for the tool (`WebFetch(domain:…)`) counts as matching."""
        if rule.whole_tool or call.name not in PATH_ARGUMENT:
            return True
        return path is not None and self.covers(rule, path, loose=True)

    # -- allow -------------------------------------------------------------------------

    def allows(self, call: ToolCall) -> bool:
        """Whether the allow rules cover the call (deny and ask rules come first)."""
        rules = [r for r in self.allow if r.names(call.name)]
        if not rules:
            return False
        if call.name == SHELL_TOOL:
            return _shell_allowed(self, rules, call)
        if any(r.whole_tool for r in rules):
            return True
        path = self.tool_path(call) if call.name in PATH_ARGUMENT else None
        return path is not None and any(self.covers(r, path, loose=False) for r in rules)


def _shell_allowed(perms: Permissions, rules: list[Rule], call: ToolCall) -> bool:
    """Every simple command must match an allow rule, and nothing in the command may do
    more than its words say; or the whole command equals a rule's exact command."""
    patterns = [shell_pattern(r.specifier, r.legacy) for r in rules]
    if any(p.any for p in patterns):
        return True
    parsed = parse_shell(str(call.arguments.get("command", "")))
    if not parsed.ok or not parsed.commands:
        return False
    if any(p.shape is not None and p.shape == parsed.shape for p in patterns):
        return True
    if parsed.problems:
        return False
    token_sets = [p.tokens for p in patterns if p.tokens is not None]
    bases = _shell_bases(perms, parsed, perms.shell_cwd(call))
    for command in parsed.commands:
        words = allow_words(command)
        if words is None or _writes_protected(perms, words, bases):
            return False
        if not any(match_words(tokens, words, loose=False) for tokens in token_sets):
            return False
    return True


def _writes_protected(perms: Permissions, words: tuple[Word, ...], bases: Bases) -> bool:
    """A file-writing program (cp, mv, tee, …) named a protected path: not for allow rules."""
    if "write" not in file_uses(words[0].text):
        return False
    for arg in path_arguments(words):
        if not arg.literal:
            continue
        if bases is None and not arg.text.startswith("/"):
            return True
        for base in bases or [perms.cwd]:
            path = perms.resolve(arg.text, base)
            if path is not None and perms.protected_path(path):
                return True
    return False


def _shell_bases(perms: Permissions, parsed: ParsedShell, cwd: Path) -> list[Path] | None:
    """The directories relative paths in the command may be relative to: the working
    directory and wherever a `cd`/`pushd` in it goes; None when that cannot be known."""
    bases = [cwd]
    for command in parsed.commands:
        words = command.words
        if not words or not words[0].literal or words[0].text not in ("cd", "pushd"):
            continue
        targets = [w for w in words[1:] if not (w.literal and w.text.startswith("-"))]
        if targets and (not targets[0].literal or targets[0].text == "-"):
            return None
        target = targets[0].text if targets else str(Path.home())
        moved = [perms.resolve(target, base) for base in bases]
        bases = list(dict.fromkeys([*bases, *(p for p in moved if p is not None)]))
        if len(bases) > 8:
            return None
    return bases


@dataclass(slots=True)
class _ShellCheck:
    """Deny (or ask) rules against one shell command: shell rules against every simple
    command anywhere in it, path rules against the paths file commands and redirections
    use. What cannot be known (a computed program or path) counts as a match."""

    perms: Permissions
    call: ToolCall
    tier: Tier

    def run(self, rules: list[Rule]) -> str | None:
        shell = [r for r in rules if r.names(SHELL_TOOL)]
        reads = [r for r in rules if any(r.names(t) for t in READ_TOOLS)]
        writes = [r for r in rules if any(r.names(t) for t in EDIT_TOOLS)]
        if not (shell or reads or writes):
            return None
        parsed = parse_shell(str(self.call.arguments.get("command", "")))
        if not parsed.ok:
            rule = (shell or reads or writes)[0]
            return (
                f"the command could not be parsed, so it cannot be checked against the "
                f"{self.tier} rule {rule.raw}; rewrite it in plain shell syntax"
            )
        return self.shell_rules(shell, parsed) or self.path_rules(reads, writes, parsed)

    def shell_rules(self, rules: list[Rule], parsed: ParsedShell) -> str | None:
        for rule in rules:
            pattern = shell_pattern(rule.specifier, True)
            hit = _pattern_hit(pattern, parsed)
            if hit is not None:
                return f"`{hit}` matches the {self.tier} rule {rule.raw}"
        return None

    def path_rules(self, reads: list[Rule], writes: list[Rule], parsed: ParsedShell) -> str | None:
        if not (reads or writes):
            return None
        bases = _shell_bases(self.perms, parsed, self.perms.shell_cwd(self.call))
        for redirect in parsed.redirects:
            hit = self.redirect(redirect, reads, writes, bases)
            if hit:
                return hit
        for command in parsed.commands:
            for words in deny_candidates(command):
                hit = self.file_command(words, reads, writes, bases)
                if hit:
                    return hit
        return None

    def redirect(
        self, redirect: Redirect, reads: list[Rule], writes: list[Rule], bases: Bases
    ) -> str | None:
        rules = reads if redirect.kind == "read" else writes
        verb = "reads" if redirect.kind == "read" else "writes"
        return self.argument(redirect.target, rules, bases, f"a redirection {verb}")

    def file_command(
        self,
        words: tuple[Word, ...],
        reads: list[Rule],
        writes: list[Rule],
        bases: Bases,
    ) -> str | None:
        if not words:
            return None
        name = words[0]
        if not name.literal:
            rule = (reads or writes)[0]
            return (
                f"the program {name.text!r} is only known when the command runs, so it "
                f"cannot be checked against the {self.tier} rule {rule.raw}"
            )
        for use in file_uses(name.text):
            rules = reads if use == "read" else writes
            verb = "reads" if use == "read" else "writes"
            for arg in path_arguments(words) if rules else ():
                hit = self.argument(arg, rules, bases, f"{name.text} {verb}")
                if hit:
                    return hit
        return None

    def argument(self, arg: Word, rules: list[Rule], bases: Bases, what: str) -> str | None:
        if not rules:
            return None
        paths = _candidate_paths(arg, bases)
        if paths is None:
            return (
                f"{what} {arg.text!r}, which is only known when the command runs, so it "
                f"cannot be checked against the {self.tier} rule {rules[0].raw}; use plain paths"
            )
        for base, text in paths:
            path = self.perms.resolve(text, base)
            rule = next((r for r in rules if path and self.perms.covers(r, path, loose=True)), None)
            if rule is not None:
                return f"{what} {text}, which the {self.tier} rule {rule.raw} covers"
        return None


def _pattern_hit(pattern: ShellPattern, parsed: ParsedShell) -> str | None:
    """The first simple command a deny/ask shell pattern matches, shown as words."""
    if pattern.any or (pattern.shape is not None and pattern.shape == parsed.shape):
        return "the command"
    if pattern.tokens is None:
        return None
    for command in parsed.commands:
        for words in deny_candidates(command):
            if match_words(pattern.tokens, words, loose=True):
                return " ".join(w.text for w in words) or "(a script computed when it runs)"
    return None


def _candidate_paths(arg: Word, bases: Bases) -> list[tuple[Path, str]] | None:
    """(base, path) pairs an argument may name; None when that cannot be known."""
    if not arg.literal and arg.glob is None:
        return None
    if bases is None and not arg.text.startswith("/"):
        return None
    pairs: list[tuple[Path, str]] = []
    for base in bases or [Path("/")]:
        pairs.append((base, arg.text))
        if not arg.literal and arg.glob is not None:
            pairs.extend((base, str(m)) for m in _expand(base, arg.glob))
    return pairs


def _expand(base: Path, pattern: str) -> list[Path]:
    """What a glob names (at most 1000; `**` is `*`, as in bash without globstar). Hidden
    names match too: more candidates only make a deny rule stricter."""
    pattern = pattern.replace("**", "*")
    start = Path("/") if pattern.startswith("/") else base
    try:
        return list(itertools.islice(start.glob(pattern.lstrip("/")), 1000))
    except (OSError, ValueError, NotImplementedError):
        return []


# --- the rule an "always allow" answer saves --------------------------------------------

_SAFE_PREFIXES: tuple[tuple[str, ...], ...] = (
    ("ls",),
    ("pwd",),
    ("echo",),
    ("git", "status"),
    ("npm", "test"),
    ("pnpm", "test"),
    ("yarn", "test"),
    ("pytest",),
    ("python", "-m", "pytest"),
    ("python3", "-m", "pytest"),
    ("cargo", "test"),
    ("cargo", "check"),
    ("cargo", "build"),
    ("go", "test"),
    ("go", "build"),
    ("go", "vet"),
    ("make", "test"),
)
"""Commands whose every form only lists, prints or runs the project's own tests or build:
for these an "always" answer covers any arguments (`Bash(git status *)`)."""


def suggest_rule(call: ToolCall) -> str:
    """The allow rule an "always allow" answer saves: never broader than the call shown.

    For the shell: `Bash(<prefix> *)` when the command is one simple command of a
    read-only or test-running kind (`git status --short` → `Bash(git status *)`), else
    the exact command (`Bash(rm -rf build && ls -la)`, which matches only itself); ""
    when no rule can say "exactly this" (a command with an unquoted `*`). Other tools:
    the tool's name."""
    if call.name != SHELL_TOOL:
        return call.name
    command = str(call.arguments.get("command", "")).strip()
    if not command:
        return ""
    parsed = parse_shell(command)
    prefix = _safe_prefix(parsed)
    candidates = [f"Bash({' '.join(prefix)} *)"] if prefix else []
    if not shell_pattern(command).has_wildcard:
        candidates.append(f"Bash({command})")
    for rule in candidates:
        parsed_rule = parse_rule(rule)
        if parsed_rule is not None and Permissions(allow=[parsed_rule]).allows(call):
            return rule
    return ""


def _safe_prefix(parsed: ParsedShell) -> tuple[str, ...] | None:
    if not parsed.ok or parsed.problems or len(parsed.commands) != 1:
        return None
    command = parsed.commands[0]
    words = tuple(w.text if w.literal else None for w in command.words)
    if command.assignments:
        return None
    return next((p for p in _SAFE_PREFIXES if words[: len(p)] == p), None)
