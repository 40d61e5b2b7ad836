"""safe_paths and the Workspace file methods: the descriptor walk writes and reads only the
directory that was checked; a symlink met on the way (the state a swap race leaves
between the check and the access) fails the call and touches nothing outside."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qwen_code.tools import safe_paths
from qwen_code.tools.base import ToolContext, ToolError
from qwen_code.tools.edit import EditTool
from qwen_code.tools.read import ReadFileTool
from qwen_code.tools.safe_paths import (
    NotRegularFileError,
    PathChangedError,
    list_names_at,
    open_file_at,
    read_file_at,
    write_file_at,
)
from qwen_code.tools.workspace import Workspace
from qwen_code.tools.write import WriteFileTool

needs_walk = pytest.mark.skipif(not safe_paths.SUPPORTED, reason="no dir_fd support here")


def test_write_creates_parents_keeps_mode_and_leaves_no_temp(root: Path) -> None:
    assert write_file_at(root, ("a", "b", "run.sh"), b"#!/bin/sh\n") is True
    target = root / "a" / "b" / "run.sh"
    assert target.read_bytes() == b"#!/bin/sh\n"
    target.chmod(0o750)
    assert write_file_at(root, ("a", "b", "run.sh"), b"#!/bin/sh\necho hi\n") is False
    assert target.read_bytes() == b"#!/bin/sh\necho hi\n"
    assert target.stat().st_mode & 0o777 == 0o750
    assert [p.name for p in target.parent.iterdir()] == ["run.sh"]


def test_new_file_and_new_directories_follow_the_umask(root: Path) -> None:
    umask = os.umask(0o027)
    try:
        write_file_at(root, ("d", "new.txt"), b"x")
    finally:
        os.umask(umask)
    assert (root / "d" / "new.txt").stat().st_mode & 0o777 == 0o640
    assert (root / "d").stat().st_mode & 0o777 == 0o750


def test_write_over_a_directory_fails_and_cleans_up(root: Path) -> None:
    (root / "dir" / "inside").mkdir(parents=True)
    with pytest.raises(OSError):
        write_file_at(root, ("dir",), b"cannot replace a directory")
    assert [p.name for p in root.iterdir()] == ["dir"]
    with pytest.raises(IsADirectoryError):
        write_file_at(root, (), b"the root itself")


@needs_walk
@pytest.mark.parametrize("depth", [1, 2])
def test_a_symlinked_directory_on_the_way_is_refused(root: Path, outside: Path, depth: int) -> None:
    """What a swap leaves after the check: `sub` (or `a/sub`) now points outside."""
    parent = root / "a" if depth == 2 else root
    parent.mkdir(exist_ok=True)
    (parent / "sub").symlink_to(outside)
    parts = (*(("a",) if depth == 2 else ()), "sub", "f.txt")
    with pytest.raises(PathChangedError, match="changed while writing") as info:
        write_file_at(root, parts, b"pwned")
    assert info.value.component == "sub"
    (outside / "f.txt").write_text("secret\n")
    with pytest.raises(PathChangedError, match="changed while reading"):
        read_file_at(root, parts)
    with pytest.raises(PathChangedError):
        list_names_at(root, parts[:-1], 10)
    assert [p.name for p in outside.iterdir()] == ["f.txt"]
    assert (outside / "f.txt").read_text() == "secret\n"


@needs_walk
def test_a_symlink_as_the_final_name_is_refused(root: Path, outside: Path) -> None:
    secret = outside / "secret.txt"
    secret.write_text("secret\n")
    (root / "f.txt").symlink_to(secret)
    with pytest.raises(PathChangedError, match="changed while reading"):
        read_file_at(root, ("f.txt",))
    with pytest.raises(PathChangedError, match="changed while writing"):
        write_file_at(root, ("f.txt",), b"pwned")
    assert (root / "f.txt").is_symlink()
    assert secret.read_text() == "secret\n"
    assert sorted(p.name for p in root.iterdir()) == ["f.txt"]


def test_a_file_in_place_of_a_directory_is_an_ordinary_error(root: Path) -> None:
    (root / "plain").write_text("x")
    with pytest.raises(NotADirectoryError):
        write_file_at(root, ("plain", "f.txt"), b"y")
    with pytest.raises(NotADirectoryError):
        read_file_at(root, ("plain", "f.txt"))


def test_pipes_and_directories_are_not_opened_as_files(root: Path) -> None:
    os.mkfifo(root / "fifo")  # a blocking open would hang here: the walk opens non-blocking
    with pytest.raises(NotRegularFileError):
        open_file_at(root, ("fifo",))
    (root / "dir").mkdir()
    with pytest.raises(IsADirectoryError):
        open_file_at(root, ("dir",))
    with pytest.raises(FileNotFoundError):
        open_file_at(root, ("missing",))


def test_reads_and_lists(root: Path) -> None:
    (root / "d").mkdir()
    (root / "d" / "a.txt").write_bytes(b"a\r\nb")
    assert read_file_at(root, ("d", "a.txt")) == b"a\r\nb"
    with open_file_at(root, ("d", "a.txt")) as fh:
        assert fh.read(1) == b"a"
    assert list_names_at(root, ("d",), 10) == ["a.txt"]
    assert list_names_at(root, (), 10) == ["d"]


def test_locate_picks_the_innermost_root(tmp_path: Path, root: Path, outside: Path) -> None:
    inner = root / "vendor"
    inner.mkdir()
    ws = Workspace(root=root, extra_roots=(inner, outside))
    assert ws.locate(root / "a" / "b.txt") == (root, ("a", "b.txt"))
    assert ws.locate(inner / "x.txt") == (inner, ("x.txt",))
    assert ws.locate(outside / "y.txt") == (outside, ("y.txt",))
    assert ws.locate(root) == (root, ())
    with pytest.raises(ToolError, match="outside the workspace"):
        ws.locate(tmp_path / "elsewhere.txt")
    free = Workspace(root=root, allow_outside=True)
    assert free.locate(tmp_path / "elsewhere.txt") == (
        Path("/"),
        (tmp_path / "elsewhere.txt").parts[1:],
    )


def test_workspace_methods_work_in_extra_roots_and_with_allow_outside(
    tmp_path: Path, root: Path, outside: Path
) -> None:
    ws = Workspace(root=root, extra_roots=(outside,))
    target = ws.resolve(outside / "inc" / "x.txt")
    assert ws.write_bytes(target, b"included\n") is True
    assert ws.read_bytes(target) == b"included\n"
    free = Workspace(root=root, allow_outside=True)
    anywhere = free.resolve(tmp_path / "anywhere" / "y.txt")
    assert free.write_bytes(anywhere, b"y") is True
    assert (tmp_path / "anywhere" / "y.txt").read_bytes() == b"y"


async def test_symlinks_inside_the_workspace_keep_working(root: Path, ctx: ToolContext) -> None:
    """resolve() turns an inside link into the real path, so the walk never meets it."""
    (root / "real").mkdir()
    (root / "real" / "a.txt").write_text("one\n")
    (root / "alias").symlink_to(root / "real")
    (root / "a-link.txt").symlink_to(root / "real" / "a.txt")
    write, edit, read = WriteFileTool(), EditTool(), ReadFileTool()
    await write.run(write.Params(file_path="alias/b.txt", content="two\n"), ctx)
    assert (root / "real" / "b.txt").read_text() == "two\n"
    await edit.run(edit.Params(file_path="a-link.txt", old_string="one", new_string="1"), ctx)
    assert (root / "real" / "a.txt").read_text() == "1\n"
    assert (root / "a-link.txt").is_symlink()
    out = await read.run(read.Params(file_path="alias/a.txt"), ctx)
    assert out.content == "1"


async def test_read_file_refuses_a_pipe_without_hanging(root: Path, ctx: ToolContext) -> None:
    os.mkfifo(root / "pipe")
    with pytest.raises(ToolError, match="not a regular file"):
        await ReadFileTool().run(ReadFileTool.Params(file_path="pipe"), ctx)
