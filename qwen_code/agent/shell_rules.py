"""Allow, ask and deny rules applied to one shell command (parsed, see `shell_parse`).

Allow matching is narrow (`shell_allowed`: every simple command must be covered, and
constructs that can do something else than the words say never are); deny and ask
matching is wide (`ShellCheck`: any simple command anywhere, past wrappers, and the paths
file commands and redirections use; unknowable words count as matching). Paths are
resolved and protected paths judged by the `Permissions` object passed in.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qwen_code.agent.permission_rules import EDIT_TOOLS, READ_TOOLS, SHELL_TOOL, Rule, Tier
from qwen_code.agent.shell_match import (
    ShellPattern,
    allow_words,
    deny_candidates,
    file_uses,
    match_words,
    path_arguments,
    shell_pattern,
)
from qwen_code.agent.shell_parse import ParsedShell, Redirect, Word, parse_shell

if TYPE_CHECKING:
    from qwen_code.agent.events import ToolCall
    from qwen_code.agent.permissions import Permissions

Bases = list[Path] | None
"""Where relative paths in a shell command start from (None: cannot be known)."""


def shell_allowed(perms: Permissions, rules: list[Rule], call: ToolCall) -> bool:
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
class ShellCheck:
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
            matches = _expand(base, arg.glob)
            if matches is None:
                return None  # cannot tell what it names: the deny check fails closed
            pairs.extend((base, str(m)) for m in matches)
    return pairs


def _expand(base: Path, pattern: str) -> list[Path] | None:
    """What a glob names (at most 1000; `**` is `*`, as in bash without globstar). Hidden
    names match too: more candidates only make a deny rule stricter. None when the glob
    cannot be expanded (unreadable folder; `Path.glob` raises NotImplementedError for
    patterns it does not take, such as an empty one)."""
    pattern = pattern.replace("**", "*")
    start = Path("/") if pattern.startswith("/") else base
    try:
        return list(itertools.islice(start.glob(pattern.lstrip("/")), 1000))
    except (OSError, ValueError, NotImplementedError):
        return None
