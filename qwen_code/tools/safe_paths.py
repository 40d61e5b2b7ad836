"""Open, read and write files under a root without following a symlink on the way.

`Workspace.resolve()` checks a path by name; writing by name afterwards lets a directory
swapped for a symlink in between (`renameat2(RENAME_EXCHANGE)`, or a plain `mv`) send the
bytes outside the workspace. Here every step is an `os.open(name, O_NOFOLLOW,
dir_fd=parent)` from the root's descriptor, so the directory that is checked is the one
written into: a symlink met on the way means the tree changed under us, and the call fails
with `PathChangedError` instead of going where the link points. The path handed in is
already resolved (symlink-free), so a legitimate symlink inside the workspace never
reaches this walk.

Where `os.open` has no `dir_fd` (Windows), the functions fall back to plain paths.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Literal

from qwen_code.tools.base import ToolError

SUPPORTED = (
    os.open in os.supports_dir_fd
    and os.mkdir in os.supports_dir_fd
    and hasattr(os, "O_NOFOLLOW")
    and hasattr(os, "O_DIRECTORY")
)
"""Whether the descriptor walk is available; otherwise the plain-path fallback runs."""

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | _NONBLOCK | getattr(os, "O_BINARY", 0)
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_BINARY", 0)

Action = Literal["reading", "writing"]


class PathChangedError(ToolError):
    """A directory or file on the checked path became a symlink (or vanished as a
    directory) between the check and the access: nothing was read or written."""

    def __init__(self, path: Path, component: str, action: Action) -> None:
        done = "written" if action == "writing" else "read"
        super().__init__(
            f"The path {str(path)!r} changed while {action} it: {component!r} was replaced "
            f"by a symbolic link or another file after the path was checked. Nothing was "
            f"{done}; check the path and try again."
        )
        self.path = path
        self.component = component


class NotRegularFileError(OSError):
    """The path names a device, socket or pipe, which the file tools never open."""


def _check_parts(parts: Sequence[str]) -> None:
    for part in parts:
        if part in ("", ".", "..") or os.sep in part or (os.altsep and os.altsep in part):
            raise ValueError(f"not a plain path component: {part!r}")


def _is_race(dir_fd: int | None, name: str) -> bool:
    """After ENOTDIR/ELOOP on a directory step: was it a symlink (or a directory again)?

    A regular file in the way is a genuine "Not a directory"; anything else means the
    entry changed between the open and this look.
    """
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return True
    return not stat.S_ISREG(st.st_mode)


def _open_dir(parent: int | None, name: str, full: Path, action: Action) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP) and _is_race(parent, name):
            raise PathChangedError(full, name, action) from exc
        raise


@contextlib.contextmanager
def open_directory(
    root: Path, parts: Sequence[str], *, create: bool = False, action: Action = "reading"
) -> Iterator[int]:
    """A descriptor for the directory `root/parts...`, each step opened with `O_NOFOLLOW`
    relative to the one before; with `create`, missing directories are made (0o777 less
    the umask, as `mkdir -p`). Closed on exit."""
    _check_parts(parts)
    full = root.joinpath(*parts)
    fd = _open_dir(None, str(root), root, action)
    try:
        for name in parts:
            try:
                child = _open_dir(fd, name, full, action)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):  # made by someone else meanwhile
                    os.mkdir(name, 0o777, dir_fd=fd)
                child = _open_dir(fd, name, full, action)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _split(parts: Sequence[str]) -> tuple[Sequence[str], str]:
    if not parts:
        raise IsADirectoryError(errno.EISDIR, "Is a directory")
    return parts[:-1], parts[-1]


def _existing(dir_fd: int, name: str, full: Path) -> tuple[bool, int | None]:
    """Whether `name` exists, and the permission bits to keep (those of a regular file)."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False, None
    if stat.S_ISLNK(st.st_mode):  # resolve() gave a symlink-free path: it changed since
        raise PathChangedError(full, name, "writing")
    return True, stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None


def _create_temp(dir_fd: int, name: str) -> tuple[str, int]:
    """A new file next to `name`, created with 0o666 so the umask applies as usual."""
    while True:
        tmp = f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            return tmp, os.open(tmp, _TEMP_FLAGS, 0o666, dir_fd=dir_fd)
        except FileExistsError:
            continue


def _write_all(fd: int, data: bytes) -> None:
    """`os.write` may write less than asked (a signal, a full disk): loop until done."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "the write made no progress")
        view = view[written:]


def write_file_at(root: Path, parts: Sequence[str], data: bytes) -> bool:
    """Atomically put `data` at `root/parts...`; True when the file is new.

    Same guarantees as `atomic.atomic_write` (old or new content, never a part, even
    after SIGKILL; the old mode kept; the temporary file removed on failure), but the
    parents are walked and made without following symlinks and the temporary file and
    the rename use the final directory's descriptor, so the file lands in the directory
    that was checked or nowhere.
    """
    if not SUPPORTED:
        return _fallback_write(root.joinpath(*parts), data)
    dirs, name = _split(parts)
    with open_directory(root, dirs, create=True, action="writing") as dir_fd:
        existed, mode = _existing(dir_fd, name, root.joinpath(*parts))
        tmp, fd = _create_temp(dir_fd, name)
        try:
            try:
                _write_all(fd, data)
                if mode is not None:
                    os.fchmod(fd, mode)
            finally:
                os.close(fd)
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
    return not existed


def _fallback_write(path: Path, data: bytes) -> bool:
    from qwen_code.atomic import atomic_write

    created = not path.exists()
    atomic_write(path, data)
    return created


def _regular_only(fd: int) -> None:
    """Refuse what is not a regular file; a FIFO was opened non-blocking, so the open
    itself could not hang, and reads block again from here on."""
    mode = os.fstat(fd).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory")
    if not stat.S_ISREG(mode):
        raise NotRegularFileError(errno.EINVAL, "Not a regular file (a device, socket or pipe)")
    if _NONBLOCK:
        os.set_blocking(fd, True)


def open_file_at(root: Path, parts: Sequence[str]) -> BinaryIO:
    """`root/parts...` opened for reading (binary), the final name with `O_NOFOLLOW`.

    Raises `FileNotFoundError`, `IsADirectoryError`, `NotRegularFileError` (devices,
    pipes, sockets), `PathChangedError` (a symlink on the way), or another `OSError`.
    """
    if not SUPPORTED:
        fd = os.open(root.joinpath(*parts), _READ_FLAGS)
    else:
        dirs, name = _split(parts)
        with open_directory(root, dirs) as dir_fd:
            try:
                fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise PathChangedError(root.joinpath(*parts), name, "reading") from exc
                raise
    try:
        _regular_only(fd)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_file_at(root: Path, parts: Sequence[str]) -> bytes:
    """The whole content of `root/parts...`, opened as `open_file_at` does."""
    with open_file_at(root, parts) as fh:
        return fh.read()


def list_names_at(root: Path, parts: Sequence[str], limit: int) -> list[str]:
    """Up to `limit` entry names of the directory `root/parts...` (walked as above)."""
    if not SUPPORTED:
        with os.scandir(root.joinpath(*parts)) as entries:
            return [e.name for _, e in zip(range(limit), entries, strict=False)]
    with open_directory(root, parts) as fd, os.scandir(fd) as entries:
        return [e.name for _, e in zip(range(limit), entries, strict=False)]
