"""The interactive REPL, driven in a real pseudo-terminal against the scripted server."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from tests.fakeserver import FakeLLM, Turn, call, text, tool_turn
from tests.helpers import PtyRepl, StartRepl, user_message

Repl = PtyRepl
ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
"""Escape sequences (colours, cursor moves), to read what a pty showed as text."""


@pytest.fixture
def project(project: Path) -> Path:
    """The shared git project, holding calc.py."""
    (project / "calc.py").write_text("A = 1\n", encoding="utf-8")
    return project


def test_prompt_streams_the_answer(start_repl: StartRepl, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("The answer is **forty-two**, as always."))
    repl = start_repl()
    repl.send("what is the answer?")
    repl.expect("forty-two")
    repl.prompt()
    assert user_message(fake_llm) == "what is the answer?"


def test_approve_an_edit_after_seeing_its_diff(
    start_repl: StartRepl, project: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        tool_turn(call("edit", file_path="calc.py", old_string="A = 1", new_string="A = 10")),
        text("Changed A."),
    )
    repl = start_repl()
    repl.send("set A to 10")
    repl.expect("+A = 10")
    repl.expect("[y/n/a/p/u]")
    repl.child.send("y")
    repl.expect("Changed A.")
    repl.prompt()
    assert (project / "calc.py").read_text() == "A = 10\n"


def test_deny_a_shell_command_and_the_model_is_told(
    start_repl: StartRepl, project: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        tool_turn(call("run_shell_command", command="touch made")),
        text("Understood, not running it."),
    )
    repl = start_repl()
    repl.send("make a file")
    repl.expect("$ touch made")
    repl.expect("[y/n/a/p/u]")
    repl.child.send("n")
    repl.expect("why (optional)")
    repl.send("not now")
    repl.expect("Understood")
    repl.prompt()
    assert not (project / "made").exists()
    body = fake_llm.chat_requests[1].body
    assert body is not None
    tool_message = [m for m in body["messages"] if m["role"] == "tool"][-1]
    assert "denied" in tool_message["content"]
    assert "not now" in tool_message["content"]


def test_ctrl_c_cancels_a_long_stream_and_the_next_message_works(
    start_repl: StartRepl, fake_llm: FakeLLM
) -> None:
    long_answer = " ".join(f"word{i}" for i in range(2000))
    fake_llm.script(Turn(text=long_answer, chunk_delay_s=0.01, chunk_words=1), text("Fresh reply."))
    repl = start_repl()
    repl.send("talk a lot")
    repl.expect("word20")
    repl.child.logfile_read = seen = io.StringIO()
    repl.child.sendintr()
    repl.expect("Interrupted")
    repl.prompt()
    footer = ANSI.sub("", seen.getvalue())
    assert re.search(r"context ~[1-9]", footer), footer[-300:]  # the cut request counts
    repl.send("and now?")
    repl.expect("Fresh reply.")
    body = fake_llm.chat_requests[1].body
    assert body is not None
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert "interrupted" in body["messages"][2]["content"]


def test_at_file_attaches_its_content(start_repl: StartRepl, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("A is one."))
    repl = start_repl()
    repl.send("what is in @calc.py ?")
    repl.expect("A is one.")
    message = user_message(fake_llm)
    assert message.startswith("what is in @calc.py ?")
    assert "A = 1" in message


def test_bang_runs_a_shell_command_without_the_model(
    start_repl: StartRepl, fake_llm: FakeLLM
) -> None:
    fake_llm.script(text("I see the greeting."))
    repl = start_repl()
    repl.send("!echo hello-from-shell")
    repl.expect("hello-from-shell")
    repl.prompt()
    assert fake_llm.chat_requests == []
    repl.send("did you see it?")
    repl.expect("I see the greeting.")
    message = user_message(fake_llm)
    assert "hello-from-shell" in message
    assert message.endswith("did you see it?")


def test_history_persists_across_runs(start_repl: StartRepl, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("ok"))
    first = start_repl()
    first.send("remember this line")
    first.expect("ok")
    first.prompt()
    first.close()
    second = start_repl()
    second.child.send("\x1b[A")  # Up arrow
    second.expect("remember this line")


def test_clear_starts_a_new_conversation(start_repl: StartRepl, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("first answer"), text("second answer"))
    repl = start_repl()
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


def test_unknown_command_suggests_the_closest(start_repl: StartRepl, fake_llm: FakeLLM) -> None:
    repl = start_repl()
    repl.send("/stat")
    repl.expect("Did you mean /stats?")
    repl.prompt()
    repl.send("/help")
    repl.expect("/approval-mode")
    assert fake_llm.chat_requests == []


def test_prompt_interactive_runs_the_first_message(
    start_repl: StartRepl, fake_llm: FakeLLM
) -> None:
    fake_llm.script(text("Started with your task."))
    repl = start_repl("-i", "begin here", wait=False)
    repl.expect("Started with your task.")
    repl.prompt()
    assert user_message(fake_llm) == "begin here"


def test_multi_line_input(start_repl: StartRepl, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("got both lines"), text("got three"))
    repl = start_repl()
    repl.child.send("first line\x1b\r")  # Alt+Enter
    repl.send("second line")
    repl.expect("got both lines")
    repl.prompt()
    assert user_message(fake_llm) == "first line\nsecond line"
    repl.child.send("a\\\r")  # a trailing backslash continues the message
    repl.child.send("b\n")  # Ctrl+J
    repl.send("c")
    repl.expect("got three")
    assert user_message(fake_llm) == "a\nb\nc"


def test_shift_tab_cycles_the_approval_mode(start_repl: StartRepl, fake_llm: FakeLLM) -> None:
    repl = start_repl()
    repl.child.send("\x1b[Z")  # Shift+Tab
    repl.send("/approval-mode")
    repl.expect("Approval mode:")
    repl.expect("auto-edit")


def test_the_approval_legend_keeps_its_indent_on_a_narrow_terminal(
    start_repl: StartRepl, fake_llm: FakeLLM
) -> None:
    fake_llm.script(tool_turn(call("run_shell_command", command="touch made")), text("Not run."))
    repl = start_repl(columns=50)
    repl.child.logfile_read = seen = io.StringIO()
    repl.send("make a file")
    repl.expect("[y/n/a/p/u]")
    shown = ANSI.sub("", seen.getvalue()).replace("\r", "").replace("\a", "")
    shown = shown[: shown.index("Allow run_shell_command?")]
    legend = shown[shown.index("y yes") - 2 :].splitlines()
    assert len(legend) > 1  # it wraps at 50 columns
    assert all(line.startswith("  ") for line in legend if line.strip()), legend
    repl.child.send("n")
    repl.expect("why (optional)")
    repl.send("")
    repl.prompt()


def test_tab_then_one_enter_sends_the_completed_mention(
    start_repl: StartRepl, fake_llm: FakeLLM
) -> None:
    fake_llm.script(text("calc.py sets A."))
    repl = start_repl()
    repl.child.send("explain @cal")
    repl.expect("calc.py")  # the completion menu
    repl.child.send("\t")
    repl.child.send("\r")
    repl.expect("calc.py sets A.")
    repl.prompt()
    assert "explain @calc.py" in user_message(fake_llm)


def test_escape_sequences_in_the_models_answer_never_reach_the_terminal(
    start_repl: StartRepl, fake_llm: FakeLLM
) -> None:
    """The attacker is the model (or a file it quotes): its answer tries to write the
    clipboard (OSC 52), retitle the window and clear the screen."""
    evil = "Done.\x1b]52;c;cm0gLXJmIH4K\x07 \x1b]0;owned\x07\x1b[2J\x9b2J safe"
    fake_llm.script(text(evil))
    repl = start_repl()
    repl.child.logfile_read = seen = io.StringIO()
    repl.send("go")
    repl.expect("safe")
    repl.prompt()
    shown = seen.getvalue()
    for sequence in ("\x1b]52", "\x1b]0;owned", "\x1b[2J", "\x9b"):
        assert sequence not in shown
    assert "]0;owned" in ANSI.sub("", shown)  # what is left is shown as plain text
