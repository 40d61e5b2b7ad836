"""The interactive REPL, driven in a real pseudo-terminal against the scripted server."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.fakeserver import FakeLLM, Turn, call, text, tool_turn
from tests.helpers import git_init

TIMEOUT = 30
CPR_REQUEST = "\x1b[6n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git_init(root)
    (root / "calc.py").write_text("A = 1\n", encoding="utf-8")
    return root


class Repl:
    """A running `qwen-code` in a pty."""

    def __init__(self, repo: Path, *args: str, wait: bool = True) -> None:
        env = dict(os.environ)
        env.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "qwen_code", *args],
            cwd=str(repo),
            env=env,
            encoding="utf-8",
            dimensions=(40, 120),
            timeout=TIMEOUT,
        )
        if wait:
            self.prompt()

    def prompt(self) -> None:
        """Wait until the input prompt is showing (its footer names shift+tab)."""
        self.expect("(shift+tab)")

    def send(self, line: str) -> None:
        self.child.send(line + "\r")

    def expect(self, pattern: str) -> None:
        """Wait for `pattern`, answering the terminal's cursor-position requests meanwhile
        (prompt-toolkit asks where the cursor is before drawing its footer)."""
        while self.child.expect_exact([pattern, CPR_REQUEST]) == 1:
            self.child.send("\x1b[20;1R")

    def close(self) -> None:
        """Leave with Ctrl+D (sent again if it arrived while a turn was still printing)."""
        for _ in range(5):
            if not self.child.isalive():
                break
            self.child.sendcontrol("d")
            self.child.expect_exact([pexpect.EOF, pexpect.TIMEOUT, CPR_REQUEST], timeout=3)
        self.child.close(force=True)


@pytest.fixture
def start(repo: Path) -> Iterator[Any]:
    running: list[Repl] = []

    def launch(*args: str, wait: bool = True) -> Repl:
        repl = Repl(repo, *args, wait=wait)
        running.append(repl)
        return repl

    yield launch
    for repl in running:
        repl.close()


def last_user_message(fake: FakeLLM, index: int = -1) -> str:
    body = fake.chat_requests[index].body
    assert body is not None
    return [m for m in body["messages"] if m["role"] == "user"][-1]["content"]


def test_prompt_streams_the_answer(start: Any, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("The answer is **forty-two**, as always."))
    repl = start()
    repl.send("what is the answer?")
    repl.expect("forty-two")
    repl.prompt()
    assert last_user_message(fake_llm) == "what is the answer?"


def test_approve_an_edit_after_seeing_its_diff(start: Any, repo: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        tool_turn(call("edit", file_path="calc.py", old_string="A = 1", new_string="A = 10")),
        text("Changed A."),
    )
    repl = start()
    repl.send("set A to 10")
    repl.expect("+A = 10")
    repl.expect("[y/n/a/p/u]")
    repl.child.send("y")
    repl.expect("Changed A.")
    repl.prompt()
    assert (repo / "calc.py").read_text() == "A = 10\n"


def test_deny_a_shell_command_and_the_model_is_told(
    start: Any, repo: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        tool_turn(call("run_shell_command", command="touch made")),
        text("Understood, not running it."),
    )
    repl = start()
    repl.send("make a file")
    repl.expect("$ touch made")
    repl.expect("[y/n/a/p/u]")
    repl.child.send("n")
    repl.expect("why (optional)")
    repl.send("not now")
    repl.expect("Understood")
    repl.prompt()
    assert not (repo / "made").exists()
    body = fake_llm.chat_requests[1].body
    assert body is not None
    tool_message = [m for m in body["messages"] if m["role"] == "tool"][-1]
    assert "denied" in tool_message["content"]
    assert "not now" in tool_message["content"]


def test_ctrl_c_cancels_a_long_stream_and_the_next_message_works(
    start: Any, fake_llm: FakeLLM
) -> None:
    long_answer = " ".join(f"word{i}" for i in range(2000))
    fake_llm.script(Turn(text=long_answer, chunk_delay_s=0.01, chunk_words=1), text("Fresh reply."))
    repl = start()
    repl.send("talk a lot")
    repl.expect("word20")
    repl.child.sendintr()
    repl.expect("Interrupted")
    repl.prompt()
    repl.send("and now?")
    repl.expect("Fresh reply.")
    body = fake_llm.chat_requests[1].body
    assert body is not None
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert "interrupted" in body["messages"][2]["content"]


def test_at_file_attaches_its_content(start: Any, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("A is one."))
    repl = start()
    repl.send("what is in @calc.py ?")
    repl.expect("A is one.")
    message = last_user_message(fake_llm)
    assert message.startswith("what is in @calc.py ?")
    assert "A = 1" in message


def test_bang_runs_a_shell_command_without_the_model(start: Any, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("I see the greeting."))
    repl = start()
    repl.send("!echo hello-from-shell")
    repl.expect("hello-from-shell")
    repl.prompt()
    assert fake_llm.chat_requests == []
    repl.send("did you see it?")
    repl.expect("I see the greeting.")
    message = last_user_message(fake_llm)
    assert "hello-from-shell" in message
    assert message.endswith("did you see it?")


def test_history_persists_across_runs(start: Any, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("ok"))
    first = start()
    first.send("remember this line")
    first.expect("ok")
    first.prompt()
    first.close()
    second = start()
    second.child.send("\x1b[A")  # Up arrow
    second.expect("remember this line")


def test_clear_starts_a_new_conversation(start: Any, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("first answer"), text("second answer"))
    repl = start()
    repl.send("one")
    repl.expect("first answer")
    repl.prompt()
    repl.send("/clear")
    repl.expect("new conversation")
    repl.prompt()
    repl.send("two")
    repl.expect("second answer")
    body = fake_llm.chat_requests[1].body
    assert body is not None
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


def test_unknown_command_suggests_the_closest(start: Any, fake_llm: FakeLLM) -> None:
    repl = start()
    repl.send("/stat")
    repl.expect("Did you mean /stats?")
    repl.prompt()
    repl.send("/help")
    repl.expect("/approval-mode")
    assert fake_llm.chat_requests == []


def test_prompt_interactive_runs_the_first_message(start: Any, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("Started with your task."))
    repl = start("-i", "begin here", wait=False)
    repl.expect("Started with your task.")
    repl.prompt()
    assert last_user_message(fake_llm) == "begin here"


def test_multi_line_input(start: Any, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("got both lines"), text("got three"))
    repl = start()
    repl.child.send("first line\x1b\r")  # Alt+Enter
    repl.send("second line")
    repl.expect("got both lines")
    repl.prompt()
    assert last_user_message(fake_llm) == "first line\nsecond line"
    repl.child.send("a\\\r")  # a trailing backslash continues the message
    repl.child.send("b\n")  # Ctrl+J
    repl.send("c")
    repl.expect("got three")
    assert last_user_message(fake_llm) == "a\nb\nc"


def test_shift_tab_cycles_the_approval_mode(start: Any, fake_llm: FakeLLM) -> None:
    repl = start()
    repl.child.send("\x1b[Z")  # Shift+Tab
    repl.send("/approval-mode")
    repl.expect("Approval mode:")
    repl.expect("auto-edit")
