"""`ask_user_question`: 1-4 multiple-choice questions to the user, as Qwen Code's.

The front end shows them (`ToolContext.user`, see `user_input.UserChannel`); each has 2-4
options, optionally several may be picked, and the user may always type their own answer.
With nobody to ask (a headless run) the result tells the model to assume and go on.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from qwen_code.tools.base import Tool, ToolContext, ToolOutput, ToolParams
from qwen_code.tools.user_input import Answer, Question

NO_USER = (
    "Error: nobody can answer questions in this run (it is non-interactive). Make a "
    "reasonable assumption, say which one you made, and go on."
)
DECLINED = (
    "The user declined to answer. Do not ask again: go on with your best judgement, "
    "or ask in plain text if you cannot."
)


class AskUserQuestionTool(Tool["AskUserQuestionTool.Params"]):
    name = "ask_user_question"
    kind = "think"

    class Params(ToolParams):
        questions: list[Question] = Field(min_length=1, max_length=4)

    def summary(self, params: AskUserQuestionTool.Params) -> str:
        return " · ".join(q.header for q in params.questions)

    def schema(self) -> dict[str, Any]:
        """Inline the nested models: some models and servers handle `$ref` poorly."""
        schema = super().schema()
        schema["function"]["parameters"] = inline_refs(schema["function"]["parameters"])
        return schema

    async def run(self, params: AskUserQuestionTool.Params, ctx: ToolContext) -> ToolOutput:
        if ctx.user is None:
            return ToolOutput(content=NO_USER, is_error=True, display="No user to ask.")
        answers = await ctx.user.ask(params.questions)
        if answers is None:
            return ToolOutput(content=DECLINED, display="Declined to answer.")
        lines = answer_lines(params.questions, answers)
        return ToolOutput(
            content="The user answered:\n" + "\n".join(f"- {line}" for line in lines),
            display=" · ".join(lines),
            data={"answers": [a.describe() for a in answers]},
        )


def answer_lines(questions: list[Question], answers: list[Answer]) -> list[str]:
    """`header: answer`, one per question (a question left without an answer says so)."""
    lines = []
    for index, question in enumerate(questions):
        answer = answers[index].describe() if index < len(answers) else "(no answer)"
        lines.append(f"{question.header}: {answer}")
    return lines


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every `$ref` to its `$defs` replaced by the definition itself, less
    the definition's own description (the field that uses it has one)."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                rest = {k: v for k, v in node.items() if k != "$ref"}
                found = resolve(defs[ref.rsplit("/", 1)[-1]])
                found.pop("description", None)
                return {**found, **rest}
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)
