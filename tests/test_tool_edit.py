"""edit: exact replacement, byte-for-byte preservation of the rest, helpful failures."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from qwen_code.tools.base import ToolContext, ToolError, ToolOutput
from qwen_code.tools.edit import EditTool
from qwen_code.tools.registry import ToolRegistry
from qwen_code.tools.workspace import Workspace

TOOL = EditTool()


async def edit(ctx: ToolContext, file_path: str, old: str, new: str, **kw: bool) -> ToolOutput:
    params = TOOL.Params(file_path=file_path, old_string=old, new_string=new, **kw)
    return await TOOL.run(params, ctx)


SOURCE = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(1, 8))


async def test_replaces_unique_match(root: Path, ctx: ToolContext) -> None:
    (root / "m.py").write_text(SOURCE)
    out = await edit(ctx, "m.py", "    return x + 3\n", "    return x * 3\n")
    assert out.content == f"Successfully modified file: {root / 'm.py'} (1 replacement)."
    assert (root / "m.py").read_text() == SOURCE.replace("x + 3", "x * 3")
    assert out.data["replacements"] == 1
    assert "-    return x + 3\n+    return x * 3\n" in out.data["diff"]
    assert out.display == out.data["diff"]


async def test_crlf_file_stays_crlf_byte_for_byte(root: Path, ctx: ToolContext) -> None:
    original = SOURCE.replace("\n", "\r\n").encode()
    (root / "w.py").write_bytes(original)
    await edit(ctx, "w.py", "def f4(x):\n    return x + 4\n", "def f4(x):\n    return 4\n")
    expected = original.replace(b"    return x + 4\r\n", b"    return 4\r\n")
    assert (root / "w.py").read_bytes() == expected


async def test_model_crlf_strings_are_normalized(root: Path, ctx: ToolContext) -> None:
    (root / "w.txt").write_bytes(b"a\r\nb\r\nc\r\n")
    await edit(ctx, "w.txt", "a\r\nb\r\n", "A\r\nB\r\n")
    assert (root / "w.txt").read_bytes() == b"A\r\nB\r\nc\r\n"


async def test_bom_is_kept(root: Path, ctx: ToolContext) -> None:
    (root / "b.cs").write_bytes(codecs.BOM_UTF8 + b"int a = 1;\r\nint b = 2;\r\n")
    await edit(ctx, "b.cs", "int b = 2;", "int b = 3;")
    assert (root / "b.cs").read_bytes() == codecs.BOM_UTF8 + b"int a = 1;\r\nint b = 3;\r\n"


async def test_gb18030_file_keeps_its_encoding(root: Path, ctx: ToolContext) -> None:
    text = "# 配置文件\nname = '旧名字'\nsize = 1\n"
    (root / "cfg.py").write_bytes(text.encode("gb18030"))
    out = await edit(ctx, "cfg.py", "name = '旧名字'", "name = '新名字'")
    assert not out.is_error
    expected = text.replace("旧名字", "新名字").encode("gb18030")
    assert (root / "cfg.py").read_bytes() == expected


async def test_utf16_file_keeps_its_encoding(root: Path, ctx: ToolContext) -> None:
    (root / "u.txt").write_bytes(codecs.BOM_UTF16_LE + "α\r\nβ\r\n".encode("utf-16-le"))
    await edit(ctx, "u.txt", "β", "γ")
    assert (root / "u.txt").read_bytes() == codecs.BOM_UTF16_LE + "α\r\nγ\r\n".encode("utf-16-le")


async def test_near_miss_shows_closest_lines(root: Path, ctx: ToolContext) -> None:
    (root / "m.py").write_text(SOURCE)
    old = "def f5(x):\n    return x - 5\n"  # lines 13-14 say `x + 5`
    with pytest.raises(ToolError) as err:
        await edit(ctx, "m.py", old, "def f5(x):\n    return 5\n")
    message = str(err.value)
    assert message.startswith("Could not find old_string in 'm.py'.")
    assert "The closest match is at lines 13-14" in message
    assert "13 | def f5(x):\n14 |     return x + 5\n" in message
    assert (root / "m.py").read_text() == SOURCE


async def test_no_similar_text(root: Path, ctx: ToolContext) -> None:
    (root / "m.py").write_text(SOURCE)
    with pytest.raises(ToolError, match="No similar text was found"):
        await edit(ctx, "m.py", "completely unrelated sentence", "x")


async def test_multiple_matches_list_line_numbers(root: Path, ctx: ToolContext) -> None:
    (root / "m.py").write_text(SOURCE)
    with pytest.raises(ToolError) as err:
        await edit(ctx, "m.py", "(x):", "(y):")
    message = str(err.value)
    assert "Found 7 occurrences" in message
    assert "lines 1, 4, 7, 10, 13, 16, 19" in message
    assert "replace_all" in message
    assert (root / "m.py").read_text() == SOURCE


async def test_replace_all(root: Path, ctx: ToolContext) -> None:
    (root / "m.py").write_text(SOURCE)
    out = await edit(ctx, "m.py", "(x):", "(y):", replace_all=True)
    assert "(7 replacements)" in out.content
    assert (root / "m.py").read_text() == SOURCE.replace("(x):", "(y):")


async def test_trailing_whitespace_tolerant_match(root: Path, ctx: ToolContext) -> None:
    (root / "t.py").write_text("a = 1\nb = 2   \nc = 3\t\nd = 4\n")
    out = await edit(ctx, "t.py", "b = 2\nc = 3\n", "b = 20\nc = 30\n")
    assert "matched lines 2-3 only when trailing whitespace" in out.content
    assert (root / "t.py").read_text() == "a = 1\nb = 20\nc = 30\nd = 4\n"


async def test_tolerant_match_must_be_unique(root: Path, ctx: ToolContext) -> None:
    (root / "t.py").write_text("x = 1  \ny\nx = 1 \n")
    with pytest.raises(ToolError, match="Could not find old_string"):
        await edit(ctx, "t.py", "x = 1\n", "x = 2\n")


async def test_identical_strings_are_an_error(root: Path, ctx: ToolContext) -> None:
    (root / "a.txt").write_text("same\n")
    with pytest.raises(ToolError, match="identical"):
        await edit(ctx, "a.txt", "same", "same")


async def test_empty_old_string_creates_a_file(root: Path, ctx: ToolContext) -> None:
    out = await edit(ctx, "new/dir/file.md", "", "# Title\n")
    target = root / "new" / "dir" / "file.md"
    assert target.read_text() == "# Title\n"
    assert out.content == f"Created new file: {target} with the provided content."
    assert out.data["created"] is True


async def test_empty_old_string_on_existing_file(root: Path, ctx: ToolContext) -> None:
    (root / "a.txt").write_text("content\n")
    with pytest.raises(ToolError, match="write_file"):
        await edit(ctx, "a.txt", "", "new")
    (root / "empty.txt").write_text("")
    await edit(ctx, "empty.txt", "", "filled\n")
    assert (root / "empty.txt").read_text() == "filled\n"


async def test_missing_file_is_an_error(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match=r"File not found: 'nope\.py'"):
        await edit(ctx, "nope.py", "a", "b")


async def test_binary_file_is_refused(root: Path, ctx: ToolContext) -> None:
    (root / "x.bin").write_bytes(b"ab\x00cd")
    with pytest.raises(ToolError, match="binary"):
        await edit(ctx, "x.bin", "ab", "xy")


async def test_paths_outside_the_workspace_are_refused(tmp_path: Path, root: Path) -> None:
    ctx = ToolContext(workspace=Workspace(root=root))
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    (root / "link.txt").symlink_to(outside)
    for path in (str(outside), "../outside.txt", "link.txt"):
        with pytest.raises(ToolError, match="outside the workspace"):
            await edit(ctx, path, "keep me", "changed")
    assert outside.read_text() == "keep me\n"


async def test_through_the_registry(root: Path, ctx: ToolContext) -> None:
    (root / "a.txt").write_text("x\nx\n")
    registry = ToolRegistry()
    registry.register(TOOL)
    call = registry.validate("edit", {"file_path": "a.txt", "old_string": "x", "new_string": "y"})
    assert not isinstance(call, str)
    out = await registry.execute(call, ctx)
    assert out.is_error
    assert out.content.startswith("Error: Found 2 occurrences of old_string in 'a.txt'")
