"""Project context files (QWEN.md, AGENTS.md): the user's standing instructions.

Found in `$QWEN_HOME`, then in every directory from the project root (git root) down to
the working directory, and added to the system prompt in that order, each under a
header naming its path. A line's `@path/to/file.md` imports that file in its place
(up to 5 levels deep, cycle-safe, only files inside the project or `$QWEN_HOME`).
`/memory add` and the `save_memory` tool append facts to the user file.

Bounded, whatever the files say: each file is read once per context file (a second
import of it becomes a one-line note), at most `MAX_IMPORTS` files are imported, reading
stops at the size limits (`MAX_FILE_CHARS` per context file with its imports,
`MAX_TOTAL_CHARS` for all of them), and a project's context file or import that leads
(through a symbolic link or `..`) outside the project and `$QWEN_HOME` is not read.
What was left out is said in `ContextFile.notes` (see `notices`), for the front ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from qwen_code.config import project_root

DEFAULT_NAMES: tuple[str, ...] = ("QWEN.md", "AGENTS.md")
MAX_FILE_CHARS = 64_000
"""One context file with its imports expanded."""
MAX_TOTAL_CHARS = 200_000
"""All context files together (about 50,000 tokens)."""
MAX_IMPORT_DEPTH = 5
MAX_IMPORTS = 100
"""Distinct files one context file may import (at any depth)."""
MEMORY_HEADING = "## Qwen Added Memories"
OUTSIDE = "outside the project and the qwen-code home"
_IMPORT = re.compile(r"(?<![\w`])@((?:[\w.~-]|\\ )*[/.](?:[\w./~-]|\\ )+)")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True, slots=True)
class ContextFile:
    path: Path
    content: str
    truncated: bool = False
    imports: tuple[Path, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())
    """What the user should be told: imports left out, size limits reached, the file not
    loaded at all (`skipped`). One sentence each, without a `qwen-code:` prefix."""
    skipped: bool = False
    """Not loaded (the notes say why): no content, and not part of the system prompt."""


def notices(files: Iterable[ContextFile]) -> list[str]:
    """The notes of all context files, for front ends to show once at start-up."""
    return [note for file in files for note in file.notes]


def valid_name(name: str) -> bool:
    """A context file name must be a plain file name: no directory, no `..`."""
    return bool(name) and not any(c in name for c in "/\\\0") and ".." not in name


def discover(cwd: Path, home: Path, names: tuple[str, ...] = DEFAULT_NAMES) -> list[ContextFile]:
    """The context files that apply in `cwd`, most general first, imports expanded.

    Entries with `skipped` set stand for files (or configured names) that were left out;
    their `notes` say why."""
    root = project_root(cwd)
    chain = [cwd, *cwd.parents]
    directories = [home, *reversed(chain[: chain.index(root) + 1])]
    allowed = (root.resolve(), home.resolve())
    found = [_refused_name(name) for name in names if not valid_name(name)]
    seen: set[Path] = set()
    left = MAX_TOTAL_CHARS
    for directory in directories:
        for name in filter(valid_name, names):
            path = directory / name
            target = _regular_file(path)
            if target is None or target in seen:
                continue
            seen.add(target)
            file = _discovered(path, target, directory == home, allowed, left)
            left -= len(file.content)
            found.append(file)
    return found


def _refused_name(name: str) -> ContextFile:
    note = (
        f"the context file name {name!r} (setting context.fileName) was ignored: it must be "
        "a plain file name, without '/' or '..'."
    )
    return ContextFile(Path(name), "", notes=(note,), skipped=True)


def _discovered(
    path: Path, target: Path, in_home: bool, allowed: tuple[Path, ...], left: int
) -> ContextFile:
    """One context file found in a directory: loaded, or skipped with a note."""
    if left <= 0:
        note = (
            f"{path} was not loaded: the context files together reached the limit of "
            f"{MAX_TOTAL_CHARS} characters."
        )
        return ContextFile(path, "", notes=(note,), skipped=True)
    if in_home:
        # The user's own file may link anywhere (a dotfiles repository); its imports may
        # then also come from the directory it links to.
        allowed = (*allowed, target.parent)
    elif not _inside(target, allowed):
        note = f"{path} was not loaded: it leads to {target}, {OUTSIDE}."
        return ContextFile(path, "", notes=(note,), skipped=True)
    return _Loader(path, allowed, min(MAX_FILE_CHARS, left)).load(target)


def _regular_file(path: Path) -> Path | None:
    """`path` resolved (symbolic links followed) when it is a regular file, else None."""
    try:
        target = path.resolve()
        return target if target.is_file() else None
    except (OSError, RuntimeError, ValueError):  # a link loop, a name too long, a NUL
        return None


def _inside(target: Path, roots: tuple[Path, ...]) -> bool:
    return any(target == root or target.is_relative_to(root) for root in roots)


class _Loader:
    """Expands one context file's imports, each imported file once, within `limit`."""

    def __init__(self, path: Path, allowed: tuple[Path, ...], limit: int) -> None:
        self.path, self.allowed, self.limit = path, allowed, limit
        self.size = 0
        """Characters of expanded text produced so far."""
        self.cut = False
        """Text was left out for the limit."""
        self.included: set[Path] = set()
        self.imports: list[Path] = []
        self.notes: dict[str, None] = {}
        """Notes in order, each once."""

    @property
    def full(self) -> bool:
        return self.size > self.limit

    def load(self, target: Path) -> ContextFile:
        self.included.add(target)
        text = self._expand(target, (target,))
        truncated = self.cut or len(text) > self.limit
        if truncated:
            text = text[: self.limit]
            why = "" if self.limit == MAX_FILE_CHARS else f" (all together: {MAX_TOTAL_CHARS})"
            self.notes[f"{self.path} was cut at {self.limit} characters{why}."] = None
        return ContextFile(
            self.path, text, truncated, tuple(self.imports), tuple(self.notes), skipped=False
        )

    def _read(self, path: Path) -> str:
        """At most what still fits (and one character more, to tell that it did not)."""
        cap = max(0, self.limit - self.size) + 1
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                text = handle.read(cap)
        except (OSError, ValueError) as exc:
            return f"(could not be read: {getattr(exc, 'strerror', None) or exc})"
        self.cut = self.cut or len(text) == cap
        return text

    def _expand(self, path: Path, chain: tuple[Path, ...]) -> str:
        """The file's text with `@path` imports replaced by the imported files' text."""
        lines, in_code = [], False
        for line in self._read(path).splitlines():
            if self.full:
                self.cut = True
                break
            before = self.size
            if _FENCE.match(line):
                in_code = not in_code
            if not in_code and "@" in line:
                line = _IMPORT.sub(lambda m: self._import(m.group(1), path, chain), line)
            lines.append(line)
            self.size = before + len(line) + 1  # the imports' text is part of the line
        return "\n".join(lines)

    def _import(self, raw: str, importer: Path, chain: tuple[Path, ...]) -> str:
        try:
            target = _regular_file(importer.parent / Path(raw.replace("\\ ", " ")).expanduser())
        except RuntimeError:  # `~name` of an unknown user
            target = None
        if target is None:
            return f"@{raw}"  # not a file: plain text such as a handle or a decorator
        skip = self._refusal(raw, target, chain)
        if skip is not None:
            return skip
        self.included.add(target)
        self.imports.append(target)
        return self._expand(target, (*chain, target))

    def _refusal(self, raw: str, target: Path, chain: tuple[Path, ...]) -> str | None:
        """The note that replaces this import, or None when it is expanded."""
        if not _inside(target, self.allowed):
            self.notes[f"{self.path}: the import of {raw} was skipped: it is {OUTSIDE}."] = None
            return f"[import of {raw} skipped: {OUTSIDE}]"
        if target in chain:
            return f"[import of {raw} skipped: it would import itself (cycle)]"
        if target in self.included:
            return f"[import of {raw}: already included above]"
        if self.full:
            return f"[import of {raw} skipped: the size limit was reached]"
        if len(chain) > MAX_IMPORT_DEPTH:
            return f"[import of {raw} skipped: imports nest deeper than {MAX_IMPORT_DEPTH}]"
        if len(self.imports) >= MAX_IMPORTS:
            self.notes[f"{self.path}: imports beyond the first {MAX_IMPORTS} were skipped."] = None
            return f"[import of {raw} skipped: more than {MAX_IMPORTS} files imported]"
        return None


CONTEXT_HEADING = "# Context from the user's instruction files"
"""Where the context files start in the system prompt."""


def render(files: list[ContextFile]) -> str:
    """The block appended to the system prompt ("" when there are no files)."""
    files = [file for file in files if not file.skipped]
    if not files:
        return ""
    parts = [
        f"{CONTEXT_HEADING}\n"
        "Follow these instructions; later (more specific) files take precedence."
    ]
    for file in files:
        note = f"\n[truncated at {len(file.content)} characters]" if file.truncated else ""
        parts.append(f"## {file.path}\n{file.content.strip()}{note}")
    return "\n\n".join(parts)


def memory_file_name(names: tuple[str, ...]) -> str:
    """The file in `$QWEN_HOME` that saved memories go to: the first configured context file
    name that is a plain file name (QWEN.md when none is)."""
    return next(filter(valid_name, names), DEFAULT_NAMES[0])


def add_memory(fact: str, home: Path, name: str = DEFAULT_NAMES[0]) -> Path:
    """Append `fact` as a bullet under the memories heading of the user's context file.

    `name` must be a plain file name (ValueError otherwise): the file is always in `home`."""
    from qwen_code.atomic import atomic_write

    if not valid_name(name):
        raise ValueError(f"{name!r} is not a plain file name; memories are saved in {home}.")
    path = home / name
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    atomic_write(path, with_memory(text, fact).encode("utf-8"))
    return path


def with_memory(text: str, fact: str) -> str:
    """The context file's `text` with `fact` added as a bullet under the memories heading
    (the heading is added at the end when missing). What `add_memory` writes, and what
    the approval shows beforehand."""
    entry = "- " + " ".join(fact.split())
    if MEMORY_HEADING in text:
        head, _, tail = text.partition(MEMORY_HEADING)
        section, sep, rest = tail.partition("\n## ")
        section = section.rstrip("\n") + "\n" + entry + "\n"
        return head + MEMORY_HEADING + section + (("\n" + sep.lstrip("\n") + rest) if sep else "")
    return (text.rstrip("\n") + "\n\n" if text.strip() else "") + f"{MEMORY_HEADING}\n\n{entry}\n"
