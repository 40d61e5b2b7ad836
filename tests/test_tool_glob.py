"""glob: pattern semantics, .gitignore, newest first, the cap, the path guard."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qwen_code.tools.base import ToolContext, ToolError, ToolLimits
from qwen_code.tools.glob import GlobTool, glob_to_regex
from qwen_code.tools.workspace import Workspace
from tests.helpers import git_init

BACKENDS = [
    pytest.param(True, id="ripgrep"),
    pytest.param(False, id="python"),
]


def make(root: Path, *paths: str, mtime: float = 1_700_000_000) -> None:
    for i, rel in enumerate(paths):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)
        os.utime(path, (mtime + i, mtime + i))


async def glob(ctx: ToolContext, pattern: str, use_ripgrep: bool, **kw: str) -> list[str]:
    tool = GlobTool(use_ripgrep=use_ripgrep)
    out = await tool.run(tool.Params(pattern=pattern, **kw), ctx)
    assert not out.is_error
    return out.content.split("\n")


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
async def test_respects_gitignore_and_skips_git(
    root: Path, ctx: ToolContext, use_ripgrep: bool
) -> None:
    git_init(root)
    (root / ".gitignore").write_text("dist/\n*.gen.py\n")
    make(root, "a.py", "src/b.py", "dist/c.py", "src/d.gen.py")
    lines = await glob(ctx, "**/*.py", use_ripgrep)
    assert lines[0] == (
        f'Found 2 file(s) matching "**/*.py" in {root}, sorted by modification time (newest first):'
    )
    assert lines[1:] == [str(root / "src/b.py"), str(root / "a.py")]


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
async def test_newest_first(root: Path, ctx: ToolContext, use_ripgrep: bool) -> None:
    make(root, "old.txt", "mid.txt", "new.txt")
    lines = await glob(ctx, "*.txt", use_ripgrep)
    assert lines[1:] == [str(root / n) for n in ("new.txt", "mid.txt", "old.txt")]


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
async def test_cap_reports_how_many_more(root: Path, use_ripgrep: bool) -> None:
    make(root, *(f"f{i:02d}.md" for i in range(12)))
    limits = ToolLimits(glob_max_results=5)
    ctx = ToolContext(workspace=Workspace(root=root), limits=limits)
    lines = await glob(ctx, "*.md", use_ripgrep)
    assert lines[0].startswith('Found 12 file(s) matching "*.md"')
    assert lines[1:6] == [str(root / f"f{i:02d}.md") for i in (11, 10, 9, 8, 7)]
    assert lines[6] == (
        "[Showing the first 5; 7 more not shown. Use a narrower pattern or path to see them.]"
    )


async def test_path_argument_and_top_level_star(root: Path, ctx: ToolContext) -> None:
    make(root, "src/a.py", "src/pkg/b.py", "c.py")
    lines = await glob(ctx, "*.py", True, path="src")
    assert lines[1:] == [str(root / "src/a.py")]
    lines = await glob(ctx, "**/*.py", True, path=str(root / "src"))
    assert lines[1:] == [str(root / "src/pkg/b.py"), str(root / "src/a.py")]


async def test_no_match_is_not_an_error(root: Path, ctx: ToolContext) -> None:
    make(root, "src/a.py")
    lines = await glob(ctx, "*.py", True)
    assert lines == [
        f'No files found matching "*.py" in {root}. The pattern only matches at the top '
        "level; try '**/*.py'."
    ]


async def test_path_must_be_a_directory(root: Path, ctx: ToolContext) -> None:
    make(root, "a.py")
    with pytest.raises(ToolError, match="not a directory"):
        await GlobTool().run(GlobTool.Params(pattern="*", path="a.py"), ctx)


async def test_paths_outside_the_workspace_are_refused(tmp_path: Path, root: Path) -> None:
    ctx = ToolContext(workspace=Workspace(root=root))
    outside = tmp_path / "outside"
    make(outside, "secret.py")
    (root / "escape").symlink_to(outside)
    for path in (str(outside), "..", "escape"):
        with pytest.raises(ToolError, match="outside the workspace"):
            await GlobTool().run(GlobTool.Params(pattern="**/*", path=path), ctx)


async def test_symlink_inside_is_not_followed(tmp_path: Path, root: Path) -> None:
    ctx = ToolContext(workspace=Workspace(root=root))
    make(tmp_path / "outside", "secret.py")
    (root / "escape").symlink_to(tmp_path / "outside")
    make(root, "mine.py")
    lines = await glob(ctx, "**/*.py", True)
    assert lines[1:] == [str(root / "mine.py")]


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.py", "a.py", True),
        ("*.py", "src/a.py", False),
        ("**/*.py", "a.py", True),
        ("**/*.py", "src/deep/a.py", True),
        ("src/**/test_*.py", "src/test_x.py", True),
        ("src/**/test_*.py", "src/a/b/test_x.py", True),
        ("src/**", "src/a/b.txt", True),
        ("*.{ts,tsx}", "app.tsx", True),
        ("*.{ts,tsx}", "app.js", False),
        ("file?.txt", "file1.txt", True),
        ("file[!0-9].txt", "file1.txt", False),
        ("file[0-9].txt", "file1.txt", True),
        ("README.MD", "readme.md", True),
        ("a+b(c).txt", "a+b(c).txt", True),
    ],
)
def test_glob_to_regex(pattern: str, path: str, matches: bool) -> None:
    assert (glob_to_regex(pattern).fullmatch(path) is not None) is matches
