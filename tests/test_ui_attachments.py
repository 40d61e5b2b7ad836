"""`@path` references: what gets attached to the message, and what is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from qwen_code.tools.workspace import Workspace
from qwen_code.ui.attachments import (
    BLOCK_END,
    BLOCK_START,
    expand_at_references,
    find_references,
)
from tests.helpers import git_init


@pytest.fixture
def ws(root: Path) -> Workspace:
    return Workspace(root=root)


def test_file_content_is_appended_after_the_text(root: Path, ws: Workspace) -> None:
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("print('hi')\n")
    result = expand_at_references("explain @src/app.py please", ws)
    assert result.text == (
        "explain @src/app.py please\n\n"
        f"{BLOCK_START}\nContent from @src/app.py:\n```\nprint('hi')\n```\n{BLOCK_END}"
    )
    [att] = result.attached
    assert (att.ref, att.kind, att.bytes, att.truncated, att.error) == (
        "src/app.py",
        "file",
        12,
        False,
        None,
    )
    assert att.path == (root / "src" / "app.py").resolve()
    assert result.errors == []


def test_text_without_references_is_unchanged(ws: Workspace) -> None:
    result = expand_at_references("just a question", ws)
    assert (result.text, result.attached) == ("just a question", [])


def test_directory_listing_is_recursive_and_gitignore_aware(root: Path, ws: Workspace) -> None:
    git_init(root)
    (root / ".gitignore").write_text("*.log\n")
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("")
    (root / "pkg" / "sub" / "b.py").write_text("")
    (root / "pkg" / "debug.log").write_text("")
    result = expand_at_references("@pkg", ws)
    assert "Content from @pkg/ (directory listing, recursive, 2 files):" in result.text
    assert "```\npkg/a.py\npkg/sub/b.py\n```" in result.text
    assert "debug.log" not in result.text
    assert result.attached[0].kind == "dir"


def test_directory_listing_is_capped(root: Path, ws: Workspace) -> None:
    (root / "many").mkdir()
    for i in range(12):
        (root / "many" / f"f{i:02}.txt").write_text("")
    result = expand_at_references("@many/", ws, max_dir_entries=5)
    assert "many/f04.txt\n```" in result.text
    assert "many/f05.txt" not in result.text
    assert "[truncated: showing the first 5 of 12 entries]" in result.text
    assert result.attached[0].truncated


def test_binary_file_is_skipped_with_a_note(root: Path, ws: Workspace) -> None:
    (root / "logo.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    result = expand_at_references("see @logo.bin", ws)
    assert "[@logo.bin: binary file, skipped]" in result.text
    assert result.errors == ["@logo.bin: binary file, skipped"]
    assert result.attached[0].bytes == 0


def test_large_file_is_truncated_with_a_note(root: Path, ws: Workspace) -> None:
    (root / "big.txt").write_text("x" * 1000)
    result = expand_at_references("@big.txt", ws, max_file_bytes=100)
    assert "```\n" + "x" * 100 + "\n```" in result.text
    assert "[truncated: showing the first 100 of 1,000 bytes]" in result.text
    att = result.attached[0]
    assert (att.bytes, att.truncated, att.error) == (100, True, None)


def test_cut_does_not_split_a_utf8_character(root: Path, ws: Workspace) -> None:
    (root / "u.txt").write_text("é" * 100, encoding="utf-8")  # 2 bytes each
    result = expand_at_references("@u.txt", ws, max_file_bytes=11)
    assert "```\n" + "é" * 5 + "\n```" in result.text
    assert "\ufffd" not in result.text


def test_total_limit_stops_later_attachments(root: Path, ws: Workspace) -> None:
    for name in ("a.txt", "b.txt", "c.txt"):
        (root / name).write_text("y" * 60)
    result = expand_at_references("@a.txt @b.txt @c.txt", ws, max_total_bytes=100)
    a, b, c = result.attached
    assert (a.bytes, a.truncated) == (60, False)
    assert (b.bytes, b.truncated) == (40, True)
    assert c.bytes == 0
    assert c.truncated
    assert c.error is not None
    assert "limit for attachments is reached" in c.error
    assert "[truncated: showing the first 40 of 60 bytes]" in result.text


def test_outside_the_workspace_is_refused_with_a_note(tmp_path: Path, ws: Workspace) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    result = expand_at_references("read @../outside.txt", ws)
    assert "secret" not in result.text
    assert "[@../outside.txt: outside the workspace, not attached]" in result.text
    assert result.errors == ["@../outside.txt: outside the workspace, not attached"]


def test_symlink_leaving_the_workspace_is_refused(
    tmp_path: Path, root: Path, ws: Workspace
) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    (root / "link.txt").symlink_to(tmp_path / "outside.txt")
    result = expand_at_references("@link.txt", ws)
    assert "secret" not in result.text
    assert result.errors == ["@link.txt: outside the workspace, not attached"]


def test_missing_file_leaves_the_text_and_records_an_error(ws: Workspace) -> None:
    result = expand_at_references("fix @foo.py, thanks", ws)
    assert result.text == "fix @foo.py, thanks"
    assert result.errors == ["@foo.py: no such file"]
    assert result.attached[0].path is None


def test_email_addresses_are_not_references(root: Path, ws: Workspace) -> None:
    (root / "example.com").write_text("not me")
    result = expand_at_references("mail bob@example.com", ws)
    assert result.text == "mail bob@example.com"
    assert result.attached == []
    assert find_references("a@b.c (@x) '@y' @z") == ["x)", "y'", "z"]


def test_trailing_punctuation_is_dropped_when_the_path_exists(root: Path, ws: Workspace) -> None:
    (root / "a.py").write_text("A\n")
    (root / "b.py").write_text("B\n")
    (root / "c.py").write_text("C\n")
    result = expand_at_references("compare @a.py, @b.py. (and @c.py)", ws)
    assert [a.ref for a in result.attached] == ["a.py", "b.py", "c.py"]
    assert result.errors == []
    assert result.text.startswith("compare @a.py, @b.py. (and @c.py)\n\n")


def test_trailing_dot_kept_when_the_path_has_it(root: Path, ws: Workspace) -> None:
    (root / "v1.").write_text("odd\n")
    assert [a.ref for a in expand_at_references("@v1.", ws).attached] == ["v1."]


def test_escaped_spaces(root: Path, ws: Workspace) -> None:
    (root / "my notes").mkdir()
    (root / "my notes" / "todo list.md").write_text("- item\n")
    result = expand_at_references(r"check @my\ notes/todo\ list.md now", ws)
    assert result.attached[0].ref == "my notes/todo list.md"
    assert "Content from @my notes/todo list.md:\n```\n- item\n```" in result.text


def test_each_path_is_attached_once(root: Path, ws: Workspace) -> None:
    (root / "a.py").write_text("A\n")
    result = expand_at_references("@a.py and again @./a.py", ws)
    assert len(result.attached) == 1
    assert result.text.count("Content from @a.py") == 1


def test_fence_is_longer_than_backticks_in_the_content(root: Path, ws: Workspace) -> None:
    (root / "README.md").write_text("```sh\nmake\n```\n")
    result = expand_at_references("@README.md", ws)
    assert "````\n```sh\nmake\n```\n````" in result.text


async def test_works_inside_a_running_event_loop(root: Path, ws: Workspace) -> None:
    (root / "d").mkdir()
    (root / "d" / "f.txt").write_text("")
    result = expand_at_references("@d", ws)
    assert "d/f.txt" in result.text
    assert asyncio.get_running_loop().is_running()
