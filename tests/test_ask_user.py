"""`ask_user_question` and `exit_plan_mode`: parameters and schema, what the model is told
when the user answers, dismisses, approves or sends the plan back, and with nobody to ask
(a headless run against the scripted server). The REPL side is in test_ask_user_pty.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from qwen_code.agent.approval import HeadlessApprover
from qwen_code.agent.events import ToolResult
from qwen_code.agent.tool_runner import ToolRunner
from qwen_code.prompts import load
from qwen_code.tools.ask_user import AskUserQuestionTool
from qwen_code.tools.base import ToolContext
from qwen_code.tools.exit_plan_mode import ExitPlanModeTool
from qwen_code.tools.registry import ValidCall, builtin_registry
from qwen_code.tools.user_input import Answer, PlanReview, Question
from tests.fakeserver import FakeLLM, call, text, tool_turn
from tests.helpers import bodies, run_qwen_code, tool_call

LIBRARY = {
    "question": "Which date library should we use?",
    "header": "Library",
    "options": [
        {"label": "dayjs", "description": "Small, moment-like API"},
        {"label": "luxon", "description": "Time zones built in"},
    ],
}
FEATURES = {
    "question": "Which extras do you want?",
    "header": "Extras",
    "options": [
        {"label": "Logging", "description": "Log each request"},
        {"label": "Metrics", "description": "Count requests"},
        {"label": "Tracing", "description": "Trace spans"},
    ],
    "multiSelect": True,
}


@dataclass
class ScriptedUser:
    """A `UserChannel` that answers as told and keeps what it was shown."""

    answers: list[Answer] | None = None
    review: PlanReview = field(default_factory=lambda: PlanReview(approved=False))
    asked: list[list[Question]] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)

    async def ask(self, questions: Sequence[Question]) -> list[Answer] | None:
        self.asked.append(list(questions))
        return self.answers

    async def review_plan(self, plan: str) -> PlanReview:
        self.plans.append(plan)
        return self.review


def valid(tool_name: str, **arguments: Any) -> ValidCall:
    checked = builtin_registry().validate(tool_name, arguments)
    assert isinstance(checked, ValidCall), checked
    return checked


async def run(ctx: ToolContext, tool_name: str, **arguments: Any) -> Any:
    checked = valid(tool_name, **arguments)
    return await checked.tool.run(checked.params, ctx)


# --- parameters and schema ----------------------------------------------------------------


def test_both_tools_are_built_in_with_short_inline_schemas() -> None:
    registry = builtin_registry()
    ask, plan = registry.get("ask_user_question"), registry.get("exit_plan_mode")
    assert isinstance(ask, AskUserQuestionTool) and isinstance(plan, ExitPlanModeTool)
    assert ask.kind == plan.kind == "think"
    schema = ask.schema()
    raw = json.dumps(schema)
    assert "$ref" not in raw and "$defs" not in raw
    questions = schema["function"]["parameters"]["properties"]["questions"]
    assert (questions["minItems"], questions["maxItems"]) == (1, 4)
    item = questions["items"]
    assert set(item["properties"]) == {"question", "header", "options", "multiSelect"}
    assert item["required"] == ["question", "header", "options"]
    options = item["properties"]["options"]
    assert (options["minItems"], options["maxItems"]) == (2, 4)
    assert options["items"]["required"] == ["label", "description"]
    assert plan.schema()["function"]["parameters"]["required"] == ["plan"]
    # Every tool description is sent with every request: keep them small.
    for name in ("ask_user_question", "exit_plan_mode"):
        assert len(load(f"tools/{name}.md", {}).encode()) < 1024
    assert len(raw) < 2000 and len(json.dumps(plan.schema())) < 1000


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"questions": []}, "questions"),
        ({"questions": [LIBRARY] * 5}, "questions"),
        ({"questions": [{**LIBRARY, "options": LIBRARY["options"][:1]}]}, "options"),
        ({"questions": [{**LIBRARY, "options": LIBRARY["options"] * 3}]}, "options"),
        ({"questions": [{**LIBRARY, "header": ""}]}, "header"),
        ({"questions": [{**LIBRARY, "colour": "red"}]}, "unknown argument"),
    ],
)
def test_bad_questions_are_refused_with_the_reason(arguments: dict[str, Any], problem: str) -> None:
    message = builtin_registry().validate("ask_user_question", arguments)
    assert isinstance(message, str) and problem in message


def test_multi_select_comes_as_multiSelect() -> None:
    params = valid("ask_user_question", questions=[LIBRARY, FEATURES]).params
    assert [q.multi_select for q in params.questions] == [False, True]  # type: ignore[attr-defined]


# --- ask_user_question -------------------------------------------------------------------


async def test_nobody_to_ask_tells_the_model_to_assume(ctx: ToolContext) -> None:
    out = await run(ctx, "ask_user_question", questions=[LIBRARY])
    assert out.is_error
    assert "non-interactive" in out.content and "assumption" in out.content


async def test_answers_come_back_one_line_per_question(ctx: ToolContext) -> None:
    user = ScriptedUser(
        answers=[Answer(labels=("luxon",)), Answer(labels=("Logging", "Tracing"), other="audit")]
    )
    ctx.user = user
    out = await run(ctx, "ask_user_question", questions=[LIBRARY, FEATURES])
    assert not out.is_error
    assert out.content == (
        'The user answered:\n- Library: luxon\n- Extras: Logging, Tracing, "audit"'
    )
    assert [q.header for q in user.asked[0]] == ["Library", "Extras"]


async def test_free_text_only(ctx: ToolContext) -> None:
    ctx.user = ScriptedUser(answers=[Answer(other="moment, sadly")])
    out = await run(ctx, "ask_user_question", questions=[LIBRARY])
    assert out.content.endswith('- Library: "moment, sadly"')


async def test_dismissed_questions_say_the_user_declined(ctx: ToolContext) -> None:
    ctx.user = ScriptedUser(answers=None)
    out = await run(ctx, "ask_user_question", questions=[LIBRARY])
    assert not out.is_error
    assert "declined to answer" in out.content


# --- exit_plan_mode ----------------------------------------------------------------------


async def test_outside_plan_mode_it_is_only_a_note(ctx: ToolContext) -> None:
    ctx.user = user = ScriptedUser()
    ctx.approval_mode = "auto-edit"
    out = await run(ctx, "exit_plan_mode", plan="1. Do it")
    assert not out.is_error and out.switch_mode is None
    assert "not in plan mode" in out.content and "auto-edit" in out.content
    assert user.plans == []


async def test_headless_plan_mode_ends_the_turn_with_the_plan(ctx: ToolContext) -> None:
    ctx.approval_mode = "plan"
    out = await run(ctx, "exit_plan_mode", plan="1. Do it")
    assert not out.is_error and out.switch_mode is None
    assert "non-interactive" in out.content and "End your turn" in out.content


@pytest.mark.parametrize("mode", ["auto-edit", "default"])
async def test_an_approved_plan_switches_mode(ctx: ToolContext, mode: str) -> None:
    ctx.approval_mode = "plan"
    ctx.user = user = ScriptedUser(review=PlanReview(approved=True, mode=mode))  # type: ignore[arg-type]
    out = await run(ctx, "exit_plan_mode", plan="# Steps\n1. Do it")
    assert user.plans == ["# Steps\n1. Do it"]
    assert out.switch_mode == mode
    assert f"approval mode is now {mode}" in out.content and "Go ahead" in out.content


async def test_a_plan_sent_back_keeps_plan_mode_with_the_feedback(ctx: ToolContext) -> None:
    ctx.approval_mode = "plan"
    ctx.user = ScriptedUser(review=PlanReview(approved=False, feedback="use sqlite"))
    out = await run(ctx, "exit_plan_mode", plan="1. Use postgres")
    assert out.switch_mode is None
    assert "still in plan mode" in out.content and "use sqlite" in out.content
    ctx.user = ScriptedUser(review=PlanReview(approved=False))
    out = await run(ctx, "exit_plan_mode", plan="1. Use postgres")
    assert out.switch_mode is None and "wait for their instructions" in out.content


async def test_the_runner_switches_mode_after_an_approved_plan(ctx: ToolContext) -> None:
    ctx.user = ScriptedUser(review=PlanReview(approved=True, mode="auto-edit"))
    runner = ToolRunner(
        registry=builtin_registry(), ctx=ctx, approver=HeadlessApprover("plan"), mode="plan"
    )
    events = [e async for e in runner.run((tool_call("exit_plan_mode", plan="1. Do it"),))]
    results = [e for e in events if isinstance(e, ToolResult)]
    assert len(results) == 1 and not results[0].is_error
    assert runner.mode == ctx.approval_mode == "auto-edit"


# --- headless, end to end ----------------------------------------------------------------


def tool_messages(fake: FakeLLM) -> list[str]:
    return [m["content"] for m in bodies(fake)[-1]["messages"] if m["role"] == "tool"]


def test_headless_run_refuses_questions(project: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        tool_turn(call("ask_user_question", questions=[LIBRARY])),
        text("Assuming dayjs: it is the smaller one."),
    )
    result = run_qwen_code(project, "-p", "add dates")
    assert result.returncode == 0, result.stderr
    assert "Assuming dayjs" in result.stdout
    (answer,) = tool_messages(fake_llm)
    assert "non-interactive" in answer
    tools = [t["function"]["name"] for t in bodies(fake_llm)[0]["tools"]]
    assert "ask_user_question" in tools and "exit_plan_mode" in tools


def test_headless_plan_mode_stays_in_plan_mode(project: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        tool_turn(call("exit_plan_mode", plan="1. Create notes.txt")),
        tool_turn(call("write_file", file_path="notes.txt", content="hi\n")),
        text("Plan: 1. Create notes.txt"),
    )
    result = run_qwen_code(project, "--approval-mode", "plan", "-p", "plan notes")
    assert result.returncode == 0, result.stderr
    assert "Plan: 1. Create notes.txt" in result.stdout
    plan_answer, write_answer = tool_messages(fake_llm)
    assert "End your turn now" in plan_answer
    assert "Plan mode allows only read-only tools" in write_answer
    assert not (project / "notes.txt").exists()
