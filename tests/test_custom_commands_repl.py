"""Custom commands in the REPL: /help, completion, running one (in-process on pipe input,
and once in a real pseudo-terminal)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import PipeInput

from qwen_code.config import qwen_home
from qwen_code.ui import commands
from qwen_code.ui.completion import ReplCompleter
from qwen_code.ui.repl import Repl
from tests.fakeserver import FakeLLM, text
from tests.helpers import StartRepl, commands_dir, output, user_message, write


@pytest.fixture
def project(project: Path) -> Path:
    """The shared git project with custom commands in it and in $QWEN_HOME."""
    folder = commands_dir(project)
    write(project / "notes.txt", "remember the milk\n")
    write(
        folder / "git" / "commit.md",
        "---\ndescription: Write a commit message\n---\nCommit with message: {{args}}",
    )
    write(folder / "notes.toml", 'prompt = "Notes:\\n@{notes.txt}"\n')
    write(folder / "stat.md", "Shell says: !{echo {{args}}}")
    write(folder / "help.md", "I am hidden by the built-in /help")
    write(folder / "broken.toml", "prompt = \n")
    write(qwen_home() / "commands" / "mine.md", "From the user folder.")
    return project


async def test_custom_commands_show_in_help_and_completion(repl: tuple[Repl, PipeInput]) -> None:
    r, _ = repl
    started = output(r, clear=False)
    assert "/broken" in started and "broken.toml" in started and "invalid TOML" in started
    assert "/help" in started and "hidden by the built-in" in started

    await commands.dispatch(r, "/help")
    shown = output(r, clear=False)
    assert "/git:commit" in shown and "Write a commit message" in shown
    assert "/mine" in shown and "Custom command from" in shown and "mine.md" in shown
    assert "/approval-mode" in shown
    assert commands.COMMANDS["help"].description == "Show the commands and keys"

    completer = ReplCompleter(r._command_entries, None)
    found = completer.get_completions(Document("/git"), CompleteEvent(text_inserted=True))
    assert [c.text for c in found] == ["/git:commit"]


async def test_running_a_command_sends_the_expansion(
    repl: tuple[Repl, PipeInput], fake_llm: FakeLLM
) -> None:
    r, _ = repl
    fake_llm.script(text("Committed."), text("Noted."))
    await r.handle("/git:commit fix typo")
    assert user_message(fake_llm) == "Commit with message: fix typo"
    await r.handle("/notes")
    assert user_message(fake_llm) == "Notes:\nremember the milk\n"


async def test_shell_injection_asks_the_user(
    repl: tuple[Repl, PipeInput], fake_llm: FakeLLM
) -> None:
    r, pipe = repl
    fake_llm.script(text("Seen."))
    pipe.send_text("y")
    await r.handle("/stat it's here")
    assert user_message(fake_llm) == "Shell says: it's here"
    assert "$ echo 'it'\"'\"'s here'" in output(r, clear=False)


async def test_yolo_runs_without_asking_and_plan_refuses(
    repl: tuple[Repl, PipeInput], fake_llm: FakeLLM
) -> None:
    r, _ = repl
    fake_llm.script(text("one"), text("two"))
    r.set_mode("yolo")
    await r.handle("/stat go")
    assert user_message(fake_llm) == "Shell says: go"
    r.set_mode("plan")
    await r.handle("/stat go")
    assert "Plan mode allows only read-only tools" in user_message(fake_llm)
    assert "⚠ !{echo go} was not run" in output(r, clear=False)


async def test_edits_and_reload(repl: tuple[Repl, PipeInput], fake_llm: FakeLLM) -> None:
    r, _ = repl
    folder = commands_dir(r.session.cwd)
    fake_llm.script(text("a"), text("b"))
    write(folder / "git" / "commit.md", "Edited: {{args}}")
    await r.handle("/git:commit x")
    assert user_message(fake_llm) == "Edited: x"

    write(folder / "fresh.md", "---\ndescription: Brand new\n---\nFresh")
    await r.handle("/commands")
    assert "/fresh" not in output(r, clear=False)
    await r.handle("/commands reload")
    assert "fresh" in commands.COMMANDS
    await r.handle("/commands")
    assert "Brand new" in output(r, clear=False)
    await r.handle("/fresh")
    assert user_message(fake_llm) == "Fresh"

    (folder / "fresh.md").unlink()
    await r.handle("/fresh")
    assert "cannot read the file" in output(r, clear=False)
    assert len(fake_llm.chat_requests) == 2


# --- in a real terminal ----------------------------------------------------------------------


def test_in_a_terminal(start_repl: StartRepl, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("Shell output received."))
    pty = start_repl()
    pty.send("/help")
    pty.expect("Write a commit message")
    pty.expect("(shift+tab)")
    pty.send("/stat from-the-pty")
    pty.expect("$ echo from-the-pty")
    pty.expect("[y/n/a/p/u]")
    pty.child.send("y")
    pty.expect("Shell output received.")
    pty.expect("(shift+tab)")
    assert user_message(fake_llm) == "Shell says: from-the-pty"
