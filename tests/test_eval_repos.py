"""Templates and workspaces for `qwen-code eval` (qwen_code/eval/repos.py, workspace.py),
with real git repositories, bundles, tarballs and a file:// URL made in tmp_path."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from qwen_code.eval import repos
from qwen_code.eval.repos import (
    EvalRepoError,
    Template,
    apply_hidden_tests,
    apply_test_patch,
    bundle_bytes,
    create_workspace,
    create_workspace_from_bundle,
    final_diff,
    prepare_template,
)

_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def sh_git(root: Path, *args: str, input: str | None = None) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args],
        cwd=root,
        env=_ENV,
        input=input,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def commit(root: Path, files: dict[str, str], message: str) -> str:
    write(root, files)
    sh_git(root, "add", "-A")
    sh_git(root, "commit", "-qm", message)
    return sh_git(root, "rev-parse", "HEAD").strip()


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, str, str]:
    """A repository with commits A (the task's) and B (the future fix, FIX-SECRET)."""
    repo = tmp_path / "src"
    repo.mkdir()
    sh_git(repo, "init", "-q", "-b", "trunk")
    a = commit(
        repo,
        {"calc.py": "def add(a, b):\n    return a - b\n", "tests/test_calc.py": "# t\n"},
        "A",
    )
    b = commit(repo, {"calc.py": "def add(a, b):\n    return a + b  # FIX-SECRET\n"}, "B")
    return repo, a, b


def blob_sha(text: str) -> str:
    return subprocess.run(
        ["git", "hash-object", "--stdin"], input=text, capture_output=True, text=True, check=True
    ).stdout.strip()


def workspace(template: Template, dest: Path) -> Path:
    create_workspace(template.path, dest)
    return dest


def test_template_holds_one_commit_and_no_future(history, tmp_path: Path) -> None:
    repo, a, _ = history
    template = prepare_template(str(repo), a, tmp_path / "cache")
    ws = workspace(template, tmp_path / "ws")
    assert (ws / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"
    assert sh_git(ws, "log", "--all", "--format=%H").split() == [template.base]
    assert sh_git(ws, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert sh_git(ws, "remote").strip() == ""
    objects = sh_git(ws, "cat-file", "--batch-all-objects", "--batch-check")
    future = blob_sha("def add(a, b):\n    return a + b  # FIX-SECRET\n")
    assert future not in objects
    assert a not in objects
    assert len(objects.splitlines()) == 5  # commit, root tree, tests tree, two blobs
    author = sh_git(ws, "log", "-1", "--format=%an <%ae> %at %cn %ct %s")
    assert (
        author.strip()
        == "qwen-code eval <eval@qwen-code.invalid> 946684800 qwen-code eval 946684800 base"
    )
    assert not (template.path / "hooks").exists()


def test_base_sha_is_the_same_from_every_kind_of_source(history, tmp_path: Path) -> None:
    repo, a, _ = history
    base = prepare_template(str(repo), a, tmp_path / "c1").base
    assert prepare_template(str(repo), a, tmp_path / "c2").base == base
    bundle = tmp_path / "src.bundle"
    sh_git(repo, "bundle", "create", "-q", str(bundle), "--all")
    assert prepare_template(str(bundle), a, tmp_path / "c3").base == base
    url = (tmp_path / "src").as_uri()
    cache = tmp_path / "c4"
    assert prepare_template(url, a, cache).base == base
    assert len(list((cache / "mirrors").glob("*.git"))) == 1
    sh_git(repo, "checkout", "-q", a)
    plain = tmp_path / "plain"
    shutil.copytree(repo, plain, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    assert prepare_template(str(plain), None, tmp_path / "c5").base == base


def test_url_mirror_fetches_a_commit_it_lacks(history, tmp_path: Path) -> None:
    repo, a, _ = history
    url = repo.as_uri()
    cache = tmp_path / "cache"
    prepare_template(url, a, cache)
    c = commit(repo, {"calc.py": "# C\n"}, "C")
    ws = workspace(prepare_template(url, c, cache), tmp_path / "ws")
    assert (ws / "calc.py").read_text() == "# C\n"


def test_head_and_branch_names_resolve(history, tmp_path: Path) -> None:
    repo, _, b = history
    assert (
        prepare_template(str(repo), None, tmp_path / "c").base
        == prepare_template(str(repo), "trunk", tmp_path / "c").base
        == prepare_template(str(repo), b, tmp_path / "c").base
    )


def test_missing_commit_and_missing_repo_are_clear_errors(history, tmp_path: Path) -> None:
    repo, _, _ = history
    with pytest.raises(EvalRepoError, match="commit 0123abc does not exist in"):
        prepare_template(str(repo), "0123abc", tmp_path / "cache")
    with pytest.raises(EvalRepoError, match="does not exist"):
        prepare_template(str(tmp_path / "nope"), None, tmp_path / "cache")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(EvalRepoError, match="not a git repository"):
        prepare_template(str(plain), "abc", tmp_path / "cache")
    assert not list((tmp_path / "cache" / "templates").glob(".tmp-*"))


def test_plain_directory_is_copied_whole_without_git(tmp_path: Path) -> None:
    src = tmp_path / "plain"
    write(src, {"a.txt": "a\n", ".gitignore": "build/\n", "build/out.txt": "o\n"})
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o755)
    (src / "link").symlink_to("/etc/hostname")
    cache = tmp_path / "cache"
    first = prepare_template(str(src), None, cache)
    ws = workspace(first, tmp_path / "ws")
    assert (ws / "build" / "out.txt").read_text() == "o\n"
    assert os.access(ws / "run.sh", os.X_OK)
    assert str((ws / "link").readlink()) == "/etc/hostname"
    assert prepare_template(str(src), None, cache) == first  # cached
    (src / "a.txt").write_text("changed, longer\n")
    assert prepare_template(str(src), None, cache).base != first.base  # a new fingerprint


def test_tarball_single_top_directory_and_git_inside(history, tmp_path: Path) -> None:
    repo, a, _ = history
    tarball = tmp_path / "src.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(repo, arcname="project-1.0")
    files_ws = workspace(prepare_template(str(tarball), None, tmp_path / "c"), tmp_path / "w1")
    assert "FIX-SECRET" in (files_ws / "calc.py").read_text()  # the files as they are
    assert sh_git(files_ws, "ls-files").split() == ["calc.py", "tests/test_calc.py"]
    at_a = prepare_template(str(tarball), a, tmp_path / "c")
    assert at_a.base == prepare_template(str(repo), a, tmp_path / "c2").base


def test_tarball_members_cannot_escape(tmp_path: Path) -> None:
    tarball = tmp_path / "evil.tar"
    with tarfile.open(tarball, "w") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 1
        tar.addfile(info, fileobj=io.BytesIO(b"x"))
    with pytest.raises(EvalRepoError, match="cannot extract"):
        prepare_template(str(tarball), None, tmp_path / "cache")
    assert not (tmp_path / "cache" / "escaped.txt").exists()


def test_concurrent_builders_of_one_key_agree(history, tmp_path: Path) -> None:
    repo, a, _ = history
    cache = tmp_path / "cache"
    results: list[Template] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(prepare_template(str(repo), a, cache))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1
    assert [p.name for p in (cache / "templates").iterdir()] == [results[0].path.name]


def test_a_builder_that_loses_the_race_uses_the_winners_template(
    history, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, a, _ = history
    cache = tmp_path / "cache"
    winner = prepare_template(str(repo), a, cache)
    marker = winner.path / "winner"
    marker.write_text("")
    real = repos._is_template
    looked: list[Path] = []

    def is_template(path: Path) -> bool:  # the loser looked before the winner moved its in
        looked.append(path)
        return real(path) if len(looked) > 1 else False

    monkeypatch.setattr(repos, "_is_template", is_template)
    assert prepare_template(str(repo), a, cache) == winner
    assert len(looked) == 2  # it built, its os.replace failed, it took the winner's
    assert marker.exists()
    assert [p.name for p in (cache / "templates").iterdir()] == [winner.path.name]


def test_workspaces_are_isolated(history, tmp_path: Path) -> None:
    repo, a, _ = history
    template = prepare_template(str(repo), a, tmp_path / "cache")
    one = workspace(template, tmp_path / "one")
    two = workspace(template, tmp_path / "two")
    (one / "calc.py").write_text("edited\n")
    sh_git(one, "commit", "-qam", "agent")
    for path in (one / ".git" / "objects").rglob("*"):
        if path.is_file():
            path.chmod(0o600)
            assert path.stat().st_nlink == 1
    assert (two / "calc.py").read_text().endswith("a - b\n")
    assert sh_git(two, "log", "--all", "--format=%H").split() == [template.base]
    three = workspace(template, tmp_path / "three")
    sh_git(three, "fsck", "--no-progress", "--no-dangling")  # whole


def test_workspace_from_a_bundle(history, tmp_path: Path) -> None:
    repo, a, _ = history
    template = prepare_template(str(repo), a, tmp_path / "cache")
    data = bundle_bytes(template.path)
    assert data.startswith(b"# v2 git bundle")
    ws = tmp_path / "far"
    create_workspace_from_bundle(data, ws)
    assert sh_git(ws, "rev-parse", "HEAD").strip() == template.base
    assert sh_git(ws, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert sh_git(ws, "remote").strip() == ""


def test_final_diff_has_new_files_and_the_agents_commits(history, tmp_path: Path) -> None:
    repo, a, _ = history
    template = prepare_template(str(repo), a, tmp_path / "cache")
    ws = workspace(template, tmp_path / "ws")
    assert final_diff(ws, template.base) == ""
    (ws / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    sh_git(ws, "commit", "-qam", "fix")  # committed by the agent
    write(ws, {"notes/new.md": "new\n", ".gitignore": "*.log\n", "debug.log": "noise\n"})
    (ws / "tests" / "test_calc.py").unlink()
    (ws / "blob.bin").write_bytes(b"\x00\x01\xff")
    diff = final_diff(ws, template.base)
    assert "+    return a + b" in diff
    assert "notes/new.md" in diff and "GIT binary patch" in diff
    assert "deleted file mode" in diff and "debug.log" not in diff
    assert "a/.git/" not in diff
    replay = workspace(template, tmp_path / "replay")
    sh_git(replay, "apply", "--binary", "-", input=diff)
    assert (replay / "calc.py").read_text() == (ws / "calc.py").read_text()
    assert (replay / "blob.bin").read_bytes() == b"\x00\x01\xff"


def test_final_diff_never_runs_the_workspaces_git_config(history, tmp_path: Path) -> None:
    repo, a, _ = history
    template = prepare_template(str(repo), a, tmp_path / "cache")
    ws = workspace(template, tmp_path / "ws")
    marker = tmp_path / "ran"
    sh_git(ws, "config", "filter.evil.clean", f"touch {marker}; cat")
    sh_git(ws, "config", "core.fsmonitor", f"touch {marker}")
    sh_git(ws, "config", "diff.external", f"touch {marker}")
    write(ws, {".gitattributes": "* filter=evil diff=evil\n", "calc.py": "x\n"})
    assert "+x" in final_diff(ws, template.base)
    assert not marker.exists()


def test_final_diff_of_a_broken_repository(history, tmp_path: Path) -> None:
    repo, a, _ = history
    template = prepare_template(str(repo), a, tmp_path / "cache")
    ws = workspace(template, tmp_path / "ws")
    shutil.rmtree(ws / ".git")
    assert final_diff(ws, template.base) == ""
    with pytest.raises(EvalRepoError, match="no git repository"):
        final_diff(ws, template.base, strict=True)


def test_hidden_tests_are_copied_over_and_never_through_a_symlink(history, tmp_path: Path) -> None:
    repo, a, _ = history
    ws = workspace(prepare_template(str(repo), a, tmp_path / "cache"), tmp_path / "ws")
    hidden = tmp_path / "hidden"
    write(hidden, {"tests/test_calc.py": "# hidden\n", "tests/deep/test_more.py": "# more\n"})
    outside = tmp_path / "outside"
    outside.mkdir()
    (ws / "tests" / "test_calc.py").write_text("# the agent's version\n")
    (ws / "tests" / "deep").symlink_to(outside)  # the agent's trap
    copied = apply_hidden_tests(ws, hidden)
    assert copied == ["tests/test_calc.py", "tests/deep/test_more.py"]
    assert (ws / "tests" / "test_calc.py").read_text() == "# hidden\n"
    assert (ws / "tests" / "deep" / "test_more.py").read_text() == "# more\n"
    assert not (ws / "tests" / "deep").is_symlink()
    assert list(outside.iterdir()) == []


TEST_PATCH = """\
diff --git a/tests/test_calc.py b/tests/test_calc.py
--- a/tests/test_calc.py
+++ b/tests/test_calc.py
@@ -1 +1,2 @@
 # t
+# from the test patch
diff --git a/tests/test_new.py b/tests/test_new.py
new file mode 100644
--- /dev/null
+++ b/tests/test_new.py
@@ -0,0 +1 @@
+# new test
"""


def test_test_patch_applies_over_the_agents_edits(history, tmp_path: Path) -> None:
    repo, a, _ = history
    template = prepare_template(str(repo), a, tmp_path / "cache")
    ws = workspace(template, tmp_path / "ws")
    (ws / "tests" / "test_calc.py").write_text("# the agent rewrote the test\n")
    (ws / "tests" / "test_new.py").write_text("# the agent made this too\n")
    (ws / "calc.py").write_text("# the agent's fix\n")
    apply_test_patch(ws, TEST_PATCH, template.base)
    assert (ws / "tests" / "test_calc.py").read_text() == "# t\n# from the test patch\n"
    assert (ws / "tests" / "test_new.py").read_text() == "# new test\n"
    assert (ws / "calc.py").read_text() == "# the agent's fix\n"


def test_a_test_patch_that_does_not_apply(history, tmp_path: Path) -> None:
    repo, a, _ = history
    template = prepare_template(str(repo), a, tmp_path / "cache")
    ws = workspace(template, tmp_path / "ws")
    bad = TEST_PATCH.replace(" # t\n", " # not what is there\n")
    with pytest.raises(EvalRepoError, match="applying the test patch failed"):
        apply_test_patch(ws, bad, template.base)
    with pytest.raises(EvalRepoError, match="reading the test patch failed"):
        apply_test_patch(ws, "this is not a patch\n", template.base)
