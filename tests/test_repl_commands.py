"""Slash commands and approvals in-process: a Repl on pipe input and a recording console
(the `repl` fixture of conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prompt_toolkit.input import PipeInput

from qwen_code.ui import commands
from qwen_code.ui.repl import Repl
from tests.fakeserver import FakeLLM, call, text, tool_turn
from tests.helpers import output


@pytest.fixture
def project(project: Path) -> Path:
    """The shared git project, with house rules in its QWEN.md."""
    (project / "QWEN.md").write_text("# House rules\nAlways run the tests.\n")
    return project


async def test_about_tools_memory(repl: tuple[Repl, PipeInput]) -> None:
    r, _ = repl
    await commands.dispatch(r, "/about")
    await commands.dispatch(r, "/tools")
    await commands.dispatch(r, "/memory show")
    shown = output(r)
    assert "qwen3-coder-plus" in shown
    assert r.session.provider.base_url in shown
    assert "OPENAI_API_KEY" in shown
    assert "262,144" in shown  # the window the (local) server reports, over the table's 1M
    for name in ("read_file", "edit", "run_shell_command"):
        assert name in shown
    assert "Always run the tests." in shown


async def test_model_switch_and_list(repl: tuple[Repl, PipeInput], fake_llm: FakeLLM) -> None:
    r, _ = repl
    fake_llm.models = ["qwen3-coder-plus", "qwen3-coder-flash"]
    await commands.dispatch(r, "/model")
    assert "qwen3-coder-flash" in output(r)
    await commands.dispatch(r, "/model qwen3-coder-flash")
    assert r.session.model == "qwen3-coder-flash"
    fake_llm.script(text("hi"))
    await r.send("hello")
    body = fake_llm.chat_requests[-1].body
    assert body is not None
    assert body["model"] == "qwen3-coder-flash"


async def test_approval_mode_and_stats(repl: tuple[Repl, PipeInput], fake_llm: FakeLLM) -> None:
    r, _ = repl
    await commands.dispatch(r, "/approval-mode yolo")
    assert r.session.runner.mode == "yolo"
    assert not r.session.tool_ctx.workspace.allow_outside  # yolo keeps the boundary
    await commands.dispatch(r, "/approval-mode sometimes")
    assert "Unknown mode" in output(r)
    fake_llm.script(tool_turn(call("run_shell_command", command="echo hi")), text("done"))
    await r.send("run it")
    await commands.dispatch(r, "/stats")
    stats = output(r)
    assert "run_shell_command" in stats
    assert "Model requests: 2" in stats
    assert "Context: context" not in stats and "\nContext: " in stats


async def test_a_denied_call_is_counted_as_denied_not_as_an_error(
    repl: tuple[Repl, PipeInput], fake_llm: FakeLLM
) -> None:
    r, _ = repl
    await commands.dispatch(r, "/approval-mode plan")
    write = call("write_file", file_path="new.txt", content="x")
    fake_llm.script(tool_turn(write), text("planned"))
    await r.send("make it")
    output(r)
    await commands.dispatch(r, "/stats")
    stats = r.stats.tools
    assert (stats["write_file"].calls, stats["write_file"].errors) == (0, 0)
    assert stats["write_file"].denied == 1
    assert r.stats.denials == 1
    assert "denied: 1" in output(r)


async def test_init_asks_the_agent_to_write_qwen_md(
    repl: tuple[Repl, PipeInput], fake_llm: FakeLLM
) -> None:
    r, _ = repl
    fake_llm.script(text("Wrote QWEN.md."))
    await commands.dispatch(r, "/init")
    assert "QWEN.md" in fake_llm.chat_requests[-1].body["messages"][-1]["content"]  # type: ignore[index]


async def test_init_puts_the_new_qwen_md_in_use(
    repl: tuple[Repl, PipeInput], fake_llm: FakeLLM
) -> None:
    r, _ = repl
    await commands.dispatch(r, "/approval-mode yolo")
    rules = "# Rules\nIndent with tabs.\n"
    fake_llm.script(
        tool_turn(call("write_file", file_path="QWEN.md", content=rules)), text("Wrote QWEN.md.")
    )
    await commands.dispatch(r, "/init")
    output(r)
    await commands.dispatch(r, "/memory show")
    assert "Indent with tabs." in output(r)  # without /memory refresh
    fake_llm.script(text("ok"))
    await r.send("hello")
    system = fake_llm.chat_requests[-1].body["messages"][0]["content"]  # type: ignore[index]
    assert "Indent with tabs." in system


async def test_always_for_this_project_saves_the_rule(
    repl: tuple[Repl, PipeInput], fake_llm: FakeLLM
) -> None:
    r, pipe = repl
    fake_llm.script(
        tool_turn(call("run_shell_command", command="echo one")),
        tool_turn(call("run_shell_command", command="echo two")),
        text("done"),
    )
    pipe.send_text("p")
    await r.send("echo twice")
    saved = json.loads((r.session.cwd / ".qwen" / "settings.json").read_text())
    assert saved["permissions"]["allow"] == ["Bash(echo *)"]
    tool_messages = [
        m
        for m in fake_llm.chat_requests[-1].body["messages"]
        if m["role"] == "tool"  # type: ignore[index]
    ]
    assert "one" in tool_messages[0]["content"]
    assert "two" in tool_messages[1]["content"]  # the second call was not asked about


async def test_directory_add_widens_the_workspace(
    repl: tuple[Repl, PipeInput], tmp_path: Path, fake_llm: FakeLLM
) -> None:
    r, _ = repl
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("shared notes\n")
    await commands.dispatch(r, "/approval-mode yolo")
    read = call("read_file", file_path=str(other / "notes.txt"))
    fake_llm.script(tool_turn(read), text("could not"))
    await r.send("read it")
    refused = fake_llm.chat_requests[-1].body["messages"][-1]["content"]
    assert "outside the workspace" in refused  # yolo does not lift the boundary
    await commands.dispatch(r, f"/dir add {other}, {tmp_path / 'missing'}")
    await commands.dispatch(r, "/directory show")
    shown = output(r)
    assert f"Added {other} to the workspace." in shown
    assert "is not a directory" in shown
    system = r.session.agent.conversation.messages[0]["content"]
    assert f"Also in the workspace: {other}" in system
    fake_llm.script(tool_turn(read), text("read it"))
    await r.send("again")
    assert "shared notes" in fake_llm.chat_requests[-1].body["messages"][-1]["content"]


async def test_help_prints_descriptions_as_written(repl: tuple[Repl, PipeInput]) -> None:
    """Usage strings such as `[what to focus on]` are text, not rich markup."""
    r, _ = repl
    await r.handle("/help")
    shown = output(r)
    assert "[what to focus on]" in shown
