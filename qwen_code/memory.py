"""Project context files (QWEN.md, AGENTS.md): the user's standing instructions.

Found in `$QWEN_HOME`, then in every directory from the project root (git root) down to
the working directory, and added to the system prompt in that order, each under a
header naming its path. A line's `@path/to/file.md` imports that file in its place
(up to 5 levels deep, cycle-safe, only files inside the project or `$QWEN_HOME`).
`/memory add` and the `save_memory` tool append facts to the user file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from qwen_code.config import project_root

DEFAULT_NAMES: tuple[str, ...] = ("QWEN.md", "AGENTS.md")
MAX_FILE_CHARS = 64_000
MAX_IMPORT_DEPTH = 5
MEMORY_HEADING = "## Qwen Added Memories"
_IMPORT = re.compile(r"(?<![\w`])@((?:[\w.~-]|\\ )*[/.](?:[\w./~-]|\\ )+)")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True, slots=True)
class ContextFile:
    path: Path
    content: str
    truncated: bool = False
    imports: tuple[Path, ...] = field(default=())


def discover(cwd: Path, home: Path, names: tuple[str, ...] = DEFAULT_NAMES) -> list[ContextFile]:
    """The context files that apply in `cwd`, most general first, imports expanded."""
    root = project_root(cwd)
    chain = [cwd, *cwd.parents]
    directories = [home, *reversed(chain[: chain.index(root) + 1])]
    allowed = (root.resolve(), home.resolve())
    found: list[ContextFile] = []
    seen: set[Path] = set()
    for directory in directories:
        for name in names:
            path = directory / name
            if path.is_file() and path.resolve() not in seen:
                seen.add(path.resolve())
                found.append(_load(path, allowed))
    return found


def _load(path: Path, allowed: tuple[Path, ...]) -> ContextFile:
    imports: list[Path] = []
    text = _expand(path, allowed, (path.resolve(),), imports)
    if len(text) > MAX_FILE_CHARS:
        return ContextFile(path, text[:MAX_FILE_CHARS], True, tuple(imports))
    return ContextFile(path, text, False, tuple(imports))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(could not be read: {exc.strerror})"


def _expand(
    path: Path, allowed: tuple[Path, ...], chain: tuple[Path, ...], seen: list[Path]
) -> str:
    """The file's text with `@path` imports replaced by the imported files' text."""
    lines, in_code = [], False
    for line in _read(path).splitlines():
        if _FENCE.match(line):
            in_code = not in_code
        if in_code or "@" not in line:
            lines.append(line)
            continue
        lines.append(_IMPORT.sub(lambda m: _import(m.group(1), path, allowed, chain, seen), line))
    return "\n".join(lines)


def _import(
    raw: str, importer: Path, allowed: tuple[Path, ...], chain: tuple[Path, ...], seen: list[Path]
) -> str:
    target = (importer.parent / Path(raw.replace("\\ ", " ")).expanduser()).resolve()
    if not target.is_file():
        return f"@{raw}"  # not a file: plain text such as a handle or a decorator
    if not any(target == root or target.is_relative_to(root) for root in allowed):
        return f"[import of {raw} skipped: outside the project and the qwen-code home]"
    if target in chain:
        return f"[import of {raw} skipped: it would import itself (cycle)]"
    if len(chain) > MAX_IMPORT_DEPTH:
        return f"[import of {raw} skipped: imports nest deeper than {MAX_IMPORT_DEPTH}]"
    seen.append(target)
    return _expand(target, allowed, (*chain, target), seen)


def render(files: list[ContextFile]) -> str:
    """The block appended to the system prompt ("" when there are no files)."""
    if not files:
        return ""
    parts = [
        "# Context from the user's instruction files\n"
        "Follow these instructions; later (more specific) files take precedence."
    ]
    for file in files:
        note = f"\n[truncated at {MAX_FILE_CHARS} characters]" if file.truncated else ""
        parts.append(f"## {file.path}\n{file.content.strip()}{note}")
    return "\n\n".join(parts)


def add_memory(fact: str, home: Path, name: str = DEFAULT_NAMES[0]) -> Path:
    """Append `fact` as a bullet under the memories heading of the user's context file."""
    from qwen_code.tools.fileio import atomic_write

    path = home / name
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    entry = "- " + " ".join(fact.split())
    if MEMORY_HEADING in text:
        head, _, tail = text.partition(MEMORY_HEADING)
        section, sep, rest = tail.partition("\n## ")
        section = section.rstrip("\n") + "\n" + entry + "\n"
        text = head + MEMORY_HEADING + section + (("\n" + sep.lstrip("\n") + rest) if sep else "")
    else:
        text = (
            text.rstrip("\n") + "\n\n" if text.strip() else ""
        ) + f"{MEMORY_HEADING}\n\n{entry}\n"
    atomic_write(path, text.encode("utf-8"))
    return path
