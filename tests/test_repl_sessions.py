"""/chat save|resume|list|delete and /resume in the session; how leaving tells the way back."""

from __future__ import annotations

from pathlib import Path

import pexpect
from prompt_toolkit.input import PipeInput

from qwen_code.config import qwen_home
from qwen_code.session.store import list_sessions
from qwen_code.ui import commands
from qwen_code.ui.repl import Repl
from tests.fakeserver import FakeLLM, text
from tests.helpers import CPR_REQUEST, PtyRepl, StartRepl, output, user_messages


async def test_chat_save_list_resume_delete(
    repl: tuple[Repl, PipeInput],
    fake_llm: FakeLLM,
) -> None:
    r, _ = repl
    fake_llm.script(text("first"), text("second"), text("after resume"))
    await r.send("topic one")
    await commands.dispatch(r, "/chat save one")
    await r.send("topic two")
    await commands.dispatch(r, "/chat list")
    assert "one" in output(r)
    await commands.dispatch(r, "/chat resume one")
    await r.send("back to one")
    body = fake_llm.chat_requests[-1].body
    assert body is not None
    users = [m["content"] for m in body["messages"] if m["role"] == "user"]
    assert users[0].startswith("topic one")
    assert users[-1] == "back to one"
    assert not any("topic two" in u for u in users)
    await commands.dispatch(r, "/chat delete one")
    await commands.dispatch(r, "/chat resume one")
    assert "No saved chat 'one'" in output(r)
    await commands.dispatch(r, "/chat bogus")
    assert "Usage: /chat" in output(r)


async def test_resume_another_session_by_id(
    repl: tuple[Repl, PipeInput],
    fake_llm: FakeLLM,
) -> None:
    r, _ = repl
    fake_llm.script(text("remembered"), text("next"))
    await r.send("the secret word is plum")
    first_id = r.session.id
    await r.session.clear()
    await commands.dispatch(r, f"/resume {first_id[:8]}")
    assert "Resumed session" in output(r)
    await r.send("what was the word?")
    body = fake_llm.chat_requests[-1].body
    assert body is not None
    assert any("plum" in str(m.get("content")) for m in body["messages"])


# --- leaving: the command that continues the session (in a pseudo-terminal) -------------

HINT = "Resume this session with: qwen-code -r "


def output_until_exit(repl: PtyRepl) -> str:
    """What the REPL prints until it exits, answering cursor-position requests."""
    seen = ""
    while repl.child.expect_exact([pexpect.EOF, CPR_REQUEST]) == 1:
        seen += repl.child.before or ""
        repl.child.send("\x1b[20;1R")
    return seen + (repl.child.before or "")


def test_quit_says_how_to_resume_and_that_command_does(
    start_repl: StartRepl, project: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(text("noted"), text("it was plum"))
    repl = start_repl()
    repl.send("the word is plum")
    repl.expect("noted")
    repl.prompt()
    repl.send("/quit")
    shown = output_until_exit(repl)
    (info,) = list_sessions(qwen_home(), project)
    assert f"{HINT}{info.id}" in shown
    again = start_repl("-r", info.id, wait=False)
    again.expect("Resumed session")
    again.prompt()
    again.send("which word?")
    again.expect("it was plum")
    assert user_messages(fake_llm) == ["the word is plum", "which word?"]


def test_leaving_before_any_prompt_saves_nothing_and_hints_nothing(
    start_repl: StartRepl, project: Path
) -> None:
    repl = start_repl()
    repl.child.sendcontrol("d")
    assert HINT not in output_until_exit(repl)
    assert list_sessions(qwen_home(), project, include_empty=True) == []
