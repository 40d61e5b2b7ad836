"""QWEN.md / AGENTS.md discovery, @imports, and saved memories."""

from __future__ import annotations

from pathlib import Path

from qwen_code.memory import MEMORY_HEADING, add_memory, discover, render
from tests.helpers import git_init


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_discovery_order_home_then_root_down_to_cwd(tmp_path: Path) -> None:
    home, root = tmp_path / "home", _mk(tmp_path / "repo")
    git_init(root)
    write(home / "QWEN.md", "user rules")
    write(root / "QWEN.md", "project rules")
    write(root / "AGENTS.md", "agents rules")
    write(root / "pkg" / "QWEN.md", "package rules")
    write(tmp_path / "QWEN.md", "outside the repo: never read")
    cwd = root / "pkg" / "sub"
    cwd.mkdir(parents=True)
    files = discover(cwd, home)
    assert [f.content for f in files] == [
        "user rules",
        "project rules",
        "agents rules",
        "package rules",
    ]
    text = render(files)
    assert text.index("user rules") < text.index("package rules")
    assert str(root / "QWEN.md") in text


def _mk(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def test_configured_file_names(tmp_path: Path) -> None:
    root = _mk(tmp_path / "repo")
    git_init(root)
    write(root / "CONTEXT.md", "custom")
    write(root / "QWEN.md", "default")
    files = discover(root, tmp_path / "home", ("CONTEXT.md",))
    assert [f.content for f in files] == ["custom"]


def test_imports_nest_and_are_confined(tmp_path: Path) -> None:
    root = _mk(tmp_path / "repo")
    git_init(root)
    write(root / "docs" / "style.md", "Use tabs. See @more.md")
    write(root / "docs" / "more.md", "More detail.")
    write(tmp_path / "secret.md", "SECRET")
    write(
        root / "QWEN.md",
        "Rules:\n@docs/style.md\n@../secret.md\nping @someone on slack\n```\n@docs/style.md\n```\n",
    )
    (file,) = discover(root, tmp_path / "home")
    assert "Use tabs. See More detail." in file.content
    assert "SECRET" not in file.content
    assert "outside the project" in file.content
    assert "@someone" in file.content
    assert "```\n@docs/style.md\n```" in file.content  # code blocks are left alone
    assert set(file.imports) == {
        (root / "docs" / "style.md").resolve(),
        (root / "docs" / "more.md").resolve(),
    }


def test_import_cycles_stop(tmp_path: Path) -> None:
    root = _mk(tmp_path / "repo")
    git_init(root)
    write(root / "a.md", "A then @b.md")
    write(root / "b.md", "B then @a.md")
    write(root / "QWEN.md", "@a.md")
    (file,) = discover(root, tmp_path / "home")
    assert file.content.startswith("A then B then [import of a.md skipped")
    assert "cycle" in file.content


def test_add_memory_creates_and_appends_under_the_heading(tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = add_memory("I prefer pnpm.", home)
    assert path.read_text() == f"{MEMORY_HEADING}\n\n- I prefer pnpm.\n"
    write(path, f"# Mine\n\nKeep this.\n\n{MEMORY_HEADING}\n\n- one\n\n## Other\n\ntext\n")
    add_memory("two", home)
    text = path.read_text()
    assert text.startswith("# Mine\n\nKeep this.")
    assert "- one\n- two\n" in text
    assert text.rstrip().endswith("## Other\n\ntext")
