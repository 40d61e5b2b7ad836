"""`qwen-code -r` with no id: the session picker, in a real pseudo-terminal."""

from __future__ import annotations

from pathlib import Path

from tests.fakeserver import FakeLLM, text
from tests.helpers import StartRepl, run_qwen_code, user_messages

DOWN = "\x1b[B"


def headless(cwd: Path, prompt: str) -> None:
    done = run_qwen_code(cwd, "-p", prompt, timeout=60)
    assert done.returncode == 0, done.stderr


def test_arrow_keys_pick_an_older_session(
    start_repl: StartRepl,
    project: Path,
    fake_llm: FakeLLM,
) -> None:
    fake_llm.script(text("noted: plum"), text("noted: pear"), text("it was plum"))
    headless(project, "the older word is plum")
    headless(project, "the newer word is pear")
    repl = start_repl("-r", wait=False)
    repl.expect("Resume which session?")
    repl.expect("the newer word is pear")  # newest first, selected
    repl.child.send(DOWN)
    repl.child.send("\r")
    repl.expect("Resumed session")
    repl.prompt()
    repl.send("which word?")
    repl.expect("it was plum")
    assert user_messages(fake_llm) == ["the older word is plum", "which word?"]


def test_escape_starts_a_new_session(
    start_repl: StartRepl,
    project: Path,
    fake_llm: FakeLLM,
) -> None:
    fake_llm.script(text("noted"), text("fresh"))
    headless(project, "remember this")
    repl = start_repl("-r", wait=False)
    repl.expect("Resume which session?")
    repl.child.send("\x1b")
    repl.prompt()
    repl.send("hello")
    repl.expect("fresh")
    assert user_messages(fake_llm) == ["hello"]
