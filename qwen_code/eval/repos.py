"""A task's repository as a *template*: a bare git repository in the cache holding only the
files of the task's commit, as one commit with a fixed author, committer, date and message
(so its sha, the run's base, is the same on every machine) and no other history (an agent
must not find the future fix with `git log --all` or `git cat-file --batch-all-objects`).

Sources: a local git repository (or bare mirror), a plain directory, a git bundle, a
tarball, or a git URL (cloned once with `--mirror` into `CACHE/mirrors/`). For a git source
the template's tree is the commit's own tree object, copied with its blobs (rev-list |
pack-objects | index-pack), so every file is exactly as committed: no `export-ignore`, no
filters, no eol conversion, symlinks kept. Templates are built in a temporary directory and
moved into `CACHE/templates/` with `os.replace`: concurrent builders of one key are safe,
the loser uses the winner's.

Workspaces (`create_workspace`, `workspace.py`) are clones of a template.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from qwen_code.eval.gitrun import BRANCH, EvalRepoError, git, git_env, git_pipe, run_git
from qwen_code.eval.workspace import (
    apply_hidden_tests,
    apply_test_patch,
    bundle_bytes,
    create_workspace,
    create_workspace_from_bundle,
    final_diff,
)

__all__ = [
    "BASE_AUTHOR",
    "EvalRepoError",
    "Template",
    "apply_hidden_tests",
    "apply_test_patch",
    "bundle_bytes",
    "create_workspace",
    "create_workspace_from_bundle",
    "final_diff",
    "is_url",
    "prepare_template",
]

URL_PREFIXES = ("https://", "http://", "ssh://", "git@", "file://", "git://")
TARBALL_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
BASE_AUTHOR = ("qwen-code eval", "eval@qwen-code.invalid")
BASE_DATE = "946684800 +0000"
"""2000-01-01T00:00:00Z: every template's commit has this author/committer date."""
BASE_MESSAGE = "base"


@dataclass(frozen=True)
class Template:
    path: Path
    """A bare git repository: one commit on `main`, the task's files."""
    base: str
    """That commit's sha: what the agent's change is diffed against."""


def is_url(repo: str) -> bool:
    return repo.startswith(URL_PREFIXES)


def prepare_template(repo: str, commit: str | None, cache_dir: Path) -> Template:
    """The template for `repo` at `commit` (None: HEAD, or the files as they are), built
    once per key in `cache_dir/templates/`."""
    cache_dir = Path(cache_dir).expanduser().absolute()
    (cache_dir / "templates").mkdir(parents=True, exist_ok=True)
    kind, source = _classify(repo, cache_dir, commit)
    rev = commit
    if kind == "git":
        rev = identity = _resolve(source, commit, _label(repo))
    elif kind == "dir":
        if commit:
            raise EvalRepoError(f"{repo} is not a git repository, so commit {commit} cannot apply.")
        identity = _fingerprint(source)
    else:
        stat = source.stat()
        identity = f"{stat.st_size}:{stat.st_mtime_ns}"
    key = hashlib.sha256(f"{repo}\0{commit or ''}\0{identity}".encode()).hexdigest()[:40]
    final = cache_dir / "templates" / f"{key}.git"
    if not _is_template(final):
        _build(final, kind, source, rev, _label(repo), cache_dir)
    return Template(path=final, base=_head(final))


def _label(repo: str) -> str:
    """The repository for messages: a URL without its user and password."""
    return re.sub(r"^([a-z+]+://)[^/@]+@", r"\1", repo)


def _classify(repo: str, cache_dir: Path, commit: str | None) -> tuple[str, Path]:
    """(kind, path): git (a git directory to read), dir, bundle or tarball."""
    if is_url(repo):
        return "git", _mirror(repo, commit, cache_dir)
    path = Path(repo).expanduser().absolute()
    if path.is_dir():
        return ("git" if _is_git_dir(path) else "dir"), path
    if path.is_file():
        if _is_bundle(path):
            return "bundle", path
        if path.name.lower().endswith(TARBALL_SUFFIXES) or tarfile.is_tarfile(path):
            return "tarball", path
        raise EvalRepoError(f"{repo} is neither a directory, a git bundle nor a tarball.")
    raise EvalRepoError(f"{repo} does not exist.")


def _is_git_dir(path: Path) -> bool:
    """A work tree (`.git` directory or file) or a bare repository (a mirror)."""
    if (path / ".git").exists():
        return True
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def _is_bundle(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(16).startswith((b"# v2 git bundle", b"# v3 git bundle"))
    except OSError:
        return False


def _resolve(source: Path, commit: str | None, label: str) -> str:
    rev = commit or "HEAD"
    proc = run_git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", cwd=source)
    if proc.returncode != 0:
        if commit:
            raise EvalRepoError(f"commit {commit} does not exist in {label}.")
        raise EvalRepoError(f"{label} has no commit to check out (HEAD is unborn).")
    return proc.stdout.decode().strip()


def _fingerprint(root: Path) -> str:
    """Names, sizes, modes and mtimes of a plain directory's files: a changed file makes a
    new template."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in sorted(filenames):
            path = Path(dirpath, name)
            with contextlib.suppress(OSError):
                st = path.lstat()
                rel = path.relative_to(root).as_posix()
                digest.update(f"{rel}\0{st.st_size}\0{st.st_mode}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _is_template(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir()


def _head(template: Path) -> str:
    return (
        git("rev-parse", f"refs/heads/{BRANCH}", cwd=template, what="reading the template")
        .decode()
        .strip()
    )


def _build(
    final: Path, kind: str, source: Path, commit: str | None, repo: str, cache_dir: Path
) -> None:
    tmp = final.with_name(f".tmp-{final.stem}-{uuid.uuid4().hex[:8]}")
    scratch_root = cache_dir / "tmp"
    scratch_root.mkdir(exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=scratch_root) as scratch:
            _init_bare(tmp)
            tree = _tree_into(tmp, kind, source, commit, repo, Path(scratch))
            _commit_base(tmp, tree)
        try:
            tmp.replace(final)
        except OSError as exc:
            if not _is_template(final):  # not a lost race: a real failure
                raise EvalRepoError(f"cannot store the template in {final}: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _init_bare(path: Path) -> None:
    git("init", "-q", "--bare", "--template=", path, what="creating a template")
    git("symbolic-ref", "HEAD", f"refs/heads/{BRANCH}", cwd=path)


def _tree_into(
    dest: Path, kind: str, source: Path, commit: str | None, repo: str, scratch: Path
) -> str:
    """Put the source's files into the bare repository `dest`; their tree's sha."""
    if kind == "git":
        assert commit is not None
        return _copy_tree(source, commit, dest)
    if kind == "dir":
        return _add_files(source, dest, scratch)
    if kind == "bundle":
        clone = scratch / "bundle.git"
        git("clone", "-q", "--bare", source, clone, what=f"reading the bundle {repo}")
        return _copy_tree(clone, _resolve(clone, commit, repo), dest)
    root = _extract(source, scratch / "files", repo)
    if _is_git_dir(root) and commit:
        return _copy_tree(root, _resolve(root, commit, repo), dest)
    if commit:
        raise EvalRepoError(f"{repo} holds no git repository, so commit {commit} cannot apply.")
    return _add_files(root, dest, scratch)


def _copy_tree(source: Path, commit: str, dest: Path) -> str:
    """Copy `commit`'s tree object and everything under it (not the commit, nor any other)
    from the repository `source` into `dest`; the tree's sha."""
    tree = git("rev-parse", f"{commit}^{{tree}}", cwd=source).decode().strip()
    objects = git("rev-list", "--objects", tree, cwd=source, what="listing the commit's files")
    with tempfile.TemporaryFile() as listing:
        listing.write(objects)
        listing.seek(0)
        git_pipe(
            ("pack-objects", "-q", "--stdout"),
            ("index-pack", "--stdin"),
            source=source,
            dest=dest,
            stdin=listing,
            what="copying the commit's files",
        )
    return tree


def _add_files(root: Path, dest: Path, scratch: Path) -> str:
    """`git add -A -f` of a plain directory (ignored files too, not `.git`) into `dest`."""
    env = git_env({"GIT_DIR": dest, "GIT_WORK_TREE": root, "GIT_INDEX_FILE": scratch / "index"})
    git("add", "-A", "-f", cwd=root, env=env, what="adding the files")
    return git("write-tree", cwd=root, env=env).decode().strip()


def _commit_base(dest: Path, tree: str) -> None:
    name, email = BASE_AUTHOR
    env = git_env(
        {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_AUTHOR_DATE": BASE_DATE,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
            "GIT_COMMITTER_DATE": BASE_DATE,
        }
    )
    sha = git("commit-tree", tree, "-m", BASE_MESSAGE, cwd=dest, env=env).decode().strip()
    git("update-ref", f"refs/heads/{BRANCH}", sha, cwd=dest)


def _extract(tarball: Path, dest: Path, label: str) -> Path:
    """Extract safely (tarfile's "data" filter, absolute or outward symlinks kept as
    links); a single top-level directory becomes the root."""
    dest.mkdir()
    try:
        with tarfile.open(tarball) as tar:
            tar.extractall(dest, filter=_extract_filter)
    except (tarfile.TarError, OSError) as exc:
        raise EvalRepoError(f"cannot extract {label}: {exc}") from None
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return dest


def _extract_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    try:
        return tarfile.data_filter(member, dest)
    except (tarfile.AbsoluteLinkError, tarfile.LinkOutsideDestinationError):
        if member.issym():  # a link is harmless; writing through it is still refused
            return tarfile.tar_filter(member, dest)
        raise


def _mirror(url: str, commit: str | None, cache_dir: Path) -> Path:
    """`git clone --mirror` of the URL, once, in `cache_dir/mirrors/`; fetched again when
    the commit is missing."""
    mirrors = cache_dir / "mirrors"
    mirrors.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(url.encode()).hexdigest()[:40]
    path = mirrors / f"{name}.git"
    with _locked(mirrors / f"{name}.lock"):
        if not _is_template(path):
            tmp = mirrors / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
            try:
                git("clone", "-q", "--mirror", url, tmp, what=f"cloning {_label(url)}")
                tmp.replace(path)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        elif commit and not _has_commit(path, commit):
            run_git("fetch", "-q", "--prune", "origin", cwd=path)
            if not _has_commit(path, commit):
                run_git("fetch", "-q", "origin", commit, cwd=path)
    return path


def _has_commit(path: Path, commit: str) -> bool:
    proc = run_git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", cwd=path)
    return proc.returncode == 0


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock file (fcntl, where there is one): one clone or fetch at a time."""
    try:
        import fcntl
    except ImportError:  # Windows: the os.replace dance still keeps the mirror whole
        yield
        return
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
