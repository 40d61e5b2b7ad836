"""Path rules and protected paths: whether a path specifier (`Read(./src/**)`,
`Edit(//etc/*)`) covers a resolved path, and why writing a path needs the user's own
approval (`.git/`, `.qwen/`, shell start-up files, the qwen-code home).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

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
