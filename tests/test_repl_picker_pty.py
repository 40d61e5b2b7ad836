"""`qwen-code -r` with no id: the session picker, in a real pseudo-terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.fakeserver import FakeLLM, text
from tests.test_repl_pty import last_user_message, repo, start  # noqa: F401  (fixtures)

DOWN = "\x1b[B"


def headless(repo: Path, prompt: str) -> None:  # noqa: F811
    done = subprocess.run(
        [sys.executable, "-m", "qwen_code", "-p", prompt],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def user_messages(fake: FakeLLM) -> list[str]:
    body = fake.chat_requests[-1].body
    assert body is not None
    return [m["content"] for m in body["messages"] if m["role"] == "user"]


def test_arrow_keys_pick_an_older_session(
    start: Any,  # noqa: F811
    repo: Path,  # noqa: F811
    fake_llm: FakeLLM,
) -> None:
    fake_llm.script(text("noted: plum"), text("noted: pear"), text("it was plum"))
    headless(repo, "the older word is plum")
    headless(repo, "the newer word is pear")
    repl = start("-r", wait=False)
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
    start: Any,  # noqa: F811
    repo: Path,  # noqa: F811
    fake_llm: FakeLLM,
) -> None:
    fake_llm.script(text("noted"), text("fresh"))
    headless(repo, "remember this")
    repl = start("-r", wait=False)
    repl.expect("Resume which session?")
    repl.child.send("\x1b")
    repl.prompt()
    repl.send("hello")
    repl.expect("fresh")
    assert user_messages(fake_llm) == ["hello"]
