"""list_directory: ordering, ignore patterns, the cap, errors, the path guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_code.tools.base import ToolContext, ToolError, ToolLimits
from qwen_code.tools.ls import ListDirectoryTool
from qwen_code.tools.workspace import Workspace

TOOL = ListDirectoryTool()


@pytest.fixture
def root(root: Path) -> Path:
    path = root
    for d in ("src", "node_modules", ".git", "Docs"):
        (path / d).mkdir(parents=True)
    for f in ("b.py", "a.py", "debug.log", ".env"):
        (path / f).write_text("x")
    return path


async def test_directories_first_then_files(root: Path, ctx: ToolContext) -> None:
    out = await TOOL.run(TOOL.Params(), ctx)
    assert out.content.split("\n") == [
        f"Directory listing for {root}:",
        "[DIR] Docs",
        "[DIR] node_modules",
        "[DIR] src",
        ".env",
        "a.py",
        "b.py",
        "debug.log",
    ]
    assert out.data == {
        "directories": ["Docs", "node_modules", "src"],
        "files": [".env", "a.py", "b.py", "debug.log"],
    }


async def test_ignore_patterns(root: Path, ctx: ToolContext) -> None:
    params = TOOL.Params(path=str(root), ignore=["*.log", "node_modules/", ".*"])
    out = await TOOL.run(params, ctx)
    assert out.content.split("\n")[1:] == ["[DIR] Docs", "[DIR] src", "a.py", "b.py"]


async def test_cap_with_note(root: Path) -> None:
    ctx = ToolContext(workspace=Workspace(root=root), limits=ToolLimits(list_max_entries=3))
    out = await TOOL.run(TOOL.Params(path="."), ctx)
    lines = out.content.split("\n")
    assert lines[1:4] == ["[DIR] Docs", "[DIR] node_modules", "[DIR] src"]
    assert lines[4] == (
        "[Showing the first 3 of 7 entries. Use `ignore` or list a subdirectory, or use glob "
        "to find specific files.]"
    )


async def test_subdirectory_and_empty(root: Path, ctx: ToolContext) -> None:
    out = await TOOL.run(TOOL.Params(path="src"), ctx)
    assert out.content == f"Directory {root / 'src'} is empty."


async def test_not_a_directory(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match=r"not a directory.*read_file"):
        await TOOL.run(TOOL.Params(path="a.py"), ctx)
    with pytest.raises(ToolError, match="does not exist"):
        await TOOL.run(TOOL.Params(path="missing"), ctx)


async def test_paths_outside_the_workspace_are_refused(tmp_path: Path, root: Path) -> None:
    ctx = ToolContext(workspace=Workspace(root=root))
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    for path in (str(outside), "..", "escape", "src/../../outside"):
        with pytest.raises(ToolError, match="outside the workspace"):
            await TOOL.run(TOOL.Params(path=path), ctx)


def test_schema() -> None:
    schema = TOOL.schema()["function"]
    assert schema["name"] == "list_directory"
    assert list(schema["parameters"]["properties"]) == ["path", "ignore"]
