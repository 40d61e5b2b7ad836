"""The workspace: the directories tools may touch, and the guard that keeps paths inside."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from qwen_code.tools.base import ToolError


@dataclass(slots=True, kw_only=True)
class Workspace:
    """`root` is the working directory; `roots` are all directories tools may use.

    A path that leaves the roots (through `..`, an absolute path or a symlink) is refused,
    in every approval mode, as in Qwen Code: yolo skips questions, not the boundary.
    `allow_outside` turns the guard off (for callers that are not the model).
    """

    root: Path
    extra_roots: tuple[Path, ...] = ()
    allow_outside: bool = False
    _resolved: tuple[Path, ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(os.path.realpath(self.root))
        self.extra_roots = tuple(Path(os.path.realpath(p)) for p in self.extra_roots)
        self._resolved = (self.root, *self.extra_roots)

    @property
    def roots(self) -> tuple[Path, ...]:
        return self._resolved

    def contains(self, path: Path) -> bool:
        """True when `path` (already resolved) lies inside one of the roots."""
        return any(path == r or path.is_relative_to(r) for r in self._resolved)

    def resolve(self, path: str | os.PathLike[str], *, must_exist: bool = False) -> Path:
        """Turn a user or model path into an absolute, symlink-free path inside the roots.

        Raises `ToolError` when the path escapes the workspace (unless `allow_outside`)
        or, with `must_exist`, when nothing is there.
        """
        raw = os.fspath(path)
        if not raw.strip():
            raise ToolError("The path is empty: pass a file or directory path.")
        given = Path(raw).expanduser()
        joined = given if given.is_absolute() else self.root / given
        resolved = Path(os.path.realpath(joined))
        if not self.allow_outside and not self.contains(resolved):
            roots = ", ".join(str(r) for r in self._resolved)
            raise ToolError(
                f"Path {os.fspath(path)!r} resolves to {str(resolved)!r}, which is outside the "
                f"workspace ({roots}). Use a path inside the workspace."
            )
        if must_exist and not resolved.exists():
            raise ToolError(f"{self.display(resolved)!r} does not exist.")
        return resolved

    def add_root(self, path: Path) -> Path:
        """Widen the workspace by one directory (`/directory add`)."""
        resolved = Path(os.path.realpath(path))
        if not resolved.is_dir():
            raise ToolError(f"{str(path)!r} is not a directory.")
        if resolved not in self._resolved:
            self.extra_roots = (*self.extra_roots, resolved)
            self._resolved = (*self._resolved, resolved)
        return resolved

    def display(self, path: Path) -> str:
        """A short form of `path` for messages: relative to the root when inside it."""
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return str(path)
        return str(rel) if str(rel) != "." else "."
