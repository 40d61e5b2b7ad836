"""Tool.preview: the diff a user sees, and approves, before an edit or a write runs.

For each tool that overrides `preview` (edit, write_file, save_memory) the preview is
exactly the change that then happens: the unified diff of the file's text before and after
the call, as the tool reports it and as the bytes on disk show it. Previewing changes
nothing on disk, and a call that is going to fail shows no preview.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from qwen_code.agent.approval import ApprovalAnswer
from qwen_code.agent.events import ToolResult
from qwen_code.agent.tool_runner import ToolRunner
from qwen_code.tools.base import Tool, ToolContext, ToolError, ToolOutput
from qwen_code.tools.edit import EditTool
from qwen_code.tools.memory import SaveMemoryTool
from qwen_code.tools.registry import builtin_registry
from qwen_code.tools.workspace import Workspace
from qwen_code.tools.write import WriteFileTool
from tests.helpers import RecordingApprover, tool_call

EDIT, WRITE, MEMORY = EditTool(), WriteFileTool(), SaveMemoryTool()

Snapshot = dict[str, tuple[bytes | None, int]]


def snapshot(folder: Path) -> Snapshot:
    """Every file and folder under `folder`: its bytes (None for a folder) and mtime."""
    found: Snapshot = {}
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(parent) / name
            data = None if path.is_dir() else path.read_bytes()
            found[str(path.relative_to(folder))] = (data, path.lstat().st_mtime_ns)
    return found


async def preview(tool: Tool[Any], ctx: ToolContext, **arguments: Any) -> str | None:
    """The tool's preview of a call, checking that asking for it changed nothing."""
    watched = ctx.workspace.root.parent
    before = snapshot(watched)
    shown = await tool.preview(tool.Params(**arguments), ctx)
    assert snapshot(watched) == before
    return shown


async def preview_then_run(
    tool: Tool[Any], ctx: ToolContext, **arguments: Any
) -> tuple[str | None, ToolOutput]:
    """The preview of a call, then the call itself."""
    shown = await preview(tool, ctx, **arguments)
    return shown, await tool.run(tool.Params(**arguments), ctx)


async def assert_fails_unseen(tool: Tool[Any], ctx: ToolContext, **arguments: Any) -> None:
    """A call that will fail: no preview, and running it fails and changes nothing."""
    assert await preview(tool, ctx, **arguments) is None
    before = snapshot(ctx.workspace.root.parent)
    with pytest.raises(ToolError):
        await tool.run(tool.Params(**arguments), ctx)
    assert snapshot(ctx.workspace.root.parent) == before


# --- edit -----------------------------------------------------------------------------------


async def test_edit_preview_is_the_diff_that_is_then_applied(root: Path, ctx: ToolContext) -> None:
    (root / "app.py").write_text("import os\nx = 1\nprint(x)\n")
    shown, out = await preview_then_run(
        EDIT, ctx, file_path="app.py", old_string="x = 1", new_string="x = 2"
    )
    assert shown == (
        "--- a/app.py\n+++ b/app.py\n@@ -1,3 +1,3 @@\n import os\n-x = 1\n+x = 2\n print(x)\n"
    )
    assert (root / "app.py").read_text() == "import os\nx = 2\nprint(x)\n"
    assert out.data["diff"] == out.display == shown


async def test_replace_all_previews_every_occurrence(root: Path, ctx: ToolContext) -> None:
    filler = "".join(f"pass  # {i}\n" for i in range(10))
    (root / "m.py").write_text(f"old()\n{filler}old()\n{filler}old()\n")
    shown, out = await preview_then_run(
        EDIT, ctx, file_path="m.py", old_string="old()", new_string="new()", replace_all=True
    )
    assert shown is not None
    assert shown.count("\n-old()\n+new()\n") == 3
    assert shown.count("@@ ") == 3  # three hunks, far apart
    assert (root / "m.py").read_text() == f"new()\n{filler}new()\n{filler}new()\n"
    assert out.data["diff"] == shown


async def test_several_matches_without_replace_all_show_nothing(
    root: Path, ctx: ToolContext
) -> None:
    (root / "m.py").write_text("old()\nold()\n")
    await assert_fails_unseen(EDIT, ctx, file_path="m.py", old_string="old()", new_string="new()")


async def test_a_new_file_by_edit_is_previewed_without_being_made(
    root: Path, ctx: ToolContext
) -> None:
    shown = await preview(EDIT, ctx, file_path="pkg/new.py", old_string="", new_string="a = 1\n")
    assert shown == "--- a/pkg/new.py\n+++ b/pkg/new.py\n@@ -0,0 +1 @@\n+a = 1\n"
    assert not (root / "pkg").exists()
    out = await EDIT.run(
        EDIT.Params(file_path="pkg/new.py", old_string="", new_string="a = 1\n"), ctx
    )
    assert (root / "pkg" / "new.py").read_text() == "a = 1\n"
    assert out.data["diff"] == shown


@pytest.mark.parametrize(
    ("case", "file_path", "old", "new"),
    [
        ("no match", "a.py", "x = 3", "x = 4"),
        ("old equals new", "a.py", "x = 1", "x = 1"),
        ("missing file", "missing.py", "x = 1", "x = 2"),
        ("empty old on a non-empty file", "a.py", "", "y = 2\n"),
        ("a directory", "sub", "x", "y"),
        ("outside the workspace", "../outside.py", "x = 1", "x = 2"),
        ("a binary file", "blob.bin", "x", "y"),
    ],
)
async def test_an_edit_that_will_fail_has_no_preview(
    root: Path, ctx: ToolContext, case: str, file_path: str, old: str, new: str
) -> None:
    (root / "a.py").write_text("x = 1\n")
    (root / "sub").mkdir()
    (root / "blob.bin").write_bytes(b"x\x00y\x00")
    (root.parent / "outside.py").write_text("x = 1\n")
    await assert_fails_unseen(EDIT, ctx, file_path=file_path, old_string=old, new_string=new)


async def test_crlf_file_previews_only_the_edited_line(root: Path, ctx: ToolContext) -> None:
    (root / "w.txt").write_bytes(b"a = 1\r\nb = 2\r\nc = 3\r\n")
    shown, out = await preview_then_run(
        EDIT, ctx, file_path="w.txt", old_string="a = 1\r\nb = 2", new_string="a = 1\r\nb = 20"
    )
    assert shown == "--- a/w.txt\n+++ b/w.txt\n@@ -1,3 +1,3 @@\n a = 1\n-b = 2\n+b = 20\n c = 3\n"
    assert (root / "w.txt").read_bytes() == b"a = 1\r\nb = 20\r\nc = 3\r\n"
    assert out.data["diff"] == shown


@pytest.mark.parametrize(
    ("encoding", "old", "new"),
    [("gb18030", "name = '旧名字'", "name = '新名字'"), ("latin-1", "café", "thé")],
)
async def test_non_utf8_file_previews_its_decoded_text(
    root: Path, ctx: ToolContext, encoding: str, old: str, new: str
) -> None:
    (root / "cfg.txt").write_bytes(f"# top\n{old}\n".encode(encoding))
    shown, out = await preview_then_run(
        EDIT, ctx, file_path="cfg.txt", old_string=old, new_string=new
    )
    assert shown == f"--- a/cfg.txt\n+++ b/cfg.txt\n@@ -1,2 +1,2 @@\n # top\n-{old}\n+{new}\n"
    assert (root / "cfg.txt").read_bytes() == f"# top\n{new}\n".encode(encoding)
    assert out.data["diff"] == shown


async def test_missing_final_newline_is_shown_and_kept(root: Path, ctx: ToolContext) -> None:
    (root / "a.txt").write_text("one\ntwo")
    shown, _ = await preview_then_run(
        EDIT, ctx, file_path="a.txt", old_string="two", new_string="2"
    )
    assert shown == (
        "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n"
        "\\ No newline at end of file\n+2\n\\ No newline at end of file\n"
    )
    assert (root / "a.txt").read_text() == "one\n2"


async def test_a_loose_match_previews_the_lines_really_replaced(
    root: Path, ctx: ToolContext
) -> None:
    """old_string matched only ignoring trailing spaces and typographic quotes: the preview
    shows the file's own line going, not the model's string."""
    (root / "s.py").write_text("say('hi')   \nnext()\n")
    shown, _ = await preview_then_run(
        EDIT, ctx, file_path="s.py", old_string="say(\u2018hi\u2019)\n", new_string="say('bye')\n"
    )
    assert shown == "--- a/s.py\n+++ b/s.py\n@@ -1,2 +1,2 @@\n-say('hi')   \n+say('bye')\n next()\n"
    assert (root / "s.py").read_text() == "say('bye')\nnext()\n"


async def test_a_large_change_is_previewed_whole(root: Path, ctx: ToolContext) -> None:
    """The preview is not cut: what the user approves is every changed line."""
    lines = 3000
    (root / "big.py").write_text("".join(f"value_{i} = {i}\n" for i in range(lines)))
    shown, out = await preview_then_run(
        EDIT, ctx, file_path="big.py", old_string="value_", new_string="VALUE_", replace_all=True
    )
    assert shown is not None
    body = shown.splitlines()[3:]  # after the ---/+++/@@ header
    assert [line for line in body if line.startswith("-")] == [
        f"-value_{i} = {i}" for i in range(lines)
    ]
    assert [line for line in body if line.startswith("+")] == [
        f"+VALUE_{i} = {i}" for i in range(lines)
    ]
    assert out.data["diff"] == shown


# --- write_file -----------------------------------------------------------------------------


async def test_a_new_file_is_previewed_without_being_made(root: Path, ctx: ToolContext) -> None:
    shown = await preview(WRITE, ctx, file_path="docs/notes.md", content="one\ntwo\n")
    assert shown == "--- a/docs/notes.md\n+++ b/docs/notes.md\n@@ -0,0 +1,2 @@\n+one\n+two\n"
    assert not (root / "docs").exists()
    out = await WRITE.run(WRITE.Params(file_path="docs/notes.md", content="one\ntwo\n"), ctx)
    assert (root / "docs" / "notes.md").read_text() == "one\ntwo\n"
    assert out.data["diff"] == shown


async def test_an_overwrite_previews_the_lines_that_change(root: Path, ctx: ToolContext) -> None:
    (root / "a.txt").write_text("old\nsame\n")
    shown, out = await preview_then_run(WRITE, ctx, file_path="a.txt", content="new\nsame\n")
    assert shown == "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n-old\n+new\n same\n"
    assert (root / "a.txt").read_text() == "new\nsame\n"
    assert out.data["diff"] == shown


async def test_writing_the_same_text_previews_no_change(root: Path, ctx: ToolContext) -> None:
    (root / "a.txt").write_bytes(b"same\r\ntext\r\n")
    shown, out = await preview_then_run(WRITE, ctx, file_path="a.txt", content="same\ntext\n")
    assert shown == ""  # nothing to show: the approval prints no diff
    assert (root / "a.txt").read_bytes() == b"same\r\ntext\r\n"
    assert out.data["diff"] == ""


async def test_overwriting_a_crlf_file_previews_only_changed_lines(
    root: Path, ctx: ToolContext
) -> None:
    (root / "w.txt").write_bytes(b"a\r\nb\r\nc\r\n")
    shown, _ = await preview_then_run(WRITE, ctx, file_path="w.txt", content="a\nB\nc\n")
    assert shown == "--- a/w.txt\n+++ b/w.txt\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
    assert (root / "w.txt").read_bytes() == b"a\r\nB\r\nc\r\n"


async def test_overwriting_a_latin1_file_previews_its_decoded_text(
    root: Path, ctx: ToolContext
) -> None:
    (root / "menu.txt").write_bytes("café\n".encode("latin-1"))
    shown, _ = await preview_then_run(WRITE, ctx, file_path="menu.txt", content="café au lait\n")
    assert shown == "--- a/menu.txt\n+++ b/menu.txt\n@@ -1 +1 @@\n-café\n+café au lait\n"
    assert (root / "menu.txt").read_bytes() == "café au lait\n".encode("latin-1")


async def test_replacing_a_binary_file_previews_the_new_text_whole(
    root: Path, ctx: ToolContext
) -> None:
    (root / "data").write_bytes(b"\x00\x01\x02")
    shown, out = await preview_then_run(WRITE, ctx, file_path="data", content="text\n")
    assert shown == "--- a/data\n+++ b/data\n@@ -0,0 +1 @@\n+text\n"
    assert (root / "data").read_bytes() == b"text\n"
    assert out.data["diff"] == shown


@pytest.mark.parametrize("file_path", ["sub", "../outside.txt"], ids=["directory", "outside"])
async def test_a_write_that_will_fail_has_no_preview(
    root: Path, ctx: ToolContext, file_path: str
) -> None:
    (root / "sub").mkdir()
    await assert_fails_unseen(WRITE, ctx, file_path=file_path, content="x\n")


# --- save_memory ----------------------------------------------------------------------------


@pytest.fixture
def home_ctx(root: Path, tmp_path: Path) -> ToolContext:
    """A tool context with a qwen-code home (where QWEN.md, the memory file, lives)."""
    home = tmp_path / "home"
    home.mkdir()
    return ToolContext(workspace=Workspace(root=root), home=home)


async def test_memory_preview_adds_the_fact_to_the_memory_file(home_ctx: ToolContext) -> None:
    assert home_ctx.home is not None
    memory_file = home_ctx.home / "QWEN.md"
    shown = await preview(MEMORY, home_ctx, fact="Deploys go through CI only.")
    assert shown is not None
    assert shown.startswith(f"--- a/{memory_file}\n+++ b/{memory_file}\n")
    assert "\n+- Deploys go through CI only.\n" in shown
    assert not memory_file.exists()


@pytest.mark.parametrize(
    "before",
    ["", "# Mine\n\n## Qwen Added Memories\n\n- Old fact.\n\n## Later section\n\ntext\n"],
    ids=["no file", "section in the middle"],
)
async def test_memory_preview_is_the_change_then_made(home_ctx: ToolContext, before: str) -> None:
    assert home_ctx.home is not None
    if before:
        (home_ctx.home / "QWEN.md").write_text(before, encoding="utf-8")
    shown, out = await preview_then_run(MEMORY, home_ctx, fact="Deploys go through CI only.")
    assert shown == out.display


async def test_memory_without_a_home_has_no_preview(ctx: ToolContext) -> None:
    await assert_fails_unseen(MEMORY, ctx, fact="Deploys go through CI only.")


# --- what the approval shows, through the tool runner ---------------------------------------


async def ask_and_run(
    ctx: ToolContext, approved: bool, name: str, **arguments: Any
) -> tuple[RecordingApprover, ToolResult]:
    approver = RecordingApprover(ApprovalAnswer(approved=approved))
    runner = ToolRunner(registry=builtin_registry(), ctx=ctx, approver=approver, mode="default")
    results = [
        event
        async for event in runner.run((tool_call(name, **arguments),))
        if isinstance(event, ToolResult)
    ]
    assert len(results) == 1
    return approver, results[0]


async def test_the_approved_diff_is_the_change_made(root: Path, ctx: ToolContext) -> None:
    (root / "app.py").write_text("x = 1\n")
    approver, result = await ask_and_run(
        ctx, True, "edit", file_path="app.py", old_string="x = 1", new_string="x = 2"
    )
    (request,) = approver.requests
    assert request.preview == "--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"
    assert not result.is_error
    assert result.data["diff"] == request.preview
    assert (root / "app.py").read_text() == "x = 2\n"


async def test_a_denied_write_changes_nothing(root: Path, ctx: ToolContext) -> None:
    (root / "app.py").write_text("x = 1\n")
    before = snapshot(root)
    approver, result = await ask_and_run(ctx, False, "write_file", file_path="app.py", content="")
    (request,) = approver.requests
    assert request.preview == "--- a/app.py\n+++ b/app.py\n@@ -1 +0,0 @@\n-x = 1\n"
    assert result.is_error
    assert snapshot(root) == before


async def test_a_call_with_bad_arguments_is_not_asked_about(root: Path, ctx: ToolContext) -> None:
    (root / "app.py").write_text("x = 1\n")
    approver, result = await ask_and_run(ctx, True, "edit", file_path="app.py", old_string="x")
    assert approver.requests == []
    assert result.is_error and "new_string" in result.output
    assert (root / "app.py").read_text() == "x = 1\n"
