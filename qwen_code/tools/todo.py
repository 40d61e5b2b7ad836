"""`todo_write`: the model's task list for the session.

Each call replaces the whole list (as in Qwen Code and Claude Code). The list lives in
`ctx.state["todos"]`, and a `TodosUpdated` event carries it to the front ends.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

from qwen_code.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParams
from qwen_code.tools.events import TodosUpdated

TODOS_KEY = "todos"
TodoStatus: TypeAlias = Literal["pending", "in_progress", "completed"]
_MARKS = {"pending": "[ ]", "in_progress": "[>]", "completed": "[x]"}


class TodoItem(BaseModel):
    """One task of the list."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    id: str = Field(min_length=1)
    """A short id, unique in the list and stable across updates (e.g. "1", "2")."""
    content: str = Field(min_length=1)
    """What to do, as a short imperative sentence (e.g. "Add tests for the parser")."""
    status: TodoStatus
    """pending (not started), in_progress (being worked on now) or completed (done)."""


class TodoWriteTool(Tool["TodoWriteTool.Params"]):
    name = "todo_write"
    kind = "think"

    class Params(ToolParams):
        todos: list[TodoItem]
        """The complete, updated task list (it replaces the previous one)."""

    def summary(self, params: TodoWriteTool.Params) -> str:
        current = next((t for t in params.todos if t.status == "in_progress"), None)
        done = sum(t.status == "completed" for t in params.todos)
        text = f"{done}/{len(params.todos)} done"
        return f"{text}, now: {current.content}" if current else text

    def schema(self) -> dict[str, Any]:
        """Inline the item model: some models and servers handle `$ref` poorly."""
        schema = super().schema()
        params = schema["function"]["parameters"]
        defs = params.pop("$defs", {})
        items = params["properties"]["todos"]["items"]
        ref = items.pop("$ref", None)
        if ref is not None:
            items.update(defs[ref.rsplit("/", 1)[-1]])
        return schema

    async def run(self, params: TodoWriteTool.Params, ctx: ToolContext) -> ToolOutput:
        _check_ids(params.todos)
        todos = [item.model_dump() for item in params.todos]
        ctx.state[TODOS_KEY] = todos
        counts = Counter(item.status for item in params.todos)
        return ToolOutput(
            content=_confirmation(len(todos), counts),
            display=render_todos(todos),
            data={"counts": dict(counts)},
            events=(TodosUpdated(todos=tuple(dict(t) for t in todos)),),
        )


def render_todos(todos: list[dict[str, Any]]) -> str:
    """A checklist for humans: `[x] done`, `[>] in progress`, `[ ] pending`."""
    if not todos:
        return "(todo list cleared)"
    return "\n".join(f"{_MARKS.get(t['status'], '[?]')} {t['content']}" for t in todos)


def _check_ids(todos: list[TodoItem]) -> None:
    seen = Counter(item.id for item in todos)
    dupes = sorted(i for i, n in seen.items() if n > 1)
    if dupes:
        raise ToolError(
            f"Duplicate todo ids: {', '.join(repr(i) for i in dupes)}. "
            "Give every item its own id and send the whole list again."
        )


def _confirmation(total: int, counts: Counter[str]) -> str:
    """A short confirmation that nudges the model toward one item in progress."""
    if total == 0:
        return "Todo list cleared."
    pending, active, done = counts["pending"], counts["in_progress"], counts["completed"]
    text = (
        f"Todo list updated: {total} items ({done} completed, {active} in progress, "
        f"{pending} pending)."
    )
    if done == total:
        return f"{text} All items are completed."
    if active > 1:
        return f"{text} Keep exactly one item in_progress: finish or reset the others."
    if active == 0:
        return f"{text} Mark the next item in_progress before you start on it."
    return f"{text} Keep exactly one item in_progress and mark items completed as you go."
