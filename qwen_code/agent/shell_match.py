"""Matching primitives for shell permission rules, on commands `shell_parse` parsed.

Compiled shell specifiers (`shell_pattern`, `match_words`), which words an allow rule is
matched against (`allow_words`), which word lists a deny rule is tried on
(`deny_candidates`: past `sudo`, `xargs`, into `bash -c '…'`), and which programs read or
write their path arguments (`file_uses`, `path_arguments`). Nothing here decides;
`qwen_code.agent.permissions` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from qwen_code.agent.shell_parse import ParsedShell, SimpleCommand, Word, parse_shell

# --- shell specifiers --------------------------------------------------------------------


class _Star:
    """A `*` standing alone in a specifier: any number of words, none included."""

    def __repr__(self) -> str:
        return "*"


STAR = _Star()
Token = str | re.Pattern[str] | _Star


@dataclass(frozen=True, slots=True)
class ShellPattern:
    """A compiled shell specifier: everything, one simple command's words (literal words,
    in-word globs and `*`), or one exact command (its syntax tree), or nothing."""

    any: bool = False
    tokens: tuple[Token, ...] | None = None
    shape: tuple[Any, ...] | None = None

    @property
    def has_wildcard(self) -> bool:
        return self.any or any(not isinstance(t, str) for t in self.tokens or ())


@lru_cache(maxsize=256)
def shell_pattern(specifier: str | None, prefix_words: bool = False) -> ShellPattern:
    """Compile a shell specifier. `git *` is git followed by anything or nothing (a word
    boundary: not `gitk`); `npm run test:*` is the prefix `npm run test`; a star inside a
    word matches any characters in that word. Without a star the specifier is the exact
    command (`Bash(npm run build)`), or a word prefix with `prefix_words` (the legacy
    spellings, and deny/ask rules). A specifier holding more than one command,
    redirections or expansions matches only that same command, compared as parsed."""
    if specifier is None or specifier.strip() == "*":
        return ShellPattern(any=True)
    spec = specifier.strip()
    prefix = spec.endswith(":*")
    spec = spec[:-2].rstrip() if prefix else spec
    parsed = parse_shell(spec)
    if not parsed.ok or not parsed.commands:
        return ShellPattern()
    tokens = _spec_tokens(parsed)
    if tokens is None:
        return ShellPattern(shape=parsed.shape)
    if prefix or (prefix_words and all(isinstance(t, str) for t in tokens)):
        tokens = (*tokens, STAR)
    return ShellPattern(tokens=tokens)


def _spec_tokens(parsed: ParsedShell) -> tuple[Token, ...] | None:
    if parsed.problems or len(parsed.commands) != 1 or parsed.commands[0].assignments:
        return None
    tokens: list[Token] = []
    for word in parsed.commands[0].words:
        if word.literal:
            tokens.append(word.text)
        elif word.glob == "*":
            tokens.append(STAR)
        elif word.glob is not None:
            tokens.append(_star_regex(word.glob))
        else:
            return None
    return tuple(tokens)


def _star_regex(glob: str) -> re.Pattern[str]:
    """A rule word with stars: `*` is any characters, everything else literal (the glob
    form escapes quoted characters as `[c]`)."""
    out, i = [], 0
    while i < len(glob):
        if glob[i] == "[" and i + 2 < len(glob) and glob[i + 2] == "]":
            out.append(re.escape(glob[i + 1]))
            i += 3
            continue
        out.append(".*" if glob[i] == "*" else re.escape(glob[i]))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def match_words(tokens: tuple[Token, ...], words: tuple[Word, ...], *, loose: bool) -> bool:
    """Whether a simple command's words match a compiled specifier.

    Strict (allow): a word whose value the shell computes (`$X`, a glob) matches only a
    standalone `*`. Loose (deny, ask): such a word may stand for any number of words, and
    the program is also compared by its base name (`/bin/rm` is `rm`)."""
    quick = _prefix_match(tokens, words, loose=loose)
    if quick is not None:
        return quick
    n, m = len(tokens), len(words)
    done = [[False] * (m + 1) for _ in range(n + 1)]  # done[i][j]: tokens[i:] ~ words[j:]
    done[n][m] = True
    for j in range(m - 1, -1, -1):
        done[n][j] = loose and not words[j].literal and done[n][j + 1]
    for i in range(n - 1, -1, -1):
        token = tokens[i]
        done[i][m] = isinstance(token, _Star) and done[i + 1][m]
        for j in range(m - 1, -1, -1):
            done[i][j] = _step(token, words[j], done, i, j, loose=loose)
    return done[0][0]


def _prefix_match(
    tokens: tuple[Token, ...], words: tuple[Word, ...], *, loose: bool
) -> bool | None:
    """The common case without the table: literal tokens, at most one `*` at the end, and
    literal words where they meet. None when the general match is needed."""
    star = bool(tokens) and isinstance(tokens[-1], _Star)
    head = tokens[:-1] if star else tokens
    if any(isinstance(t, _Star) for t in head) or len(words) < len(head):
        return None if any(isinstance(t, _Star) for t in head) or loose else False
    if not all(w.literal for w in words[: len(head)]):
        return None
    if not star and len(words) != len(head):
        return None if loose else False
    return all(
        _word_matches(t, w.text, loose and j == 0)  # type: ignore[arg-type]
        for j, (t, w) in enumerate(zip(head, words, strict=False))
    )


def _step(token: Token, word: Word, done: list[list[bool]], i: int, j: int, *, loose: bool) -> bool:
    if isinstance(token, _Star):
        return done[i + 1][j] or done[i][j + 1]
    if not word.literal:
        return loose and (done[i + 1][j + 1] or done[i + 1][j] or done[i][j + 1])
    return done[i + 1][j + 1] and _word_matches(token, word.text, loose and j == 0)


def _word_matches(token: str | re.Pattern[str], text: str, by_name: bool) -> bool:
    candidates = (text, text.rsplit("/", 1)[-1]) if by_name else (text,)
    if isinstance(token, str):
        return token in candidates
    return any(token.fullmatch(c) for c in candidates)


# --- what a simple command may and may not do --------------------------------------------


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_EXEC_BUILTINS = frozenset(["eval", "exec", "source", "."])
"""Programs an allow rule never covers: they run other code than their words say."""
_PASS_THROUGH = frozenset(["command", "builtin", "time"])
"""Builtins that run the builtin named after them (`command eval …`)."""
_DANGEROUS_VARS = _names(
    """PATH BASH_ENV ENV IFS PS1 PS2 PS4 PROMPT_COMMAND SHELLOPTS BASHOPTS CDPATH GLOBIGNORE
    HOME XDG_CONFIG_HOME ZDOTDIR PYTHONPATH PYTHONSTARTUP PYTHONHOME PYTHONUSERBASE
    PYTHONINSPECT PYTHONBREAKPOINT NODE_OPTIONS NODE_PATH PERL5LIB PERL5OPT PERLLIB RUBYOPT
    RUBYLIB JAVA_TOOL_OPTIONS _JAVA_OPTIONS JDK_JAVA_OPTIONS EDITOR VISUAL PAGER MANPAGER
    LESSOPEN LESSCLOSE SSH_ASKPASS SUDO_ASKPASS BROWSER SHELL MAKEFLAGS MFLAGS GOFLAGS
    RUSTC_WRAPPER RUSTC RUSTDOC CC CXX PYTEST_ADDOPTS PYTEST_PLUGINS TMPDIR"""
)
_DANGEROUS_PREFIXES = (
    "LD_",
    "DYLD_",
    "GIT_",
    "NPM_CONFIG_",
    "YARN_",
    "PNPM_",
    "BUN_",
    "BASH_FUNC_",
    "CARGO_",
    "PIP_",
    "UV_",
    "POETRY_",
    "COMPOSER_",
    "DOCKER_",
)
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=")
_WRAPPERS = _names(
    """sudo doas env command builtin exec nohup nice ionice time timeout stdbuf xargs find
    watch setsid flock chrt taskset unbuffer parallel strace ltrace"""
)
"""Programs that run another program named in their arguments (deny looks past them)."""
_MAX_WRAPPED = 64
"""How far into a wrapper's arguments deny rules look for the program it runs."""
_SHELLS = frozenset(["bash", "sh", "zsh", "dash", "ksh", "mksh", "ash", "busybox"])


def dangerous_variable(name: str) -> bool:
    """An environment variable that changes which code runs (`PATH`, `LD_PRELOAD`, …)."""
    upper = name.upper()
    return upper in _DANGEROUS_VARS or upper.startswith(_DANGEROUS_PREFIXES)


def allow_words(command: SimpleCommand) -> tuple[Word, ...] | None:
    """The words an allow rule is matched against, or None when no allow rule may cover
    this command: it sets a variable that changes what runs, its program is computed
    (`$X args`) or runs other code (`eval`, `exec`, `source`, `.`)."""
    if any(dangerous_variable(name) for name, _ in command.assignments):
        return None
    words = command.words
    if words and words[0].literal and words[0].text == "env":
        words = _strip_env(words)
        if words is None:
            return None
    if not words or not words[0].literal:
        return None
    if words[0].text in _EXEC_BUILTINS:
        return None
    if words[0].text in _PASS_THROUGH and any(w.text in _EXEC_BUILTINS for w in words[1:]):
        return None
    return words


def _strip_env(words: tuple[Word, ...]) -> tuple[Word, ...] | None:
    index = 1
    while index < len(words):
        word = words[index]
        match = _ASSIGNMENT.match(word.text)
        if not word.literal or word.text.startswith("-"):
            return None
        if not match:
            break
        if dangerous_variable(match.group(1)):
            return None
        index += 1
    return words[index:] or words[:1]


_UNKNOWN = (Word("", literal=False),)
"""The candidate for a command that cannot be known: it matches any loose pattern."""


def deny_candidates(command: SimpleCommand, depth: int = 0) -> Iterator[tuple[Word, ...]]:
    """Word lists a deny or ask rule is tried on: the command, what a wrapper (`sudo`,
    `env`, `xargs`, `find -exec`, …) runs, and the commands of a `bash -c` / `eval`
    script. A script whose text is computed yields one unknown word, which matches any
    loose pattern."""
    words = command.words
    yield words
    if not words or not words[0].literal:
        return
    name = words[0].text.rsplit("/", 1)[-1]
    if name in _WRAPPERS:
        yield from _wrapped(words)
    script = _inline_script(name, words)
    if script is not None:
        yield from _script_candidates(script, depth)


def _wrapped(words: tuple[Word, ...]) -> Iterator[tuple[Word, ...]]:
    """What a wrapper may run: its words from every start on (where the wrapped program
    begins depends on the wrapper's options)."""
    for start in range(1, min(len(words), _MAX_WRAPPED)):
        yield words[start:]
    if len(words) > _MAX_WRAPPED:  # too long to try every start: assume the worst
        yield _UNKNOWN


def _script_candidates(script: Word, depth: int) -> Iterator[tuple[Word, ...]]:
    """The candidates of each command of an inline script; unknown when its text is
    computed, nested too deep or does not parse."""
    if not script.literal or depth >= 3:
        yield _UNKNOWN
        return
    parsed = parse_shell(script.text)
    if not parsed.ok:
        yield _UNKNOWN
        return
    for inner in parsed.commands:
        yield from deny_candidates(inner, depth + 1)


def _inline_script(name: str, words: tuple[Word, ...]) -> Word | None:
    """The script text of `eval …` or `bash -c '…'` (a computed one is not literal)."""
    if name == "eval" and len(words) > 1:
        literal = all(w.literal for w in words[1:])
        return Word(" ".join(w.text for w in words[1:]), literal)
    if name not in _SHELLS:
        return None
    for index, word in enumerate(words[1:-1], start=1):
        if not word.literal:
            return Word("", literal=False)
        if word.text.startswith("-") and not word.text.startswith("--") and "c" in word.text:
            return words[index + 1]
    return None


# --- file commands -----------------------------------------------------------------------

_READERS = _names(
    """cat tac nl head tail less more most bat batcat grep egrep fgrep rg ag ack sed awk gawk
    mawk cut sort uniq wc diff cmp comm paste join strings xxd od hexdump base64 base32 md5sum
    sha1sum sha256sum sha512sum cksum file jq yq source . python python3 node deno bun bash
    sh zsh perl ruby php cp mv ln tar zip gzip bzip2 xz scp rsync iconv fold fmt column
    split expand dd vi vim nvim nano emacs open xdg-open curl wget"""
)
_WRITERS = _names(
    """cp mv rm rmdir tee touch chmod chown chgrp ln sed truncate mkdir install dd rsync tar
    unzip patch shred split perl vi vim nvim nano emacs curl wget"""
)
FileUse = Literal["read", "write"]


def file_uses(name: str) -> tuple[FileUse, ...]:
    """How a program treats its path arguments, as far as deny rules on paths care."""
    uses: list[FileUse] = []
    base = name.rsplit("/", 1)[-1]
    if base in _READERS or re.fullmatch(r"python[\d.]*|node\d*", base):
        uses.append("read")
    if base in _WRITERS:
        uses.append("write")
    return tuple(uses)


def path_arguments(words: tuple[Word, ...]) -> Iterator[Word]:
    """The arguments that may be paths: not options (but the value of `--opt=value` and
    `key=value` is), everything after `--`."""
    options = True
    for word in words[1:]:
        if options and word.literal and word.text == "--":
            options = False
            continue
        if options and word.literal and word.text.startswith("-"):
            if "=" in word.text:
                yield Word(word.text.split("=", 1)[1])
            continue
        if word.literal and "=" in word.text and not word.text.startswith(("/", ".")):
            yield Word(word.text.split("=", 1)[1])
        yield word
