"""Custom commands on disk: where they live, their two file formats, discovery.

A command file is read only when it resolves (through symlinks) inside the folders its
scope allows (`command_roots`): a project's `.qwen/commands/x.md` that links to
`~/.ssh/id_rsa` would otherwise put that file's text into a prompt. Such a file is
skipped with a `CommandProblem` saying where it links to."""

from __future__ import annotations

import itertools
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from qwen_code.config import project_root
from qwen_code.tools.fileio import (
    BinaryFileError,
    decode_bytes,
    normalize_newlines,
)

Scope: TypeAlias = Literal["project", "user"]
ARGS = "{{args}}"
EXTENSIONS = (".md", ".toml")
MAX_COMMAND_FILE_BYTES = 256 * 1024
MAX_FILE_BYTES = 256 * 1024
"""How much of one file an `@{path}` injects."""
MAX_TOTAL_BYTES = 1024 * 1024
"""How much all `@{…}` of one expansion inject together."""
MAX_DIR_FILES = 200
_NAME_RE = re.compile(r"^/([^\s/]+)(?:\s+(.*))?$", re.DOTALL)


class CommandFileError(Exception):
    """A command file that cannot be used; the message says why."""


# --- the commands ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomCommand:
    name: str
    """The name without the slash, namespaces joined with `:` (`git:commit`)."""
    prompt: str
    """The template: the Markdown body or the TOML `prompt`."""
    path: Path
    scope: Scope
    description: str = ""
    """From the front matter or the TOML; empty when the file gives none."""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)
    """Every front matter / TOML key (e.g. `argument-hint`), for front ends."""
    roots: tuple[Path, ...] = field(default=(), compare=False, repr=False)
    """Where the file must resolve to when it is read again (`command_roots`)."""

    @property
    def help(self) -> str:
        """The one line /help shows."""
        return self.description or f"Custom command from {display_path(self.path)}"


@dataclass(frozen=True, slots=True)
class CommandProblem:
    """A file that was skipped, and why."""

    path: Path
    name: str
    reason: str

    def __str__(self) -> str:
        label = f"/{self.name} " if self.name else ""
        return f"{label}({display_path(self.path)}) skipped: {self.reason}"


@dataclass(slots=True)
class Discovery:
    commands: dict[str, CustomCommand] = field(default_factory=dict)
    problems: list[CommandProblem] = field(default_factory=list)


def display_path(path: Path) -> str:
    """A short form of a command file's path: relative to the working directory when
    inside it, `~/…` under the home directory, else absolute."""
    for base, prefix in ((Path.cwd(), ""), (Path.home(), "~/")):
        if path.is_relative_to(base):
            return prefix + str(path.relative_to(base))
    return str(path)


def command_dirs(cwd: Path, home: Path) -> list[tuple[Scope, Path]]:
    """Where commands live, lowest precedence first: the user's, then the project's."""
    dirs: list[tuple[Scope, Path]] = [("user", home / "commands")]
    project = project_root(cwd) / ".qwen" / "commands"
    if _real(project) != _real(home / "commands"):
        dirs.append(("project", project))
    return dirs


def _real(path: Path) -> str:
    return os.path.realpath(path)


def command_roots(scope: Scope, cwd: Path, home: Path) -> tuple[Path, ...]:
    """The folders a command file of `scope` may resolve to: the project (project
    commands) or `$QWEN_HOME` (user commands), and for both the user's own commands folder
    (which may itself be a link, e.g. into a dotfiles repository). A project's file never
    reaches the rest of `$QWEN_HOME` (settings, keys, sessions)."""
    own = Path(_real(home / "commands"))
    first = project_root(cwd) if scope == "project" else home
    return (Path(_real(first)), own)


def _check_inside(path: Path, roots: tuple[Path, ...], scope: Scope) -> Path:
    """The real path of `path`; raises `CommandFileError` when it lies outside `roots`."""
    real = Path(_real(path))
    if roots and not any(real.is_relative_to(root) for root in roots):
        where = "the project" if scope == "project" else "$QWEN_HOME"
        raise CommandFileError(f"it is a link to {real}, outside {where}; not loaded")
    return real


def discover(cwd: Path, home: Path) -> Discovery:
    """Every custom command for a session in `cwd` with qwen-code home `home`."""
    found = Discovery()
    for scope, directory in command_dirs(cwd, home):
        roots = command_roots(scope, cwd, home)
        commands, problems = scan_dir(directory, scope, roots=roots)
        found.commands.update(commands)
        found.problems.extend(problems)
    return found


def find_command(name: str, cwd: Path, home: Path) -> CustomCommand | CommandProblem | None:
    """The command called `name` (case-insensitive), the problem with its file, or None."""
    found = discover(cwd, home)
    name = name.lower()
    if name in found.commands:
        return found.commands[name]
    problems = [p for p in found.problems if p.name == name]
    return problems[-1] if problems else None


def scan_dir(
    directory: Path, scope: Scope, *, roots: tuple[Path, ...] = ()
) -> tuple[dict[str, CustomCommand], list[CommandProblem]]:
    """The commands in one folder (recursively). Within a folder, for two files giving the
    same name (`x.md` and `x.toml`), the first in sorted order wins (Markdown first).
    With `roots`, a file that resolves outside them is skipped (`command_roots`)."""
    commands: dict[str, CustomCommand] = {}
    problems: list[CommandProblem] = []
    if not directory.is_dir():
        return commands, problems

    def walk_error(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename else directory
        problems.append(CommandProblem(where, "", f"cannot read the folder ({exc.strerror})"))

    for folder, dirs, files in os.walk(directory, onerror=walk_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(folder)
        for filename in sorted(files, key=_file_order):
            path = base / filename
            if filename.startswith(".") or path.suffix not in EXTENSIONS:
                continue
            try:
                name = command_name(path, directory)
            except CommandFileError as exc:
                problems.append(CommandProblem(path, "", str(exc)))
                continue
            if name in commands:
                other = commands[name].path.name
                reason = f"{other} in the same folder defines /{name} already"
                problems.append(CommandProblem(path, name, reason))
                continue
            try:
                commands[name] = load_command_file(path, name=name, scope=scope, roots=roots)
            except CommandFileError as exc:
                problems.append(CommandProblem(path, name, str(exc)))
    return commands, problems


def _file_order(filename: str) -> tuple[str, int]:
    stem, _, suffix = filename.rpartition(".")
    return stem.lower(), 0 if suffix == "md" else 1


def command_name(path: Path, directory: Path) -> str:
    """`<directory>/git/commit.md` → `git:commit`. A `:` in a file name becomes `_`."""
    parts = list(path.relative_to(directory).with_suffix("").parts)
    parts = [p.lower().replace(":", "_") for p in parts]
    if any(not p or any(c.isspace() for c in p) for p in parts):
        raise CommandFileError("a command name cannot contain spaces")
    return ":".join(parts)


def load_command_file(
    path: Path, *, name: str, scope: Scope, roots: tuple[Path, ...] = ()
) -> CustomCommand:
    """Read and parse one command file; raises `CommandFileError` saying what is wrong.
    With `roots`, a file that resolves outside them is not read."""
    real = _check_inside(path, roots, scope)
    try:
        size = real.stat().st_size
        if size > MAX_COMMAND_FILE_BYTES:
            raise CommandFileError(f"the file is larger than {MAX_COMMAND_FILE_BYTES:,} bytes")
        text = decode_bytes(real.read_bytes()).text
    except BinaryFileError as exc:
        raise CommandFileError(f"not a text file ({exc})") from exc
    except OSError as exc:
        raise CommandFileError(f"cannot read the file ({exc.strerror or exc})") from exc
    if path.suffix == ".toml":
        metadata, prompt = parse_toml(text)
    else:
        metadata, prompt = parse_front_matter(text)
        prompt = prompt.strip()
    if not prompt.strip():
        raise CommandFileError("the prompt is empty")
    find_injections(prompt)  # an unclosed !{ or @{ is a problem now, not at run time
    description = metadata.get("description", "")
    if isinstance(description, list):
        description = ", ".join(str(d) for d in description)
    if not isinstance(description, str):
        raise CommandFileError("`description` must be a string")
    return CustomCommand(
        name=name,
        prompt=prompt,
        path=path,
        scope=scope,
        description=" ".join(description.split()),
        metadata=metadata,
        roots=roots,
    )


def reload_command(command: CustomCommand) -> CustomCommand | CommandProblem:
    """Read the command's file again (it may have been edited since discovery)."""
    try:
        return load_command_file(
            command.path, name=command.name, scope=command.scope, roots=command.roots
        )
    except CommandFileError as exc:
        return CommandProblem(command.path, command.name, str(exc))


# --- file formats ----------------------------------------------------------------------


def parse_toml(text: str) -> tuple[dict[str, Any], str]:
    """(all keys, prompt) of a Gemini-style TOML command."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CommandFileError(f"invalid TOML: {exc}") from exc
    prompt = data.get("prompt")
    if prompt is None:
        raise CommandFileError("the TOML has no `prompt`")
    if not isinstance(prompt, str):
        raise CommandFileError("`prompt` must be a string")
    return data, prompt


def parse_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(front matter, body) of a Markdown command; no front matter gives ({}, text)."""
    text = normalize_newlines(text)
    lines = text.split("\n")
    if lines[0].rstrip() != "---":
        return {}, text
    for end in range(1, len(lines)):
        if lines[end].rstrip() in ("---", "..."):
            break
    else:
        raise CommandFileError("the front matter opened by `---` on line 1 is not closed")
    return parse_simple_yaml(lines[1:end], first_line=2), "\n".join(lines[end + 1 :])


_KEY_RE = re.compile(r"^([A-Za-z_][\w.-]*)\s*:(?:\s+(.*))?$")
_BLOCK_RE = re.compile(r"^([|>])([+-]?)\s*(?:#.*)?$")


def parse_simple_yaml(lines: list[str], *, first_line: int = 1) -> dict[str, Any]:
    """The YAML subset front matter needs: `key: value` (plain, 'single' or "double"
    quoted), block scalars (`key: |` / `key: >`), plain values continued on indented
    lines, and lists of `- item` lines. Comments and blank lines are skipped."""
    result: dict[str, Any] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        number = first_line + i
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _KEY_RE.match(line.rstrip())
        if line[0].isspace() or not match:
            raise CommandFileError(
                f"front matter line {number}: expected `key: value`, got {line.strip()!r}"
            )
        key, raw = match.group(1), (match.group(2) or "").strip()
        block: list[str] = []
        while i < len(lines) and (not lines[i].strip() or lines[i][0].isspace()):
            block.append(lines[i])
            i += 1
        while block and not block[-1].strip():
            block.pop()
        result[key] = _yaml_value(raw, block, number)
    return result


def _yaml_value(raw: str, block: list[str], number: int) -> Any:
    style = _BLOCK_RE.match(raw)
    if style:
        return _block_scalar(block, literal=style.group(1) == "|", chomp=style.group(2))
    items = [b.strip() for b in block if b.strip()]
    if not raw and items and all(item.startswith("-") for item in items):
        return [_scalar(item[1:].strip(), number) for item in items]
    if raw.startswith(("'", '"')):
        return _scalar(" ".join([raw, *items]), number)
    if raw.startswith(("[", "{")):
        raise CommandFileError(f"front matter line {number}: flow collections are not supported")
    return _scalar(" ".join(part for part in [raw, *items] if part), number)


def _block_scalar(block: list[str], *, literal: bool, chomp: str) -> str:
    indents = [len(b) - len(b.lstrip()) for b in block if b.strip()]
    cut = min(indents, default=0)
    lines = [b[cut:] if b.strip() else "" for b in block]
    if literal:
        text = "\n".join(lines)
    else:
        paragraphs = [" ".join(group) for blank, group in _groups(lines) if not blank]
        text = "\n".join(paragraphs)
    return text if chomp == "-" else text + "\n"


def _groups(lines: list[str]) -> list[tuple[bool, list[str]]]:
    return [(blank, list(g)) for blank, g in itertools.groupby(lines, key=lambda s: not s)]


_DOUBLE_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/", "r": "\r", "0": "\0"}


def _scalar(raw: str, number: int) -> str:
    """One scalar value: quotes removed (escapes of double quotes undone), a trailing
    ` # comment` dropped from plain values."""
    if raw.startswith('"'):
        out, i = [], 1
        while i < len(raw):
            ch = raw[i]
            if ch == "\\" and i + 1 < len(raw):
                out.append(_DOUBLE_ESCAPES.get(raw[i + 1], raw[i + 1]))
                i += 2
                continue
            if ch == '"':
                return "".join(out)
            out.append(ch)
            i += 1
        raise CommandFileError(f"front matter line {number}: the double quote is not closed")
    if raw.startswith("'"):
        match = re.match(r"'((?:[^']|'')*)'", raw)
        if not match:
            raise CommandFileError(f"front matter line {number}: the single quote is not closed")
        return match.group(1).replace("''", "'")
    return re.sub(r"\s+#.*$", "", raw).strip()


# --- injections ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Injection:
    """One `@{…}` (kind "file") or `!{…}` (kind "shell") in a prompt."""

    kind: Literal["file", "shell"]
    source: str
    """What is between the braces, as written."""
    start: int
    end: int
    """The span of the whole `@{…}` / `!{…}` in the prompt."""


def find_injections(prompt: str) -> list[Injection]:
    """The `@{…}` and `!{…}` in `prompt`, in order. Braces nest (`!{echo {a,b}}`).
    Raises `CommandFileError` for one that is not closed."""
    found: list[Injection] = []
    i = 0
    while i < len(prompt) - 1:
        trigger = prompt[i : i + 2]
        if trigger not in ("@{", "!{"):
            i += 1
            continue
        depth, j = 1, i + 2
        while j < len(prompt) and depth:
            depth += {"{": 1, "}": -1}.get(prompt[j], 0)
            j += 1
        if depth:
            line = prompt.count("\n", 0, i) + 1
            raise CommandFileError(f"the {trigger} on line {line} of the prompt is not closed")
        kind: Literal["file", "shell"] = "file" if trigger == "@{" else "shell"
        found.append(Injection(kind, prompt[i + 2 : j - 1], i, j))
        i = j
    return found
