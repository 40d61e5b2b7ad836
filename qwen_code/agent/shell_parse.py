"""Shell commands as the permission rules see them: parsed with tree-sitter-bash.

`parse_shell` turns a command line into every simple command it runs (anywhere: in
pipelines, lists, `$( )`, `<( )`, subshells, functions), each as unquoted words, plus the
redirections, and a list of the constructs that keep a command from matching an allow
rule (substitutions, subshells, function definitions, control flow, file redirections,
assignments, anything the parser flagged or this module does not know).

The second half holds the matching primitives: compiled shell specifiers
(`shell_pattern`, `match_words`), which words an allow rule is matched against
(`allow_words`), which word lists a deny rule is tried on (`deny_candidates`: past
`sudo`, `xargs`, into `bash -c '…'`), and which programs read or write their path
arguments (`file_uses`, `path_arguments`). Nothing here decides;
`qwen_code.agent.permissions` does. tree-sitter is imported on the first parse only, so
start-up (`qwen-code --help`) never loads it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

Node = Any
"""A `tree_sitter.Node` (typed loosely: tree-sitter is imported lazily)."""

RedirectKind = Literal["read", "write"]


@dataclass(frozen=True, slots=True)
class Word:
    """One shell word after quote removal.

    `literal` is False when the word holds an unquoted expansion (`$X`, `$(…)`, a glob
    character, `~user`, a brace expansion, `$'…'`): its value is then only known when the
    shell runs, so it may match a rule only through a `*` wildcard. `glob` is the word as
    a glob pattern (quoted parts escaped) when globbing is its only expansion."""

    text: str
    literal: bool = True
    glob: str | None = None


@dataclass(frozen=True, slots=True)
class Redirect:
    """A redirection to or from a file (`> f`, `>> f`, `&> f`, `< f`, `>& f`)."""

    kind: RedirectKind
    target: Word


@dataclass(frozen=True, slots=True)
class SimpleCommand:
    """A command name with its arguments, and the assignments before it (`A=1 cmd`)."""

    words: tuple[Word, ...]
    assignments: tuple[tuple[str, Word], ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedShell:
    """What `parse_shell` found. `ok` is False when the parser hit a syntax error (or a
    missing token): then nothing else can be trusted."""

    ok: bool
    commands: tuple[SimpleCommand, ...] = ()
    problems: tuple[str, ...] = ()
    """Why the command as a whole cannot match allow rules (empty when it can)."""
    redirects: tuple[Redirect, ...] = ()
    """Every file redirection anywhere in the command."""
    shape: tuple[Any, ...] = ()
    """The syntax tree without comments or layout, to compare two commands exactly."""


_DEV_OK = frozenset(["/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"])
_CONTAINERS = frozenset(
    ["program", "list", "pipeline", "negated_command", "compound_statement", "comment"]
)
_PROBLEMS: dict[str, str] = {
    "command_substitution": "command substitution",
    "process_substitution": "process substitution",
    "subshell": "a subshell",
    "function_definition": "a function definition",
    "if_statement": "control flow",
    "while_statement": "control flow",
    "for_statement": "control flow",
    "c_style_for_statement": "control flow",
    "case_statement": "control flow",
    "test_command": "a [[ … ]] test",
    "declaration_command": "a declaration (export, declare, local)",
    "unset_command": "unset",
    "variable_assignment": "a variable assignment",
    "arithmetic_expansion": "arithmetic expansion",
}
_WORD_TYPES = frozenset(
    [
        "word",
        "number",
        "string",
        "raw_string",
        "ansi_c_string",
        "translated_string",
        "concatenation",
        "simple_expansion",
        "expansion",
        "command_substitution",
        "process_substitution",
        "arithmetic_expansion",
        "brace_expression",
    ]
)
_REDIRECTS = frozenset(["file_redirect", "heredoc_redirect", "herestring_redirect"])
_GLOB_CHARS = frozenset("*?[")
_DQ_ESCAPES = frozenset('"\\$`')


@lru_cache(maxsize=1)
def _parser() -> Any:
    import tree_sitter
    import tree_sitter_bash

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))


@lru_cache(maxsize=512)
def parse_shell(command: str) -> ParsedShell:
    """Parse one command line (cached: the same command is often checked several times)."""
    try:
        tree = _parser().parse(command.encode("utf-8", "surrogateescape"))
    except (ValueError, UnicodeError):
        return ParsedShell(ok=False)
    root = tree.root_node
    if root.has_error:
        return ParsedShell(ok=False)
    walker = _Walker()
    try:
        walker.visit(root)
        shape = _shape(root)
    except RecursionError:  # absurdly deep nesting: treat as unparseable
        return ParsedShell(ok=False)
    return ParsedShell(
        ok=True,
        commands=tuple(walker.commands),
        problems=tuple(dict.fromkeys(walker.problems)),
        redirects=tuple(walker.redirects),
        shape=shape,
    )


def _text(node: Node) -> str:
    return bytes(node.text or b"").decode("utf-8", "surrogateescape")


def _shape(node: Node) -> tuple[Any, ...]:
    children = [c for c in node.children if c.type != "comment"]
    if not children:
        return (node.type, _text(node))
    return (node.type, *(_shape(c) for c in children))


@dataclass(slots=True)
class _Walker:
    """Collects simple commands, redirections and problems from a syntax tree."""

    commands: list[SimpleCommand] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)

    def visit(self, node: Node) -> None:
        kind = node.type
        if kind in _CONTAINERS:
            self.visit_children(node)
        elif kind == "command":
            self.command(node, ())
        elif kind == "redirected_statement":
            self.redirected(node)
        elif kind in _REDIRECTS:
            self.redirect(node)
        elif kind == "expansion":
            self.expansion(node)
        elif kind in _PROBLEMS:
            self.problems.append(_PROBLEMS[kind])
            self.visit_children(node)
        elif node.is_named and kind not in _WORD_TYPES and kind not in _LEAVES:
            self.problems.append(f"unsupported shell syntax ({kind})")
            self.visit_children(node)
        else:
            self.visit_children(node)

    def visit_children(self, node: Node) -> None:
        for child in node.named_children:
            self.visit(child)

    def expansion(self, node: Node) -> None:
        """`${x:=v}` assigns and `${x@P}` runs prompt expansion: never plain reads."""
        text = _text(node)
        if "=" in text or "@" in text:
            self.problems.append(f"the expansion {text}")
        self.visit_children(node)

    def redirected(self, node: Node) -> None:
        body, extra = None, []
        for child in node.named_children:
            if child.type in _REDIRECTS:
                extra.extend(self.redirect(child))
            elif body is None:
                body = child
            else:
                self.problems.append(f"unsupported shell syntax ({child.type})")
                self.visit(child)
        if body is not None and body.type == "command":
            self.command(body, tuple(extra))
            return
        if extra:  # words after a redirection target belong to the command: none here
            self.problems.append("words after a redirection")
        if body is not None:
            self.visit(body)

    def redirect(self, node: Node) -> list[Word]:
        """Record a redirection; returns the words after its target (the command's)."""
        operator, words, extra = "", [], []
        for child in node.children:
            if child.type in _REDIRECTS:
                extra.extend(self.redirect(child))
            elif child.type in _WORD_TYPES:
                self.visit(child)
                words.append(child)
            elif not child.is_named:
                operator = operator or child.type
            else:
                self.visit(child)
        if node.type == "file_redirect":
            self._file_redirect(operator, words[:1])
            extra = [*map(decode_word, words[1:]), *extra]
        return extra

    def _file_redirect(self, operator: str, target: list[Node]) -> None:
        if not target or (operator in (">&", "<&") and _is_fd(target[0])):
            return  # 2>&1, >&-, <&0: descriptors, no file
        word = decode_word(target[0])
        if word.literal and word.text in _DEV_OK:
            return
        kind: RedirectKind = "read" if operator in ("<", "<&") else "write"
        self.redirects.append(Redirect(kind, word))
        self.problems.append("a redirection to a file" if kind == "write" else "input from a file")

    def command(self, node: Node, extra: tuple[Word, ...]) -> None:
        assignments: list[tuple[str, Word]] = []
        words: list[Word] = []
        for child in node.named_children:
            if child.type == "variable_assignment":
                assignments.append(self.assignment(child))
            elif child.type in _REDIRECTS:
                words.extend(self.redirect(child))
            elif child.type == "command_name":
                self.visit_children(child)
                words.extend(decode_word(c) for c in child.named_children[:1])
            elif child.type in _WORD_TYPES:
                self.visit(child)
                words.append(decode_word(child))
            else:  # not understood: flagged by visit(), and a word of unknown value
                self.visit(child)
                words.append(Word(_text(child), literal=False))
        words.extend(extra)
        self.commands.append(SimpleCommand(tuple(words), tuple(assignments)))

    def assignment(self, node: Node) -> tuple[str, Word]:
        name, value = "", Word("")
        for child in node.named_children:
            if child.type == "variable_name":
                name = _text(child)
            else:
                self.visit(child)
                value = decode_word(child) if child.type in _WORD_TYPES else Word("", False)
        if not name or any(c.type == "array" for c in node.named_children):
            self.problems.append("an array assignment")
        return name, value


_LEAVES = frozenset(
    [
        "variable_name",
        "special_variable_name",
        "string_content",
        "file_descriptor",
        "heredoc_start",
        "heredoc_body",
        "heredoc_content",
        "heredoc_end",
        "command_name",
    ]
)
"""Named nodes that are parts of words or redirections, fine wherever they appear."""


def _is_fd(node: Node) -> bool:
    text = _text(node)
    return node.type == "number" or text.isdigit() or text == "-"


def decode_word(node: Node) -> Word:
    """The word's value after quote removal, and whether it is literal (see `Word`)."""
    kind = node.type
    if kind == "word":
        return _unquoted(_text(node))
    if kind == "number":
        text = _text(node)
        return Word(text, True, _escape_glob(text))
    if kind == "raw_string":
        text = _text(node)[1:-1]
        return Word(text, True, _escape_glob(text))
    if kind == "string":
        return _double_quoted(node)
    if kind == "concatenation":
        return _concatenation(node)
    return Word(_text(node), False)


def _concatenation(node: Node) -> Word:
    parts = []
    for index, child in enumerate(node.children):
        if not child.is_named:
            parts.append(Word(_text(child), False))
        elif child.type == "word":
            parts.append(_unquoted(_text(child), tilde=index == 0))
        else:
            parts.append(decode_word(child))
    text = "".join(p.text for p in parts)
    literal = all(p.literal for p in parts)
    globs = [p.glob for p in parts]
    glob = None if any(g is None for g in globs) else "".join(g or "" for g in globs)
    return Word(text, literal, glob)


def _double_quoted(node: Node) -> Word:
    text, literal = [], True
    for child in node.named_children:
        if child.type == "string_content":
            text.append(_unescape_double(_text(child)))
        else:
            text.append(_text(child))
            literal = False
    value = "".join(text)
    return Word(value, literal, _escape_glob(value) if literal else None)


def _unescape_double(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in _DQ_ESCAPES | {"\n"}:
            if text[i + 1] != "\n":
                out.append(text[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


_TILDE = re.compile(r"^~(?=/|$)")


def _unquoted(raw: str, *, tilde: bool = True) -> Word:
    """An unquoted word: backslashes escape, glob characters and `~user`/`{` expand.
    A leading `~` or `~/` is the home directory (known here, so still literal)."""
    text, glob, literal, expands = [], [], True, False
    i = 0
    if tilde and _TILDE.match(raw):
        home = str(Path.home())
        text.append(home)
        glob.append(_escape_glob(home))
        i = 1
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            if raw[i + 1] != "\n":
                text.append(raw[i + 1])
                glob.append(_escape_glob(raw[i + 1]))
            i += 2
            continue
        if ch in _GLOB_CHARS:
            literal = False
            glob.append(ch)
        elif ch in "{}~$`":
            literal, expands = False, True
            glob.append(ch)
        else:
            glob.append(_escape_glob(ch))
        text.append(ch)
        i += 1
    value = "".join(text)
    return Word(value, literal, None if expands else "".join(glob))


def _escape_glob(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


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
        for start in range(1, min(len(words), _MAX_WRAPPED)):
            yield words[start:]
        if len(words) > _MAX_WRAPPED:  # too long to try every start: assume the worst
            yield (Word("", literal=False),)
    script = _inline_script(name, words)
    if script is None:
        return
    if not script.literal or depth >= 3:
        yield (Word("", literal=False),)
        return
    parsed = parse_shell(script.text)
    if not parsed.ok:
        yield (Word("", literal=False),)
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
