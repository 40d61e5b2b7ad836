"""Atomic file replacement: readers see the old or the new file, never a part.

A leaf module (it imports nothing from qwen_code), so settings, trust decisions, memory,
sessions and tools can all write through it without import cycles.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old or the new file, never a part.

    The bytes go to a temporary file in the same directory, then a rename puts it over
    `path`: a process killed at any point (even SIGKILL) leaves the old or the new content.
    There is no fsync: it guards only against power loss, and on a busy disk it costs a
    journal commit (~50 ms measured) on every edit the agent makes. Parent directories are
    created; an existing file keeps its permission mode; a new one gets the usual mode
    (0o666 less the umask). On failure the temporary file is removed and `path` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode: int | None = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    tmp, fd = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if mode is not None:
            tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _create_temp(path: Path) -> tuple[Path, int]:
    """A new file next to `path`, created with 0o666 so the umask applies as usual."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
