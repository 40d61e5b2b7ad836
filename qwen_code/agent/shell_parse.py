"""Shell commands as the permission rules see them: parsed with tree-sitter-bash.

`parse_shell` turns a command line into every simple command it runs (anywhere: in
pipelines, lists, `$( )`, `<( )`, subshells, functions), each as unquoted words, plus the
redirections, and a list of the constructs that keep a command from matching an allow
rule (substitutions, subshells, function definitions, control flow, file redirections,
assignments, anything the parser flagged or this module does not know).

Matching words against rules is `shell_match`'s; deciding is `permissions`'. tree-sitter
is imported on the first parse only, so start-up (`qwen-code --help`) never loads it.
"""

from __future__ import annotations

import re
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
