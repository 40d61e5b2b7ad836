"""The session's permission policy: the `Permissions` object the approval policy
(`approval.decide`) asks three questions (does a deny rule match, does an ask rule match,
do the allow rules cover the call), and `suggest_rule`, the rule an "always allow" answer
saves.

Rules are parsed in `permission_rules`; path specifiers and protected paths are
`path_rules`'; shell commands are checked against rules in `shell_rules`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from qwen_code.agent.path_rules import path_matches, protected_why
from qwen_code.agent.permission_rules import (
    EDIT_TOOLS,
    PATH_ARGUMENT,
    SHELL_TOOL,
    Rule,
    Tier,
    parse_rule,
    parse_rules,
)
from qwen_code.agent.shell_match import shell_pattern
from qwen_code.agent.shell_parse import ParsedShell, parse_shell
from qwen_code.agent.shell_rules import ShellCheck, shell_allowed
from qwen_code.config import Settings, project_root
from qwen_code.tools.base import ToolError

if TYPE_CHECKING:
    from qwen_code.agent.events import ToolCall
    from qwen_code.tools.workspace import Workspace

_UNRESOLVABLE = (ToolError, OSError, ValueError, RuntimeError)
"""Outside the workspace, a NUL byte, `~nobody`: the tool itself refuses such a path."""


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
        """The workspace root. A bare policy without a workspace (as tests build one; a
        session's runner always fills it in) resolves against the process's directory."""
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
            return ShellCheck(self, call, tier).run(rules)
        path = self.tool_path(call)
        for rule in rules:
            if rule.names(call.name) and self._tool_hit(rule, call, path):
                return f"{call.name} matches the {tier} rule {rule.raw}"
        return None

    def _tool_hit(self, rule: Rule, call: ToolCall, path: Path | None) -> bool:
        """A deny/ask rule against a tool other than the shell. A specifier this version
        cannot interpret for the tool counts as matching."""
        if rule.whole_tool:
            return True
        if call.name in URL_ARGUMENT:
            return domain_covers(rule, call, loose=True)
        if call.name not in PATH_ARGUMENT:
            return True
        return path is not None and self.covers(rule, path, loose=True)

    # -- allow -------------------------------------------------------------------------

    def allows(self, call: ToolCall) -> bool:
        """Whether the allow rules cover the call (deny and ask rules come first)."""
        rules = [r for r in self.allow if r.names(call.name)]
        if not rules:
            return False
        if call.name == SHELL_TOOL:
            return shell_allowed(self, rules, call)
        if any(r.whole_tool for r in rules):
            return True
        if call.name in URL_ARGUMENT:
            return any(domain_covers(r, call, loose=False) for r in rules)
        path = self.tool_path(call) if call.name in PATH_ARGUMENT else None
        return path is not None and any(self.covers(r, path, loose=False) for r in rules)


# --- web tools: `WebFetch(domain:docs.python.org)` -----------------------------------

URL_ARGUMENT = {"web_fetch": "url"}
"""Tools whose rules name a domain, and the argument that holds the URL."""


def url_host(url: str) -> str:
    """The host of a URL, lower case ("" when there is none)."""
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url.strip() if "://" in url else f"https://{url.strip()}").hostname
    except ValueError:
        return ""
    return (host or "").rstrip(".").lower()


def domain_covers(rule: Rule, call: ToolCall, *, loose: bool) -> bool:
    """Whether `domain:HOST` covers the call's URL: that host or a subdomain of it. A
    specifier of another form matches only when `loose` (deny and ask rules err on the
    side of matching)."""
    spec = (rule.specifier or "").strip()
    if not spec.startswith("domain:"):
        return loose
    want = spec[len("domain:") :].strip().rstrip(".").lower()
    host = url_host(str(call.arguments.get(URL_ARGUMENT[call.name], "")))
    if not want or not host:
        return loose
    want = want.removeprefix("*.")
    return host == want or host.endswith("." + want)


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
    if call.name in URL_ARGUMENT:
        host = url_host(str(call.arguments.get(URL_ARGUMENT[call.name], "")))
        return f"WebFetch(domain:{host})" if host else call.name
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
