"""/memory add and refresh, and the save_memory tool."""

from __future__ import annotations

from prompt_toolkit.input import PipeInput

from qwen_code.ui import commands
from qwen_code.ui.repl import Repl
from tests.fakeserver import FakeLLM, call, text, tool_turn
from tests.helpers import output


async def test_memory_add_saves_and_refreshes_the_system_prompt(
    repl: tuple[Repl, PipeInput],
    fake_llm: FakeLLM,
) -> None:
    r, _ = repl
    await commands.dispatch(r, "/memory add The user likes short answers.")
    saved = (r.home / "QWEN.md").read_text()
    assert "- The user likes short answers." in saved
    fake_llm.script(text("ok"))
    await r.send("hi")
    system = fake_llm.chat_requests[-1].body["messages"][0]["content"]  # type: ignore[index]
    assert "The user likes short answers." in system
    await commands.dispatch(r, "/memory show")
    assert "The user likes short answers." in output(r)


async def test_save_memory_tool_asks_like_an_edit(
    repl: tuple[Repl, PipeInput],
    fake_llm: FakeLLM,
) -> None:
    r, pipe = repl
    fake_llm.script(tool_turn(call("save_memory", fact="Deploys go through CI only.")), text("ok"))
    pipe.send_text("y")
    await r.send("remember that deploys go through CI")
    saved = (r.home / "QWEN.md").read_text()
    assert "Deploys go through CI only." in saved
    assert r.stats.tools["save_memory"].calls == 1
