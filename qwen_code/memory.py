"""Project context files (QWEN.md, AGENTS.md): the user's standing instructions.

Found in `$QWEN_HOME`, then in every directory from the project root (git root) down to
the working directory, and added to the system prompt in that order, each under a
header naming its path. `/memory show` lists the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_NAMES: tuple[str, ...] = ("QWEN.md", "AGENTS.md")
MAX_FILE_CHARS = 64_000


@dataclass(frozen=True, slots=True)
class ContextFile:
    path: Path
    content: str
    truncated: bool = False


def _project_root(cwd: Path) -> Path:
    for directory in (cwd, *cwd.parents):
        if (directory / ".git").exists():
            return directory
    return cwd


def discover(cwd: Path, home: Path, names: tuple[str, ...] = DEFAULT_NAMES) -> list[ContextFile]:
    """The context files that apply in `cwd`, most general first."""
    root = _project_root(cwd)
    chain = [cwd, *cwd.parents]
    directories = [home, *reversed(chain[: chain.index(root) + 1])]
    found: list[ContextFile] = []
    seen: set[Path] = set()
    for directory in directories:
        for name in names:
            path = directory / name
            if path.is_file() and path.resolve() not in seen:
                seen.add(path.resolve())
                found.append(_read(path))
    return found


def _read(path: Path) -> ContextFile:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return ContextFile(path, f"(could not be read: {exc.strerror})")
    if len(text) > MAX_FILE_CHARS:
        return ContextFile(path, text[:MAX_FILE_CHARS], truncated=True)
    return ContextFile(path, text)


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
