"""The REPL's side of `ask_user_question` and `exit_plan_mode`, in a real pseudo-terminal:
choosing with arrows and Enter, typing an "Other" answer, ticking a multi-select question,
and a plan-mode session that ends through an approved plan and then edits without asking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fakeserver import FakeLLM, call, text, tool_turn
from tests.helpers import StartRepl, bodies
from tests.ordering import order_problem
from tests.test_ask_user import FEATURES, LIBRARY

DOWN = "\x1b[B"
ESC = "\x1b"

EXTRAS = FEATURES


def last_tool_message(fake: FakeLLM) -> str:
    return [m["content"] for m in bodies(fake)[-1]["messages"] if m["role"] == "tool"][-1]


def asks(*questions: dict[str, Any]) -> Any:
    return tool_turn(call("ask_user_question", questions=list(questions)))


def test_arrow_keys_and_enter_answer_a_question(start_repl: StartRepl, fake_llm: FakeLLM) -> None:
    fake_llm.script(asks(LIBRARY), text("Going with luxon."))
    repl = start_repl()
    repl.send("add dates")
    repl.expect("Which date library should we use?")
    repl.expect("Time zones built in")
    repl.expect("Esc dismiss")  # the whole list is drawn: it reads keys now
    repl.child.send(DOWN)
    repl.child.send("\r")
    repl.expect("Going with luxon.")
    repl.prompt()
    assert last_tool_message(fake_llm) == "The user answered:\n- Library: luxon"


def test_other_takes_typed_text_and_multi_select_ticks(
    start_repl: StartRepl, fake_llm: FakeLLM
) -> None:
    fake_llm.script(asks(LIBRARY, EXTRAS), text("Noted both."))
    repl = start_repl()
    repl.send("add dates")
    repl.expect("(1/2)")
    repl.expect("Esc dismiss")
    repl.child.send(DOWN + DOWN)  # onto "Other…", the last row
    repl.child.send("\r")
    repl.expect("Your answer")
    repl.send("moment, sadly")
    repl.expect("(2/2)")
    repl.expect("Space select")
    repl.child.send(" ")  # Logging
    repl.child.send(DOWN + DOWN)
    repl.child.send(" ")  # Tracing
    repl.child.send("\r")
    repl.expect("Noted both.")
    repl.prompt()
    assert last_tool_message(fake_llm) == (
        'The user answered:\n- Library: "moment, sadly"\n- Extras: Logging, Tracing'
    )


def test_escape_dismisses_the_questions(start_repl: StartRepl, fake_llm: FakeLLM) -> None:
    fake_llm.script(asks(LIBRARY), text("I will pick one myself."))
    repl = start_repl()
    repl.send("add dates")
    repl.expect("Esc dismiss")
    repl.child.send(ESC)
    repl.expect("I will pick one myself.")
    repl.prompt()
    assert "declined to answer" in last_tool_message(fake_llm)


def test_ctrl_c_at_a_question_cancels_the_turn(start_repl: StartRepl, fake_llm: FakeLLM) -> None:
    fake_llm.script(asks(LIBRARY), text("Fresh reply."))
    repl = start_repl()
    repl.send("add dates")
    repl.expect("Esc dismiss")
    repl.child.sendcontrol("c")
    repl.expect("Interrupted")
    repl.prompt()
    repl.send("never mind")
    repl.expect("Fresh reply.")
    messages = bodies(fake_llm)[-1]["messages"]
    assert order_problem(messages) is None
    assert messages[-1]["content"] == "never mind"


PLAN = "## Steps\n\n- write the notes file\n- say hello in it\n"


def test_an_approved_plan_ends_plan_mode_and_edits_run_without_asking(
    start_repl: StartRepl, project: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        tool_turn(call("exit_plan_mode", plan=PLAN)),
        tool_turn(call("write_file", file_path="notes.txt", content="hello\n")),
        text("Wrote the notes."),
    )
    repl = start_repl("--approval-mode", "plan", wait=False)
    repl.expect("plan (shift+tab)")
    repl.send("plan the notes")
    repl.expect("•")  # the plan, rendered as Markdown: a bullet list
    repl.expect("write the notes file")
    repl.expect("Would you like to proceed?")
    repl.expect("Esc keep planning")
    repl.child.send("\r")  # "Yes, and auto-accept edits"
    repl.expect("Plan approved")
    repl.expect("Wrote the notes.")
    repl.expect("auto-edit (shift+tab)")  # the footer shows the new mode
    assert (project / "notes.txt").read_text() == "hello\n"
    messages = bodies(fake_llm)[-1]["messages"]
    plan_result, write_result = [m["content"] for m in messages if m["role"] == "tool"]
    assert "approval mode is now auto-edit" in plan_result
    assert "Error" not in write_result


def test_keep_planning_sends_the_feedback(
    start_repl: StartRepl, project: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(tool_turn(call("exit_plan_mode", plan=PLAN)), text("I will revise it."))
    repl = start_repl("--approval-mode", "plan")
    repl.send("plan the notes")
    repl.expect("Esc keep planning")
    repl.child.send("3")  # "No, keep planning"
    repl.child.send("\r")
    repl.expect("What should change?")
    repl.send("call it todo.txt")
    repl.expect("I will revise it.")
    repl.expect("plan (shift+tab)")
    message = last_tool_message(fake_llm)
    assert "still in plan mode" in message and "call it todo.txt" in message
