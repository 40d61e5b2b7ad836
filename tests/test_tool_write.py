"""write_file: create vs overwrite, kept line endings/encoding/mode, atomicity, path guard."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

import pytest

from qwen_code.tools.base import ToolContext, ToolError
from qwen_code.tools.workspace import Workspace
from qwen_code.tools.write import WriteFileTool

TOOL = WriteFileTool()


async def write(ctx: ToolContext, file_path: str, content: str) -> tuple[str, dict[str, object]]:
    out = await TOOL.run(TOOL.Params(file_path=file_path, content=content), ctx)
    assert not out.is_error
    assert out.display is not None
    return out.content, out.data


async def test_creates_file_and_parents(root: Path, ctx: ToolContext) -> None:
    content, data = await write(ctx, "pkg/sub/mod.py", "x = 1\ny = 2\n")
    target = root / "pkg" / "sub" / "mod.py"
    assert target.read_bytes() == b"x = 1\ny = 2\n"
    assert content == f"Successfully created and wrote to new file: {target} (2 lines)."
    assert data["created"] is True
    assert data["path"] == str(target)
    assert "+x = 1\n+y = 2\n" in str(data["diff"])


async def test_overwrite_reports_diff(root: Path, ctx: ToolContext) -> None:
    (root / "a.txt").write_text("old\nsame\n")
    content, data = await write(ctx, "a.txt", "new\nsame\n")
    assert content == f"Successfully overwrote file: {root / 'a.txt'} (2 lines)."
    assert data["created"] is False
    assert "-old\n+new\n same\n" in str(data["diff"])


async def test_overwrite_keeps_crlf(root: Path, ctx: ToolContext) -> None:
    (root / "win.bat").write_bytes(b"@echo off\r\necho 1\r\n")
    await write(ctx, "win.bat", "@echo off\necho 2\n")
    assert (root / "win.bat").read_bytes() == b"@echo off\r\necho 2\r\n"


async def test_overwrite_keeps_bom_and_encoding(root: Path, ctx: ToolContext) -> None:
    (root / "bom.cs").write_bytes(codecs.BOM_UTF8 + b"class A {}\r\n")
    await write(ctx, "bom.cs", "class B {}\n")
    assert (root / "bom.cs").read_bytes() == codecs.BOM_UTF8 + b"class B {}\r\n"
    (root / "gbk.txt").write_bytes("旧内容\n".encode("gb18030"))
    await write(ctx, "gbk.txt", "新内容\n")
    assert (root / "gbk.txt").read_bytes() == "新内容\n".encode("gb18030")


async def test_new_file_takes_the_content_line_ending(root: Path, ctx: ToolContext) -> None:
    await write(ctx, "crlf.txt", "a\r\nb\r\n")
    assert (root / "crlf.txt").read_bytes() == b"a\r\nb\r\n"


async def test_overwrite_keeps_mode_and_leaves_no_temp_files(root: Path, ctx: ToolContext) -> None:
    script = root / "bin" / "run.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    await write(ctx, "bin/run.sh", "#!/bin/sh\necho hi\n")
    assert script.stat().st_mode & 0o777 == 0o755
    assert script.read_text() == "#!/bin/sh\necho hi\n"
    assert [p.name for p in script.parent.iterdir()] == ["run.sh"]


async def test_replacing_a_binary_file(root: Path, ctx: ToolContext) -> None:
    (root / "data.bin").write_bytes(b"\x00\x01\x02")
    content, _ = await write(ctx, "data.bin", "text now\n")
    assert content.startswith("Successfully overwrote file")
    assert (root / "data.bin").read_bytes() == b"text now\n"


async def test_directory_is_an_error(root: Path, ctx: ToolContext) -> None:
    (root / "src").mkdir()
    with pytest.raises(ToolError, match="is a directory"):
        await TOOL.run(TOOL.Params(file_path="src", content="x"), ctx)


async def test_paths_outside_the_workspace_are_refused(tmp_path: Path, root: Path) -> None:
    ctx = ToolContext(workspace=Workspace(root=root))
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    for path in (str(outside / "x.txt"), "../outside/x.txt", "escape/x.txt"):
        with pytest.raises(ToolError, match="outside the workspace"):
            await TOOL.run(TOOL.Params(file_path=path, content="pwned"), ctx)
    assert list(outside.iterdir()) == []


async def test_a_pipe_in_the_way_is_an_error_not_a_hang(root: Path, ctx: ToolContext) -> None:
    """The old content is read through the workspace walk, which never blocks on a FIFO."""
    os.mkfifo(root / "pipe")
    with pytest.raises(ToolError, match="Could not read the existing file"):
        await TOOL.run(TOOL.Params(file_path="pipe", content="x"), ctx)


async def test_writes_into_an_extra_root(tmp_path: Path, root: Path) -> None:
    include = tmp_path / "include"
    include.mkdir()
    ctx = ToolContext(workspace=Workspace(root=root, extra_roots=(include,)))
    _, data = await write(ctx, str(include / "lib" / "x.h"), "#pragma once\n")
    assert data["created"] is True
    assert (include / "lib" / "x.h").read_text() == "#pragma once\n"


def test_schema() -> None:
    schema = TOOL.schema()["function"]
    assert schema["name"] == "write_file"
    assert schema["parameters"]["required"] == ["file_path", "content"]
    assert TOOL.kind == "edit"
