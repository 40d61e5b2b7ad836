"""Custom commands in the REPL: /help, completion, running one (in-process on pipe input,
and once in a real pseudo-terminal)."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pexpect
import pytest
from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from qwen_code.agent.approval import HeadlessApprover
from qwen_code.agent.setup import open_session
from qwen_code.config import load_settings, qwen_home, resolve_provider
from qwen_code.custom_commands import Discovery
from qwen_code.ui import commands, commands_custom
from qwen_code.ui.completion import ReplCompleter
from qwen_code.ui.repl import Repl
from tests.fakeserver import FakeLLM, text
from tests.helpers import git_init


def write(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def user_message(fake: FakeLLM, index: int = -1) -> str:
    body = fake.chat_requests[index].body
    assert body is not None
    return [m for m in body["messages"] if m["role"] == "user"][-1]["content"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    git_init(root)
    folder = root / ".qwen" / "commands"
    write(root / "notes.txt", "remember the milk\n")
    write(
        folder / "git" / "commit.md",
        "---\ndescription: Write a commit message\n---\nCommit with message: {{args}}",
    )
    write(folder / "notes.toml", 'prompt = "Notes:\\n@{notes.txt}"\n')
    write(folder / "stat.md", "Shell says: !{echo {{args}}}")
    write(folder / "help.md", "I am hidden by the built-in /help")
    write(folder / "broken.toml", "prompt = \n")
    write(qwen_home() / "commands" / "mine.md", "From the user folder.")
    return root


@pytest.fixture
async def repl(project: Path) -> AsyncIterator[tuple[Repl, PipeInput]]:
    settings = load_settings(cwd=project)
    session = await open_session(
        settings, resolve_provider(settings), cwd=project, approver=HeadlessApprover("default")
    )
    console = Console(
        record=True, file=io.StringIO(), width=1000, force_terminal=False, soft_wrap=True
    )
    try:
        with create_pipe_input() as pipe:
            prompt = PromptSession[str](input=pipe, output=DummyOutput())
            yield Repl(session, console=console, home=qwen_home(), prompt_session=prompt), pipe
    finally:
        commands_custom.register(Discovery())  # leave the shared command table as it was
        await session.aclose()


def output(repl: Repl) -> str:
    return repl.console.export_text(clear=False)


async def test_custom_commands_show_in_help_and_completion(repl: tuple[Repl, PipeInput]) -> None:
    r, _ = repl
    started = output(r)
    assert "/broken" in started and "broken.toml" in started and "invalid TOML" in started
    assert "/help" in started and "hidden by the built-in" in started

    await commands.dispatch(r, "/help")
    shown = output(r)
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
    assert "$ echo 'it'\"'\"'s here'" in output(r)


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
    assert "⚠ !{echo go} was not run" in output(r)


async def test_edits_and_reload(repl: tuple[Repl, PipeInput], fake_llm: FakeLLM) -> None:
    r, _ = repl
    folder = r.session.cwd / ".qwen" / "commands"
    fake_llm.script(text("a"), text("b"))
    write(folder / "git" / "commit.md", "Edited: {{args}}")
    await r.handle("/git:commit x")
    assert user_message(fake_llm) == "Edited: x"

    write(folder / "fresh.md", "---\ndescription: Brand new\n---\nFresh")
    await r.handle("/commands")
    assert "/fresh" not in output(r)
    await r.handle("/commands reload")
    assert "fresh" in commands.COMMANDS
    await r.handle("/commands")
    assert "Brand new" in output(r)
    await r.handle("/fresh")
    assert user_message(fake_llm) == "Fresh"

    (folder / "fresh.md").unlink()
    await r.handle("/fresh")
    assert "cannot read the file" in output(r)
    assert len(fake_llm.chat_requests) == 2


# --- in a real terminal ----------------------------------------------------------------------

CPR_REQUEST = "\x1b[6n"


class PtyRepl:
    def __init__(self, cwd: Path) -> None:
        env = dict(os.environ)
        env.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "qwen_code"],
            cwd=str(cwd),
            env=env,
            encoding="utf-8",
            dimensions=(40, 120),
            timeout=30,
        )

    def expect(self, pattern: str) -> None:
        while self.child.expect_exact([pattern, CPR_REQUEST]) == 1:
            self.child.send("\x1b[20;1R")

    def send(self, line: str) -> None:
        self.child.send(line + "\r")

    def close(self) -> None:
        for _ in range(5):
            if not self.child.isalive():
                break
            self.child.sendcontrol("d")
            self.child.expect_exact([pexpect.EOF, pexpect.TIMEOUT, CPR_REQUEST], timeout=3)
        self.child.close(force=True)


@pytest.fixture
def pty(project: Path) -> Iterator[PtyRepl]:
    running = PtyRepl(project)
    yield running
    running.close()


def test_in_a_terminal(pty: PtyRepl, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("Shell output received."))
    pty.expect("(shift+tab)")
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
