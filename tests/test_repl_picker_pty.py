"""`qwen-code -r` with no id: the session picker, in a real pseudo-terminal."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from qwen_code.config import qwen_home
from qwen_code.session.store import list_sessions
from tests.fakeserver import FakeLLM, text
from tests.helpers import CPR_REQUEST, PtyRepl, StartRepl, run_qwen_code, user_messages

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


def test_the_list_leaves_out_sessions_without_a_prompt_and_marks_headless_runs(
    start_repl: StartRepl,
    project: Path,
    fake_llm: FakeLLM,
) -> None:
    """Before: every REPL opened and left was listed as `0 msgs (no message)`, and a
    headless run looked like a conversation."""
    fake_llm.script(text("noted: plum"), text("hi there"), text("it was plum"))
    headless(project, "the word is plum")
    repl = start_repl()
    repl.send("hello from the repl")
    repl.expect("hi there")
    repl.prompt()
    repl.close()
    start_repl().close()  # opened and left: nothing is saved now
    assert len(list_sessions(qwen_home(), project, include_empty=True)) == 2
    old_empty(project)
    repl = start_repl("-r", wait=False)
    repl.expect("Resume which session?")
    listing = output_until(repl, "Esc new session")
    conversation = listing.index(" KB      hello from the repl")  # no mark
    run = listing.index(" KB  -p  the word is plum")  # a headless run
    assert conversation < run  # newest first
    assert "(no message)" not in listing and "0 msgs" not in listing
    repl.child.send(DOWN)
    repl.child.send("\r")
    repl.expect("Resumed session")
    repl.prompt()
    repl.send("which word?")
    repl.expect("it was plum")
    assert user_messages(fake_llm) == ["the word is plum", "which word?"]


def old_empty(project: Path) -> None:
    """The newest file: what a REPL opened and left wrote before (a header, no message)."""
    from qwen_code.session.store import sessions_dir

    path = sessions_dir(qwen_home(), project) / "0123abcd-0000-4000-8000-000000000000.jsonl"
    path.write_text(json.dumps({"type": "session", "id": path.stem, "model": "m"}) + "\n")
    later = time.time() + 60
    os.utime(path, (later, later))


def output_until(repl: PtyRepl, pattern: str) -> str:
    """Everything the terminal shows until `pattern`, answering cursor-position requests."""
    seen = ""
    while repl.child.expect_exact([pattern, CPR_REQUEST]) == 1:
        seen += repl.child.before or ""
        repl.child.send("\x1b[20;1R")
    return seen + (repl.child.before or "")
