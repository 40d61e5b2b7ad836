"""grep_search: grouped output, caps, regex errors, .gitignore, both backends, path guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_code.tools.base import ToolContext, ToolError, ToolLimits
from qwen_code.tools.grep import MAX_LINE_CHARS, GrepTool
from qwen_code.tools.workspace import Workspace
from tests.helpers import git_init

BACKENDS = [
    pytest.param(True, id="ripgrep"),
    pytest.param(False, id="python"),
]


@pytest.fixture
def root(root: Path) -> Path:
    path = root
    (path / "src").mkdir()
    (path / "src" / "a.py").write_text("import os\n\ndef Handler():\n    return os.sep\n")
    (path / "src" / "b.txt").write_text("nothing here\nhandler in text\n")
    (path / "main.py").write_text("from src.a import handler\nhandler()\n")
    return path


async def grep(ctx: ToolContext, use_ripgrep: bool, **kw: object) -> str:
    tool = GrepTool(use_ripgrep=use_ripgrep)
    out = await tool.run(tool.Params.model_validate(kw), ctx)
    assert not out.is_error
    return out.content


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
async def test_groups_by_file_case_insensitively(ctx: ToolContext, use_ripgrep: bool) -> None:
    content = await grep(ctx, use_ripgrep, pattern="handler")
    assert content == "\n".join(
        [
            'Found 4 matches for pattern "handler" in the workspace root:',
            "---",
            "File: main.py",
            "L1: from src.a import handler",
            "L2: handler()",
            "---",
            "File: src/a.py",
            "L3: def Handler():",
            "---",
            "File: src/b.txt",
            "L2: handler in text",
            "---",
        ]
    )


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
async def test_glob_and_path_filters(ctx: ToolContext, use_ripgrep: bool) -> None:
    content = await grep(ctx, use_ripgrep, pattern=r"handler\(", glob="*.py", path="src")
    assert content.split("\n")[0] == (
        'Found 1 match for pattern "handler\\(" in src (filter: "*.py"):'
    )
    assert "File: src/a.py\nL3: def Handler():" in content


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
async def test_single_file_path(ctx: ToolContext, use_ripgrep: bool) -> None:
    content = await grep(ctx, use_ripgrep, pattern="os", path="src/a.py")
    assert "File: src/a.py\nL1: import os\nL4:     return os.sep" in content


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
async def test_limit_caps_matches_with_a_note(root: Path, use_ripgrep: bool) -> None:
    (root / "many.txt").write_text("hit\n" * 30)
    limits = ToolLimits(grep_max_matches=10)
    ctx = ToolContext(workspace=Workspace(root=root), limits=limits)
    content = await grep(ctx, use_ripgrep, pattern="^hit$")
    assert content.count("\nL") == 10
    assert content.endswith(
        "[Showing the first 10 of 30 matches. Use a more specific pattern, "
        "path or glob to see the rest.]"
    )
    content = await grep(ctx, use_ripgrep, pattern="^hit$", limit=5)
    assert content.count("\nL") == 5
    assert "[Showing the first 5 of 30 matches." in content


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
async def test_counting_stops_far_past_the_cap(root: Path, use_ripgrep: bool) -> None:
    (root / "many.txt").write_text("hit\n" * 500)
    ctx = ToolContext(workspace=Workspace(root=root))
    content = await grep(ctx, use_ripgrep, pattern="^hit$", limit=2)
    assert "[Showing the first 2 of at least 20 matches." in content


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
async def test_long_lines_are_capped(root: Path, ctx: ToolContext, use_ripgrep: bool) -> None:
    (root / "min.js").write_text("x" * 5000 + "needle" + "y" * 5000 + "\n")
    content = await grep(ctx, use_ripgrep, pattern="needle")
    line = content.split("\n")[3]
    assert line.startswith("L1: " + "x" * 100)
    assert line.endswith("... [9506 more characters]")
    assert len(line) < MAX_LINE_CHARS + 50


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
async def test_no_match_is_a_plain_result(ctx: ToolContext, use_ripgrep: bool) -> None:
    content = await grep(ctx, use_ripgrep, pattern="zebra")
    assert content == 'No matches found for pattern "zebra" in the workspace root.'


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
async def test_invalid_regex_is_an_error(ctx: ToolContext, use_ripgrep: bool) -> None:
    tool = GrepTool(use_ripgrep=use_ripgrep)
    with pytest.raises(ToolError, match=r"(?s)grep_search failed:.*(unclosed|missing \))"):
        await tool.run(tool.Params(pattern="foo(bar"), ctx)


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
async def test_respects_gitignore(root: Path, ctx: ToolContext, use_ripgrep: bool) -> None:
    git_init(root)
    (root / ".gitignore").write_text("build/\n")
    (root / "build").mkdir()
    (root / "build" / "gen.py").write_text("handler = 1\n")
    content = await grep(ctx, use_ripgrep, pattern="handler")
    assert "build" not in content
    assert "File: main.py" in content


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
async def test_skips_binary_files(root: Path, ctx: ToolContext, use_ripgrep: bool) -> None:
    (root / "blob.bin").write_bytes(b"handler\x00\x01\x02")
    content = await grep(ctx, use_ripgrep, pattern="handler")
    assert "blob.bin" not in content


async def test_paths_outside_the_workspace_are_refused(tmp_path: Path, root: Path) -> None:
    ctx = ToolContext(workspace=Workspace(root=root))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("handler\n")
    (root / "escape").symlink_to(outside)
    for path in (str(outside), "../outside", "escape", "escape/secret.txt"):
        with pytest.raises(ToolError, match="outside the workspace"):
            await GrepTool().run(GrepTool.Params(pattern="handler", path=path), ctx)


async def test_symlink_inside_is_not_searched(tmp_path: Path, root: Path) -> None:
    ctx = ToolContext(workspace=Workspace(root=root))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("handler\n")
    (root / "escape").symlink_to(outside)
    content = await grep(ctx, True, pattern="handler")
    assert "secret" not in content


def test_schema_and_summary() -> None:
    tool = GrepTool()
    schema = tool.schema()["function"]
    assert schema["name"] == "grep_search"
    assert list(schema["parameters"]["properties"]) == ["pattern", "path", "glob", "limit"]
    assert schema["parameters"]["required"] == ["pattern"]
    assert tool.summary(tool.Params(pattern="foo", path="src")) == "'foo' in src"
