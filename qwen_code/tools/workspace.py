"""The workspace: the directories tools may touch, and the guard that keeps paths inside."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from qwen_code.tools import safe_paths
from qwen_code.tools.base import ToolError


@dataclass(slots=True, kw_only=True)
class Workspace:
    """`root` is the working directory; `roots` are all directories tools may use.

    A path that leaves the roots (through `..`, an absolute path or a symlink) is refused,
    in every approval mode, as in Qwen Code: yolo skips questions, not the boundary.
    `allow_outside` turns the guard off (for callers that are not the model).

    `resolve()` checks a path by name; the file methods below (`write_bytes`,
    `open_binary`, `read_bytes`, `list_names`) then reach it from the root's descriptor
    without following symlinks, so a directory swapped for a symlink after the check
    cannot redirect the access (see `safe_paths`). Tools read and write through them.
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
        try:
            resolved = Path(os.path.realpath(joined))
        except OSError as exc:  # readlink() on a link that is no longer one: a swap
            raise ToolError(
                f"The path {raw!r} changed while it was being checked ({exc.strerror or exc}). "
                "Nothing was done; try again."
            ) from exc
        if not self.allow_outside and not self.contains(resolved):
            roots = ", ".join(str(r) for r in self._resolved)
            raise ToolError(
                f"Path {os.fspath(path)!r} resolves to {str(resolved)!r}, which is outside the "
                f"workspace ({roots}). Use a path inside the workspace."
            )
        if must_exist and not resolved.exists():
            raise ToolError(f"{self.display(resolved)!r} does not exist.")
        return resolved

    def locate(self, path: Path) -> tuple[Path, tuple[str, ...]]:
        """The innermost root holding the resolved `path`, and the names from it to `path`.

        Outside every root (possible only with `allow_outside`) the walk starts at the
        filesystem root; otherwise such a path is refused as `resolve()` refuses it.
        """
        inside = [r for r in self._resolved if path == r or path.is_relative_to(r)]
        if inside:
            root = max(inside, key=lambda r: len(r.parts))
        elif self.allow_outside and path.is_absolute():
            root = Path(path.anchor)
        else:
            raise ToolError(f"{str(path)!r} is outside the workspace.")
        return root, path.relative_to(root).parts

    def write_bytes(self, path: Path, data: bytes) -> bool:
        """Atomically write `data` to the resolved `path`; True when the file is new.

        Raises `PathChangedError` (a `ToolError`) when a component turned into a symlink
        after `resolve()`, `OSError` for the usual failures.
        """
        return safe_paths.write_file_at(*self.locate(path), data)

    def open_binary(self, path: Path) -> BinaryIO:
        """The resolved `path` opened for binary reading; see `safe_paths.open_file_at`."""
        return safe_paths.open_file_at(*self.locate(path))

    def read_bytes(self, path: Path) -> bytes:
        """The whole content of the resolved `path`, read as `open_binary` opens it."""
        return safe_paths.read_file_at(*self.locate(path))

    def list_names(self, path: Path, limit: int) -> list[str]:
        """Up to `limit` entry names of the resolved directory `path`."""
        return safe_paths.list_names_at(*self.locate(path), limit)

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
