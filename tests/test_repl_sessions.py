"""/chat save|resume|list|delete and /resume in the session."""

from __future__ import annotations

from prompt_toolkit.input import PipeInput

from qwen_code.ui import commands
from qwen_code.ui.repl import Repl
from tests.fakeserver import FakeLLM, text
from tests.helpers import output


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
