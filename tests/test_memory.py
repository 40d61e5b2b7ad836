"""QWEN.md / AGENTS.md discovery, @imports, and saved memories."""

from __future__ import annotations

import sys
from pathlib import Path

from qwen_code.memory import (
    MAX_FILE_CHARS,
    MAX_IMPORTS,
    MAX_TOTAL_CHARS,
    MEMORY_HEADING,
    add_memory,
    discover,
    memory_file_name,
    notices,
    render,
)
from tests.helpers import fan_out, git_init, write


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


# Bounds: fan-out, sizes, symbolic links out of the project, configured names.


class _Opens:
    """Counts files opened under `root`, through a real audit hook (`open` events); more
    than `cap` opens raise, so unbounded expansion fails the test at once instead of
    running for minutes."""

    active: _Opens | None = None
    installed = False

    def __init__(self, root: Path, cap: int = 500) -> None:
        self.root, self.cap, self.paths = str(root), cap, []

    def __enter__(self) -> _Opens:
        if not _Opens.installed:
            sys.addaudithook(_Opens._hook)
            _Opens.installed = True
        _Opens.active = self
        return self

    def __exit__(self, *exc: object) -> None:
        _Opens.active = None

    @staticmethod
    def _hook(event: str, args: tuple[object, ...]) -> None:
        counter = _Opens.active
        if counter is None or event != "open" or not isinstance(args[0], str):
            return
        if args[0].startswith(counter.root):
            counter.paths.append(args[0])
            if len(counter.paths) > counter.cap:
                raise RuntimeError(f"more than {counter.cap} files opened: unbounded imports")


def test_import_fan_out_reads_each_file_once(tmp_path: Path) -> None:
    root = _mk(tmp_path / "repo")
    git_init(root)
    fan_out(root)
    with _Opens(tmp_path) as opens:
        (file,) = discover(root, tmp_path / "home")
    assert len(opens.paths) <= 7  # QWEN.md and f1..f6, once each
    assert len(file.content) < 10_000
    assert not file.truncated
    for n in range(1, 6):
        assert file.content.count(f"File {n}.") == 1
    assert "[import of f2.md: already included above]" in file.content
    assert file.content.count("already included above") == 4 * 29  # f1-f4: 29 repeats each
    assert file.content.count("imports nest deeper than 5") == 30  # f5 -> f6: too deep


def test_distinct_imports_are_capped(tmp_path: Path) -> None:
    root = _mk(tmp_path / "repo")
    git_init(root)
    for n in range(MAX_IMPORTS + 50):
        write(root / "many" / f"m{n}.md", f"part {n}")
    write(root / "QWEN.md", "\n".join(f"@many/m{n}.md" for n in range(MAX_IMPORTS + 50)))
    with _Opens(tmp_path) as opens:
        (file,) = discover(root, tmp_path / "home")
    assert len(file.imports) == MAX_IMPORTS
    assert len(opens.paths) <= MAX_IMPORTS + 1
    assert f"part {MAX_IMPORTS - 1}" in file.content
    assert f"part {MAX_IMPORTS}\n" not in file.content + "\n"
    assert any(f"beyond the first {MAX_IMPORTS}" in note for note in notices([file]))


def test_sizes_are_capped_per_file_and_in_total(tmp_path: Path) -> None:
    root = _mk(tmp_path / "repo")
    git_init(root)
    big = ("x" * 99 + "\n") * 2_000  # 200,000 characters
    write(root / "big.md", big)
    write(root / "QWEN.md", "@big.md\n@big.md\n")
    cwd = root
    for level in range(6):
        cwd = cwd / f"d{level}"
        write(cwd / "QWEN.md", big)
    files = discover(cwd, tmp_path / "home")
    loaded = [f for f in files if not f.skipped]
    assert loaded[0].truncated
    assert all(len(f.content) <= MAX_FILE_CHARS for f in files)
    assert sum(len(f.content) for f in files) <= MAX_TOTAL_CHARS
    assert len(render(files)) < MAX_TOTAL_CHARS + 2_000
    said = notices(files)
    assert f"{root / 'QWEN.md'} was cut at {MAX_FILE_CHARS} characters." in said
    assert any("together reached the limit" in note for note in said)
    assert [f.skipped for f in files].count(True) >= 2


def test_context_file_linked_outside_the_project_is_not_read(tmp_path: Path) -> None:
    secret = write(tmp_path / "outside" / "secret.txt", "TOP-SECRET-TOKEN")
    write(tmp_path / "outside" / "notes.md", "OUTSIDE-NOTES")
    root = _mk(tmp_path / "repo")
    git_init(root)
    (root / "AGENTS.md").symlink_to(secret)
    (root / "docs").symlink_to(tmp_path / "outside", target_is_directory=True)
    write(root / "QWEN.md", "Rules.\n@docs/notes.md\n")
    with _Opens(tmp_path / "outside") as opens:
        files = discover(root, tmp_path / "home")
    assert opens.paths == []
    assert "TOP-SECRET" not in render(files) and "OUTSIDE-NOTES" not in render(files)
    agents = next(f for f in files if f.path.name == "AGENTS.md")
    assert agents.skipped and agents.content == ""
    assert notices(files) == [
        f"{root / 'QWEN.md'}: the import of docs/notes.md was skipped: it is outside the "
        "project and the qwen-code home.",
        f"{root / 'AGENTS.md'} was not loaded: it leads to {secret.resolve()}, outside the "
        "project and the qwen-code home.",
    ]


def test_the_users_own_file_may_link_to_dotfiles(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    write(dotfiles / "qwen.md", "My rules.\n@style.md\n")
    write(dotfiles / "style.md", "Tabs.")
    home = _mk(tmp_path / "home")
    (home / "QWEN.md").symlink_to(dotfiles / "qwen.md")
    root = _mk(tmp_path / "repo")
    git_init(root)
    (file,) = discover(root, home)
    assert file.content == "My rules.\nTabs."
    assert notices([file]) == []


def test_context_file_names_must_be_plain_names(tmp_path: Path) -> None:
    root = _mk(tmp_path / "repo")
    git_init(root)
    write(tmp_path / "secret.md", "SECRET")
    write(root / "sub" / "QWEN.md", "SUB")
    write(root / "RULES.md", "rules")
    names = ("../secret.md", "sub/QWEN.md", str(tmp_path / "secret.md"), "a..b.md", "RULES.md")
    files = discover(root, tmp_path / "home", names)
    assert [f.content for f in files if not f.skipped] == ["rules"]
    assert "SECRET" not in render(files) and "SUB" not in render(files)
    said = notices(files)
    assert len(said) == 4
    assert said[0] == (
        "the context file name '../secret.md' (setting context.fileName) was ignored: it "
        "must be a plain file name, without '/' or '..'."
    )


def test_broken_imports_do_not_stop_the_load(tmp_path: Path) -> None:
    root = _mk(tmp_path / "repo")
    git_init(root)
    (root / "loop.md").symlink_to(root / "loop.md")
    write(root / "QWEN.md", "a @loop.md b @~no-such-user-xyz/x.md c @" + "n/" * 300 + "x.md")
    (file,) = discover(root, tmp_path / "home")
    assert file.content.startswith("a @loop.md b @~no-such-user-xyz/x.md c @n/n/")


def test_memories_are_saved_in_the_home_only(tmp_path: Path) -> None:
    base = tmp_path / "w"
    home = _mk(base / "home")
    for name in ("../escaped.md", "sub/QWEN.md", str(base / "abs.md")):
        try:
            add_memory("a fact", home, name)
        except ValueError as exc:
            assert "not a plain file name" in str(exc)
        else:
            raise AssertionError(f"{name!r} was accepted")
    assert sorted(p.name for p in base.rglob("*")) == ["home"]
    assert memory_file_name(("../escaped.md", "RULES.md")) == "RULES.md"
    assert memory_file_name(("../escaped.md",)) == "QWEN.md"
