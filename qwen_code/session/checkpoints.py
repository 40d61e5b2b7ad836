"""Checkpoints: snapshots of the workspace in a shadow git repository, to undo changes.

The shadow repository lives in `$QWEN_HOME/history/<project-id>/` and uses the project
as its work tree (`GIT_DIR` + `GIT_WORK_TREE`), so the user's own `.git`, index, branches
and stash are never touched, and directories that are not git repositories work too.
The project's `.gitignore` files are honoured, and a default exclude list keeps large
build and dependency folders out, and new files over 10 MB are left out. Each checkpoint
is a commit whose message holds JSON metadata; the conversation at that point is saved
next to it, so `/restore` can put back both the files and the conversation.

A checkpoint is made in two steps: `snapshot` (stage, write the tree, commit it with no
ref pointing at it; run in the background while the model answers) and `adopt` (point
the ref at it and save the conversation; at the prompt's first change, no git call).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_code.config import project_id, project_root

REF = "refs/heads/checkpoints"
DEFAULT_EXCLUDES = (
    "node_modules/",
    ".venv/",
    "venv/",
    "__pycache__/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    ".tox/",
    ".gradle/",
    ".next/",
    ".cache/",
    "target/",
    "*.pyc",
)


MAX_FILE_BYTES = 10 * 1024 * 1024
"""New files larger than this are not snapshotted (see `_exclude_large_new_files`)."""


def _ignore_pattern(name: str) -> str:
    """A gitignore pattern that matches exactly this path (special characters escaped)."""
    escaped = "".join("\\" + c if c in "\\*?[]!#" else c for c in name)
    return escaped[:-1] + "\\ " if escaped.endswith(" ") else escaped


class CheckpointError(Exception):
    """A checkpoint could not be made or restored; the message says why."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    id: str
    created: float
    session_id: str
    turn: int
    prompt: str
    changed: tuple[str, ...] = ()
    """Files that differ between the checkpoint and the workspace now."""


@dataclass(frozen=True, slots=True)
class Restored:
    checkpoint: Checkpoint
    restored: tuple[str, ...]
    deleted: tuple[str, ...]
    messages: list[dict[str, Any]] | None = field(default=None)
    undo_id: str | None = None
    """A checkpoint of the state just before this restore (None when nothing changed)."""


class _RepoLock:
    """A reentrant lock that also holds an exclusive `flock` on a file while held (where
    the platform has one), so concurrent qwen-code processes take turns."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        self._depth += 1
        if self._depth == 1:
            try:
                self._fd = _flock(self._path)
            except BaseException:
                self._depth -= 1
                self._thread_lock.release()
                raise

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None
        self._thread_lock.release()


def _flock(path: Path) -> int | None:
    try:
        import fcntl
    except ImportError:  # no flock (Windows): threads still take turns
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # an unwritable home: git reports the real problem
        return None
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The work tree recorded as a commit, not yet a checkpoint (see `adopt`)."""

    tree: str
    commit: str
    parent: str | None
    message: str


class Checkpoints:
    def __init__(self, home: Path, cwd: Path) -> None:
        self.root = project_root(cwd.resolve())
        self.git_dir = home / "history" / project_id(cwd)
        self._git_cmd: Any = None
        self._lock = _RepoLock(self.git_dir / "qwen-code.lock")
        """One git operation at a time, across threads (snapshots run in the background)
        and across processes (two sessions in one project share the shadow index)."""

    # --- plumbing ---------------------------------------------------------------------

    def _git(self, *args: str) -> str:
        if self._git_cmd is None:
            with self._lock:
                if self._git_cmd is None:
                    self._git_cmd = self._open()
        try:
            return str(self._git_cmd.execute(["git", *args], with_extended_output=False))
        except Exception as exc:  # gitpython's GitCommandError carries git's stderr
            raise CheckpointError(f"git {' '.join(args[:2])} failed: {exc}") from exc

    def _open(self) -> Any:
        import git  # gitpython: imported on the first checkpoint, not at start-up

        cmd = git.Git(str(self.root))
        cmd.update_environment(
            GIT_DIR=str(self.git_dir),
            GIT_WORK_TREE=str(self.root),
            GIT_AUTHOR_NAME="qwen-code",
            GIT_AUTHOR_EMAIL="checkpoints@qwen-code.invalid",
            GIT_COMMITTER_NAME="qwen-code",
            GIT_COMMITTER_EMAIL="checkpoints@qwen-code.invalid",
        )
        if not (self.git_dir / "HEAD").exists():
            self.git_dir.mkdir(parents=True, exist_ok=True)
            cmd.execute(["git", "init", "--quiet"])
            cmd.execute(["git", "symbolic-ref", "HEAD", REF])
            for key, value in (
                ("core.autocrlf", "false"),
                ("gc.auto", "0"),
                ("core.quotepath", "false"),
            ):
                cmd.execute(["git", "config", key, value])
            exclude = self.git_dir / "info" / "exclude"
            exclude.parent.mkdir(parents=True, exist_ok=True)
            exclude.write_text("\n".join(self._excludes()) + "\n", encoding="utf-8")
        return cmd

    def _excludes(self) -> list[str]:
        """The default excludes, plus qwen-code's own home when it lies inside the project
        (its sessions and this very repository must not be snapshotted)."""
        patterns = list(DEFAULT_EXCLUDES)
        home = self.git_dir.parent.parent.resolve()
        if home.is_relative_to(self.root):
            patterns.append("/" + home.relative_to(self.root).as_posix() + "/")
        return patterns

    def _stage(self) -> str:
        """Stage the whole work tree into the shadow index; return its tree id."""
        self._exclude_large_new_files()
        self._git("add", "--all", "--", ".")
        return self._git("write-tree").strip()

    def _exclude_large_new_files(self) -> None:
        """Files not snapshotted yet that are over MAX_FILE_BYTES (a dataset, a build
        artifact nobody ignored) are added to the shadow repository's exclude list: they
        would fill `$QWEN_HOME` and slow every snapshot. They are left alone on restore,
        like ignored files."""
        listed = self._git("ls-files", "--others", "--exclude-standard", "-z")
        large = []
        for name in filter(None, listed.split("\0")):
            if "\n" in name:  # cannot be written as a pattern; a rare name, snapshotted
                continue
            try:
                size = os.lstat(self.root / name).st_size
            except OSError:
                continue
            if size > MAX_FILE_BYTES:
                large.append(name)
        if large:
            with (self.git_dir / "info" / "exclude").open("a", encoding="utf-8") as exclude:
                exclude.writelines(f"/{_ignore_pattern(name)}\n" for name in large)

    def _head(self) -> str | None:
        try:
            return self._git("rev-parse", "--verify", "--quiet", REF).strip() or None
        except CheckpointError:
            return None

    # --- the API ----------------------------------------------------------------------

    def warm(self) -> None:
        """Import gitpython and create the shadow repository if needed."""
        try:
            with self._lock:
                if self._git_cmd is None:
                    self._git_cmd = self._open()
        except Exception as exc:  # no git binary, unwritable home: checkpoints just fail later
            raise CheckpointError(str(exc)) from exc

    def snapshot(self, *, session_id: str, turn: int, prompt: str) -> Snapshot:
        """Record the work tree as a commit that no ref points to yet (three git calls:
        stage everything, write the tree, commit it). Cheap to throw away: a prompt that
        changes nothing never adopts its snapshot."""
        meta = {"session": session_id, "turn": turn, "prompt": prompt[:200], "time": time.time()}
        message = json.dumps(meta, ensure_ascii=False)
        with self._lock:
            tree = self._stage()
            parent = self._ref_value()
            return Snapshot(tree, self._commit_tree(tree, parent, message), parent, message)

    def adopt(self, snapshot: Snapshot, messages: list[dict[str, Any]]) -> str:
        """Make a snapshot a checkpoint, with the conversation to restore; returns its id.
        Usually no git call at all: the ref is written directly."""
        with self._lock:
            commit, current = snapshot.commit, self._ref_value()
            if current != snapshot.parent:  # another session checkpointed in between
                commit = self._commit_tree(snapshot.tree, current, snapshot.message)
            from qwen_code.atomic import atomic_write

            atomic_write(self.git_dir / REF, f"{commit}\n".encode("ascii"))
            self._save_messages(commit, messages)
            return commit

    def create(
        self, *, session_id: str, turn: int, prompt: str, messages: list[dict[str, Any]]
    ) -> str:
        """Snapshot the work tree now and make it a checkpoint; returns the checkpoint id."""
        with self._lock:
            snapshot = self.snapshot(session_id=session_id, turn=turn, prompt=prompt)
            return self.adopt(snapshot, messages)

    def _commit_tree(self, tree: str, parent: str | None, message: str) -> str:
        args = ["commit-tree", "--no-gpg-sign", tree, "-m", message]
        if parent:
            args += ["-p", parent]
        return self._git(*args).strip()

    def _ref_value(self) -> str | None:
        ref = self.git_dir / REF
        if ref.is_file():
            return ref.read_text(encoding="ascii").strip() or None
        return self._head()

    def list(self, *, session_id: str | None = None, limit: int = 50) -> list[Checkpoint]:
        """Newest first; `changed` lists what restoring each would change."""
        with self._lock:
            found = []
            entries = self._log(limit * 4)
            if entries:
                self._stage()
            for commit, ctime, body in entries:
                checkpoint = self._parse(commit, ctime, body)
                if session_id is None or checkpoint.session_id == session_id:
                    found.append(checkpoint)
                if len(found) >= limit:
                    break
            return found

    def _log(self, limit: int) -> list[tuple[str, str, str]]:
        """(commit, commit time, message) of the newest checkpoints."""
        if self._ref_value() is None:
            return []
        log = self._git("log", f"-{limit}", "--format=%H%x00%ct%x00%B%x1e", REF)
        entries = [tuple(entry.strip().split("\x00")) for entry in log.split("\x1e")]
        return [e for e in entries if len(e) == 3]  # type: ignore[misc]

    def _parse(self, commit: str, ctime: str, body: str) -> Checkpoint:
        try:
            meta = json.loads(body)
        except ValueError:
            meta = {}
        changed = self._git("diff", "--cached", "--name-only", commit).split("\n")
        return Checkpoint(
            id=commit,
            created=float(meta.get("time") or ctime),
            session_id=str(meta.get("session", "")),
            turn=int(meta.get("turn") or 0),
            prompt=str(meta.get("prompt", "")),
            changed=tuple(c for c in changed if c),
        )

    def find(self, prefix: str) -> Checkpoint:
        with self._lock:
            for commit, ctime, body in self._log(100_000):
                if commit.startswith(prefix.strip()):
                    self._stage()
                    return self._parse(commit, ctime, body)
        raise CheckpointError(f"No checkpoint {prefix!r} in {self.git_dir}.")

    def restore(self, prefix: str, *, current: list[dict[str, Any]] | None = None) -> Restored:
        """Put the work tree back as it was at the checkpoint: changed and deleted files
        come back, files created since are removed. Ignored files are left alone.

        The state just before (files, and `current` as the conversation) is saved as a
        checkpoint first, so a restore can itself be undone."""
        with self._lock:
            checkpoint = self.find(prefix)
            undo_id = None
            if checkpoint.changed or current is not None:
                undo_id = self.create(
                    session_id=checkpoint.session_id,
                    turn=0,
                    prompt=f"(before restoring {checkpoint.id[:8]})",
                    messages=current or [],
                )
            added = self._git(
                "diff", "--cached", "--name-only", "--diff-filter=A", checkpoint.id
            ).split("\n")
            deleted = []
            for name in filter(None, added):
                path = self.root / name
                if path.is_file() or path.is_symlink():
                    path.unlink()
                    deleted.append(name)
            self._git("read-tree", checkpoint.id)
            restored = tuple(c for c in checkpoint.changed if c not in deleted)
            for start in range(0, len(restored), 200):
                self._git("checkout-index", "--force", "--", *restored[start : start + 200])
            messages = self._load_messages(checkpoint.id)
            return Restored(checkpoint, restored, tuple(deleted), messages, undo_id)

    def _messages_path(self, commit: str) -> Path:
        return self.git_dir / "conversations" / f"{commit}.json"

    def _save_messages(self, commit: str, messages: list[dict[str, Any]]) -> None:
        from qwen_code.atomic import atomic_write

        data = json.dumps(messages, ensure_ascii=False).encode("utf-8")
        atomic_write(self._messages_path(commit), data)

    def _load_messages(self, commit: str) -> list[dict[str, Any]] | None:
        try:
            data = json.loads(self._messages_path(commit).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, list) else None
