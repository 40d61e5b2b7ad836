"""read_file: paging with offset/limit, truncation notices, refusals, the path guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_code.tools.base import ToolContext, ToolError, ToolLimits
from qwen_code.tools.read import MAX_LINE_CHARS, ReadFileTool
from qwen_code.tools.registry import ToolRegistry
from qwen_code.tools.workspace import Workspace

TOOL = ReadFileTool()


async def read(ctx: ToolContext, file_path: str, **kwargs: int) -> str:
    out = await TOOL.run(TOOL.Params(file_path=file_path, **kwargs), ctx)
    assert not out.is_error
    return out.content


def numbered(root: Path, n: int) -> Path:
    path = root / "n.txt"
    path.write_text("".join(f"line {i}\n" for i in range(1, n + 1)))
    return path


async def test_reads_whole_file_verbatim(root: Path, ctx: ToolContext) -> None:
    (root / "a.py").write_text("def f():\n    return 1\n")
    assert await read(ctx, "a.py") == "def f():\n    return 1"


async def test_absolute_path_and_crlf(root: Path, ctx: ToolContext) -> None:
    (root / "w.txt").write_bytes(b"one\r\ntwo\r\n")
    out = await TOOL.run(TOOL.Params(file_path=str(root / "w.txt")), ctx)
    assert out.content == "one\ntwo"
    assert out.data["total_lines"] == 2
    assert out.data["truncated"] is False


async def test_gb18030_file(root: Path, ctx: ToolContext) -> None:
    (root / "cn.txt").write_bytes("# 中文注释\nx = 1\n".encode("gb18030"))
    assert await read(ctx, "cn.txt") == "# 中文注释\nx = 1"


async def test_offset_and_limit(root: Path, ctx: ToolContext) -> None:
    numbered(root, 50)
    content = await read(ctx, "n.txt", offset=10, limit=3)
    notice, body = content.split("\n\n")
    assert body == "line 11\nline 12\nline 13"
    assert "Showing lines 11-13 of 50 total lines" in notice
    assert "offset=13" in notice


async def test_offset_reaching_the_end_has_no_read_more_hint(root: Path, ctx: ToolContext) -> None:
    numbered(root, 5)
    content = await read(ctx, "n.txt", offset=3)
    assert content.endswith("\n\nline 4\nline 5")
    assert "Showing lines 4-5 of 5" in content
    assert "offset=" not in content


async def test_truncates_at_max_output_lines(root: Path) -> None:
    numbered(root, 30)
    ctx = ToolContext(workspace=Workspace(root=root), limits=ToolLimits(max_output_lines=10))
    out = await TOOL.run(TOOL.Params(file_path="n.txt"), ctx)
    notice, body = out.content.split("\n\n")
    assert body.split("\n") == [f"line {i}" for i in range(1, 11)]
    assert "Showing lines 1-10 of 30 total lines" in notice
    assert "offset=10" in notice
    assert out.data == {
        "path": str(root / "n.txt"),
        "start_line": 1,
        "end_line": 10,
        "total_lines": 30,
        "truncated": True,
    }
    # A larger limit than the cap is still capped.
    capped = await TOOL.run(TOOL.Params(file_path="n.txt", limit=25), ctx)
    assert "Showing lines 1-10 of 30" in capped.content


async def test_truncates_at_max_output_chars(root: Path) -> None:
    (root / "w.txt").write_text("".join(f"{i:03d}" + "x" * 96 + "\n" for i in range(100)))
    limits = ToolLimits(max_output_chars=1000)
    ctx = ToolContext(workspace=Workspace(root=root), limits=limits)
    content = await read(ctx, "w.txt")
    assert "Showing lines 1-10 of 100 total lines" in content
    assert "offset=10" in content


async def test_long_lines_are_shortened(root: Path, ctx: ToolContext) -> None:
    (root / "min.js").write_text("short\n" + "y" * (MAX_LINE_CHARS + 500) + "\n")
    content = await read(ctx, "min.js")
    assert "1 line(s) longer than 2000 characters were shortened" in content
    long_line = content.split("\n")[-1]
    assert long_line.startswith("y" * MAX_LINE_CHARS + "... [line truncated")
    assert len(long_line) < MAX_LINE_CHARS + 100


async def test_empty_file(root: Path, ctx: ToolContext) -> None:
    (root / "empty.txt").write_text("")
    assert await read(ctx, "empty.txt") == "(empty file)"


async def test_offset_past_end_is_an_error(root: Path, ctx: ToolContext) -> None:
    numbered(root, 3)
    with pytest.raises(ToolError, match=r"past the end.*3 line"):
        await TOOL.run(TOOL.Params(file_path="n.txt", offset=3), ctx)


async def test_binary_file_is_refused(root: Path, ctx: ToolContext) -> None:
    (root / "blob.bin").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" * 10)
    with pytest.raises(ToolError, match="binary file"):
        await TOOL.run(TOOL.Params(file_path="blob.bin"), ctx)


@pytest.mark.parametrize("name", ["clip.mp4", "song.mp3", "icon.ico"])
async def test_media_files_are_unsupported(root: Path, ctx: ToolContext, name: str) -> None:
    (root / name).write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ToolError, match="not supported"):
        await TOOL.run(TOOL.Params(file_path=name), ctx)


@pytest.mark.parametrize(
    ("name", "error"), [("shot.png", "not a valid image"), ("doc.pdf", "not a PDF")]
)
async def test_broken_images_and_pdfs_get_a_clear_error(
    root: Path, ctx: ToolContext, name: str, error: str
) -> None:
    (root / name).write_bytes(b"\x89PNG\r\n\x1a\n")  # images and PDFs: tests/test_images.py
    with pytest.raises(ToolError, match=error):
        await TOOL.run(TOOL.Params(file_path=name), ctx)


async def test_directory_suggests_list_directory(root: Path, ctx: ToolContext) -> None:
    (root / "src").mkdir()
    with pytest.raises(ToolError, match="list_directory"):
        await TOOL.run(TOOL.Params(file_path="src"), ctx)


async def test_missing_file_suggests_similar_names(root: Path, ctx: ToolContext) -> None:
    (root / "config.yaml").write_text("a: 1\n")
    with pytest.raises(ToolError, match=r"File not found.*Did you mean: config\.yaml"):
        await TOOL.run(TOOL.Params(file_path="config.yml"), ctx)


async def test_paths_outside_the_workspace_are_refused(tmp_path: Path, root: Path) -> None:
    ctx = ToolContext(workspace=Workspace(root=root))
    secret = tmp_path / "secret.txt"
    secret.write_text("secret\n")
    (root / "link.txt").symlink_to(secret)
    for path in (str(secret), "../secret.txt", "link.txt"):
        with pytest.raises(ToolError, match="outside the workspace"):
            await TOOL.run(TOOL.Params(file_path=path), ctx)


async def test_errors_become_results_through_the_registry(root: Path, ctx: ToolContext) -> None:
    registry = ToolRegistry()
    registry.register(TOOL)
    assert registry.validate("read_file", {"file_path": "x", "offset": -1}) == (
        "Invalid arguments for read_file:\n- offset: Input should be greater than or equal to 0"
    )
    call = registry.validate("read_file", {"file_path": "missing.txt"})
    assert not isinstance(call, str)
    out = await registry.execute(call, ctx)
    assert out.is_error
    assert out.content.startswith("Error: File not found: 'missing.txt'.")


def test_schema_and_summary() -> None:
    schema = TOOL.schema()["function"]
    assert schema["name"] == "read_file"
    assert list(schema["parameters"]["properties"]) == ["file_path", "offset", "limit", "pages"]
    assert schema["parameters"]["required"] == ["file_path"]
    assert TOOL.summary(TOOL.Params(file_path="src/a.py")) == "src/a.py"
