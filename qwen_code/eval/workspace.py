"""A run's workspace: a clone of its template (`repos.prepare_template`), the agent's final
diff, and the hidden tests or test patch put in after the agent stops.

The workspace's `.git` was in the agent's hands: its config could name a filter, an
fsmonitor or a diff driver that runs a command, and it runs here, outside the sandbox. So
every git command after the agent (`final_diff`, `apply_test_patch`) uses a private,
empty git directory whose object store borrows the workspace's objects (alternates), with
a private index: only the workspace's files and objects are read, never its config.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from qwen_code.eval.gitrun import BRANCH, EvalRepoError, git, git_env

WORKSPACE_IDENTITY = ("qwen-code eval", "eval@qwen-code.invalid")
"""user.name/user.email in each workspace, so an agent's `git commit` works anywhere."""


def create_workspace(template: Path, dest: Path) -> None:
    """Clone the template to `dest` (which must not exist, or be empty): HEAD is the base
    commit on `main`, no remote, no hardlinks into the template."""
    _clone(Path(template), Path(dest), what="creating the workspace")


def bundle_bytes(template: Path) -> bytes:
    """The template as a git bundle (`--all`), for a worker on another machine."""
    return git(
        "bundle", "create", "-q", "-", "--all", cwd=Path(template), what="bundling the template"
    )


def create_workspace_from_bundle(data: bytes, dest: Path) -> None:
    """`create_workspace` from `bundle_bytes`' output."""
    dest = Path(dest)
    fd, name = tempfile.mkstemp(suffix=".bundle", prefix="qwen-eval-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        _clone(Path(name), dest, what="creating the workspace from the bundle")
    finally:
        Path(name).unlink(missing_ok=True)


def _clone(source: Path, dest: Path, *, what: str) -> None:
    name, email = WORKSPACE_IDENTITY
    git(
        "clone", "-q", "--no-hardlinks", "-b", BRANCH,
        "-c", f"user.name={name}", "-c", f"user.email={email}",
        source, dest, what=what,
    )  # fmt: skip
    git("remote", "remove", "origin", cwd=dest, what=what)


def final_diff(workspace: Path, base: str, *, strict: bool = False) -> str:
    """The agent's change against `base`: every file of the work tree (new ones too, not
    ignored ones; commits the agent made count by their files) as `git diff --binary`.
    "" when there is none, or when the workspace's git repository is broken (`strict`:
    EvalRepoError then)."""
    workspace = Path(workspace)
    try:
        with private_git(workspace) as env:
            git("read-tree", base, cwd=workspace, env=env, what="reading the base commit")
            git("add", "-A", cwd=workspace, env=env, what="staging the agent's change")
            out = git(
                "diff", "--cached", "--binary", "--no-color", "--no-ext-diff", "--no-textconv",
                base, cwd=workspace, env=env, what="diffing the agent's change",
            )  # fmt: skip
    except EvalRepoError:
        if strict:
            raise
        return ""
    return out.decode("utf-8", "replace")


@contextlib.contextmanager
def private_git(workspace: Path) -> Iterator[dict[str, str]]:
    """An environment for git on `workspace` that reads its files and objects but not its
    `.git/config`, hooks or index (see the module's docstring)."""
    objects = workspace / ".git" / "objects"
    if not objects.is_dir():
        raise EvalRepoError(f"the workspace {workspace} has no git repository.")
    with tempfile.TemporaryDirectory(prefix="qwen-eval-git-") as tmp:
        gitdir = Path(tmp) / "git"
        git("init", "-q", "--bare", "--template=", gitdir, what="creating a private git dir")
        yield git_env(
            {
                "GIT_DIR": gitdir,
                "GIT_WORK_TREE": workspace,
                "GIT_INDEX_FILE": Path(tmp) / "index",
                "GIT_ALTERNATE_OBJECT_DIRECTORIES": objects.resolve(),
            }
        )


def apply_hidden_tests(workspace: Path, hidden_dir: Path) -> list[str]:
    """Copy every file under `hidden_dir` into the workspace at the same relative path,
    over whatever the agent left there (a symlink the agent put on the way is replaced, not
    followed); the relative paths copied."""
    workspace, hidden_dir = Path(workspace), Path(hidden_dir)
    if not hidden_dir.is_dir():
        raise EvalRepoError(f"the hidden tests directory {hidden_dir} does not exist.")
    copied = []
    for dirpath, dirnames, filenames in os.walk(hidden_dir):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in sorted(filenames):
            src = Path(dirpath, name)
            rel = src.relative_to(hidden_dir)
            try:
                dst = _writable_target(workspace, rel)
                shutil.copyfile(src, dst)
                shutil.copymode(src, dst)
            except OSError as exc:
                raise EvalRepoError(f"copying the hidden test {rel} failed: {exc}") from None
            copied.append(rel.as_posix())
    return copied


def _writable_target(root: Path, rel: Path) -> Path:
    """`root/rel`, with every directory on the way a real directory (a symlink or file in
    the way is removed) and nothing at the path itself."""
    current = root
    for part in rel.parts[:-1]:
        current = current / part
        if current.is_symlink() or (current.exists() and not current.is_dir()):
            current.unlink()
        current.mkdir(exist_ok=True)
    target = current / rel.name
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        shutil.rmtree(target)
    return target


def apply_test_patch(workspace: Path, patch_text: str, base: str) -> None:
    """Reset the files the patch touches to `base` (deleting those not in it), then `git
    apply` the patch to the work tree."""
    workspace = Path(workspace)
    patch = patch_text.encode()
    if not patch.endswith(b"\n"):
        patch += b"\n"
    with private_git(workspace) as env:
        paths = _patch_paths(workspace, patch, env)
        listed = git("ls-tree", "-r", "-z", "--name-only", base, "--", *paths,
                     cwd=workspace, env=env, what="reading the base commit")  # fmt: skip
        in_base = [p for p in listed.decode("utf-8", "surrogateescape").split("\0") if p]
        if in_base:
            git("checkout", base, "--", *in_base, cwd=workspace, env=env,
                what="resetting the test files")  # fmt: skip
        for rel in sorted(set(paths) - set(in_base)):
            _remove_new_file(workspace, rel)
        git("apply", "--whitespace=nowarn", "-", cwd=workspace, env=env, input=patch,
            what="applying the test patch")  # fmt: skip


def _patch_paths(workspace: Path, patch: bytes, env: dict[str, str]) -> list[str]:
    """Every path the patch names (both sides of a rename)."""
    out = git("apply", "--numstat", "-z", "-", cwd=workspace, env=env, input=patch,
              what="reading the test patch")  # fmt: skip
    fields = out.decode("utf-8", "surrogateescape").split("\0")
    paths: list[str] = []
    i = 0
    while i < len(fields):
        entry = fields[i]
        if not entry:
            i += 1
            continue
        name = entry.split("\t", 2)[2] if entry.count("\t") >= 2 else ""
        if name:
            paths.append(name)
            i += 1
        else:  # a rename: "added\tdeleted\t", then the old and the new path
            paths += [p for p in fields[i + 1 : i + 3] if p]
            i += 3
    return list(dict.fromkeys(paths))


def _remove_new_file(workspace: Path, rel: str) -> None:
    """Delete `workspace/rel` (not in the base), unless the way there leaves the
    workspace through a symlink (then there is nothing of the workspace's to delete)."""
    current = workspace
    parts = Path(rel).parts
    for part in parts[:-1]:
        current = current / part
        if current.is_symlink() or not current.is_dir():
            return
    target = current / parts[-1]
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        shutil.rmtree(target)
