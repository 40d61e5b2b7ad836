"""`structured_output`: the final answer of a `--json-schema` run, checked against the schema.

The tool exists only in a headless run given `--json-schema`; its parameters are the
user's schema itself. A call that matches returns the payload in `data` (the headless run
ends on it); one that does not is an error result naming each problem, so the model can
correct its arguments and call again. Validation uses `jsonschema` (the draft the schema
names in `$schema`, else 2020-12).
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from qwen_code.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParams

NAME = "structured_output"
PAYLOAD_KEY = "structured_output"
DESCRIPTION = (
    "Give your final answer as structured data. Call this exactly once, when you are done, "
    "with arguments that match its parameter schema: the run ends with the first call that "
    "matches. If the call is rejected, fix the arguments as the error says and call it again."
)
PROMPT_NOTE = (
    "When you have the answer, call the structured_output tool with it as the arguments "
    "(they must match the tool's schema). The run ends with that call; an answer in plain "
    "text does not count."
)
ACCEPTED = "Accepted: the structured output matches the schema. The run ends now."
MAX_PROBLEMS = 10


class StructuredOutputParams(ToolParams):
    """Whatever the schema describes; checked against it in `run`."""

    model_config = ConfigDict(extra="allow")


class SchemaProblem(ValueError):
    """The schema given to `--json-schema` cannot be used."""


class StructuredOutputTool(Tool[StructuredOutputParams]):
    name = NAME
    kind = "think"
    Params = StructuredOutputParams

    def __init__(self, schema: dict[str, Any]) -> None:
        self._schema = schema
        self._validator = make_validator(schema)
        self._description = DESCRIPTION

    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": NAME, "description": DESCRIPTION, "parameters": self._schema},
        }

    async def run(self, params: StructuredOutputParams, ctx: ToolContext) -> ToolOutput:
        payload = params.model_dump()
        problems = self.problems(payload)
        if problems:
            raise ToolError(
                "the arguments do not match the schema:\n"
                + "\n".join(f"- {p}" for p in problems)
                + "\nCall structured_output again with arguments that match the schema."
            )
        return ToolOutput(
            content=ACCEPTED, display="Structured output accepted.", data={PAYLOAD_KEY: payload}
        )

    def problems(self, payload: Any) -> list[str]:
        """One line per way `payload` breaks the schema (at most `MAX_PROBLEMS`)."""
        errors = sorted(self._validator.iter_errors(payload), key=lambda e: list(e.path))
        lines = [f"{_where(e.absolute_path)}: {e.message}" for e in errors[:MAX_PROBLEMS]]
        if len(errors) > MAX_PROBLEMS:
            lines.append(f"... and {len(errors) - MAX_PROBLEMS} more")
        return lines


def make_validator(schema: Any) -> Any:
    """A validator for `schema`; raises `SchemaProblem` for a schema that is not valid or
    whose root cannot be an object (tool arguments always are)."""
    from jsonschema import SchemaError  # imported only for --json-schema runs
    from jsonschema.validators import validator_for

    if not isinstance(schema, dict):
        raise SchemaProblem("the schema must be a JSON object.")
    cls = validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise SchemaProblem(f"the schema is not valid: {exc.message}") from exc
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if kind is not None and "object" not in kinds:
        raise SchemaProblem(
            f'the schema\'s root "type" is {kind!r}: tool arguments are JSON objects, so it '
            'must accept "object".'
        )
    return cls(schema)


def _where(path: Any) -> str:
    parts = [str(p) for p in path]
    return "/".join(parts) if parts else "(root)"
