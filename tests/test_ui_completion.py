"""The REPL completer: slash commands, their arguments and `@path`s in a real git repo."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent, Completion
from prompt_toolkit.document import Document

from qwen_code.ui.completion import FileIndex, ReplCompleter, SlashCommand
from tests.helpers import git_init

MODES = ["plan", "default", "auto-edit", "yolo"]


def commands() -> list[SlashCommand]:
    return [
        ("help", "Show the commands and keys", None),
        ("/approval-mode", "Show or set the approval mode", lambda arg: MODES),
        ("model", "Show or switch the model", lambda arg: ["qwen3-coder-plus", "qwen3-max"]),
        ("memory", "Show the instruction files", lambda arg: ["show"]),
        ("clear", "Start a new conversation", None),
    ]


def complete(completer: ReplCompleter, text: str) -> list[Completion]:
    return list(completer.get_completions(Document(text), CompleteEvent(text_inserted=True)))


def texts(completions: list[Completion]) -> list[str]:
    return [c.text for c in completions]


@pytest.fixture
def repo(root: Path) -> Path:
    git_init(root)
    (root / ".gitignore").write_text("secret.env\nbuild/\n")
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('app')\n")
    (root / "src" / "pkg" / "apply.py").write_text("")
    (root / "src" / "pkg" / "util.py").write_text("")
    (root / "README.md").write_text("# readme\n")
    (root / "secret.env").write_text("KEY=1\n")
    (root / "build").mkdir()
    (root / "build" / "app.o").write_text("")
    (root / "my docs").mkdir()
    (root / "my docs" / "release notes.md").write_text("")
    return root


@pytest.fixture
def completer(repo: Path) -> ReplCompleter:
    return ReplCompleter(commands, repo)


# -- slash commands ---------------------------------------------------------------------


def test_slash_alone_lists_every_command_with_its_description() -> None:
    found = complete(ReplCompleter(commands, None), "/")
    assert texts(found) == ["/help", "/approval-mode", "/model", "/memory", "/clear"]
    assert found[1].display_meta_text == "Show or set the approval mode"
    assert all(c.start_position == -1 for c in found)


def test_slash_prefix_filters_and_replaces_the_typed_word() -> None:
    found = complete(ReplCompleter(commands, None), "/me")
    assert texts(found) == ["/memory"]
    assert found[0].start_position == -3


def test_slash_substring_matches_come_after_prefix_matches() -> None:
    found = texts(complete(ReplCompleter(commands, None), "/mo"))
    assert found == ["/model", "/approval-mode", "/memory"]


def test_slash_only_as_the_first_word() -> None:
    completer = ReplCompleter(commands, None)
    assert complete(completer, "see /he") == []
    assert complete(completer, " /he") == []
    assert complete(completer, "line one\n/he") == []


def test_argument_completion_after_the_command_name() -> None:
    completer = ReplCompleter(commands, None)
    found = complete(completer, "/approval-mode ")
    assert texts(found) == MODES
    assert all(c.start_position == 0 for c in found)
    found = complete(completer, "/approval-mode de")
    assert texts(found) == ["default"]
    assert found[0].start_position == -2


def test_argument_completer_gets_the_argument_text() -> None:
    seen: list[str] = []

    def args(arg: str) -> list[str]:
        seen.append(arg)
        return ["qwen3-max"]

    completer = ReplCompleter(lambda: [("model", "", args)], None)
    assert texts(complete(completer, "/model qwen3")) == ["qwen3-max"]
    assert seen == ["qwen3"]


def test_no_argument_completion_for_unknown_or_argless_commands() -> None:
    completer = ReplCompleter(commands, None)
    assert complete(completer, "/help ") == []
    assert complete(completer, "/nope ") == []


def test_a_failing_source_or_argument_completer_completes_nothing() -> None:
    def broken() -> list[SlashCommand]:
        raise RuntimeError("boom")

    def bad_args(arg: str) -> list[str]:
        raise RuntimeError("boom")

    assert complete(ReplCompleter(broken, None), "/") == []
    assert complete(ReplCompleter(lambda: [("x", "", bad_args)], None), "/x ") == []


# -- @paths -----------------------------------------------------------------------------


def test_at_alone_offers_top_level_entries(completer: ReplCompleter) -> None:
    found = texts(complete(completer, "look at @"))
    assert set(found) == {".gitignore", "README.md", "src/", "my\\ docs/"}


def test_ignored_files_are_not_offered(completer: ReplCompleter) -> None:
    assert complete(completer, "@secret") == []
    assert complete(completer, "@build") == []
    assert "build/app.o" not in texts(complete(completer, "@app"))


def test_directories_get_a_trailing_slash(completer: ReplCompleter) -> None:
    found = complete(completer, "@sr")
    assert texts(found)[0] == "src/"
    assert found[0].display_meta_text == "dir"
    assert found[0].start_position == -2


def test_path_prefix_lists_the_directory_children(completer: ReplCompleter) -> None:
    assert texts(complete(completer, "@src/"))[:2] == ["src/app.py", "src/pkg/"]
    assert texts(complete(completer, "@src/pkg/u")) == ["src/pkg/util.py"]


def test_basename_prefix_ranks_before_substring(completer: ReplCompleter) -> None:
    found = texts(complete(completer, "@app"))
    assert found[:2] == ["src/app.py", "src/pkg/apply.py"]
    assert texts(complete(completer, "@til")) == ["src/pkg/util.py"]


def test_matching_ignores_case(completer: ReplCompleter) -> None:
    assert texts(complete(completer, "@readme")) == ["README.md"]


def test_paths_with_spaces_are_escaped(completer: ReplCompleter) -> None:
    found = complete(completer, "@my")
    assert texts(found) == ["my\\ docs/", "my\\ docs/release\\ notes.md"]
    assert found[0].display_text == "my docs/"
    found = complete(completer, "@my\\ docs/rel")
    assert texts(found) == ["my\\ docs/release\\ notes.md"]
    assert found[0].start_position == -len("my\\ docs/rel")


def test_escape_in_progress_still_completes(completer: ReplCompleter) -> None:
    assert texts(complete(completer, "@my\\"))[0] == "my\\ docs/"


def test_at_token_anywhere_but_not_inside_words(completer: ReplCompleter) -> None:
    assert texts(complete(completer, "/memory compare @READ")) == ["README.md"]
    assert texts(complete(completer, "first line\n(@READ")) == ["README.md"]
    assert complete(completer, "mail me@READ") == []
    assert complete(completer, "@README.md and more") == []


def test_candidates_are_capped(root: Path) -> None:
    git_init(root)
    for i in range(30):
        (root / f"file{i:02}.txt").write_text("")
    completer = ReplCompleter(commands, root, max_candidates=10)
    found = texts(complete(completer, "@file"))
    assert found == [f"file{i:02}.txt" for i in range(10)]


def test_the_index_is_cached_and_refreshed_in_the_background(root: Path) -> None:
    calls: list[float] = []

    def lister(path: Path) -> list[Path]:
        calls.append(time.monotonic())
        return sorted(path.iterdir())

    (root / "one.txt").write_text("")
    index = FileIndex(root, ttl_s=0.05, lister=lister)
    completer = ReplCompleter(commands, root, index=index)
    assert texts(complete(completer, "@one")) == ["one.txt"]
    (root / "two.txt").write_text("")
    assert complete(completer, "@two") == []  # cached, no new listing
    assert len(calls) == 1
    time.sleep(0.06)
    complete(completer, "@two")  # stale: served as is, rebuilt behind it
    deadline = time.monotonic() + 5
    while not complete(completer, "@two") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert texts(complete(completer, "@two")) == ["two.txt"]


def test_no_paths_without_a_root() -> None:
    assert complete(ReplCompleter(commands, None), "@") == []
