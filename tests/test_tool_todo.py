"""todo_write: validation, session state, the TodosUpdated event and the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from qwen_code.agent.events import TodosUpdated
from qwen_code.tools.base import ToolContext, ToolError
from qwen_code.tools.registry import ToolRegistry
from qwen_code.tools.todo import TodoWriteTool, render_todos
from qwen_code.tools.workspace import Workspace

tool = TodoWriteTool()

TODOS: list[dict[str, Any]] = [
    {"id": "1", "content": "Read the parser", "status": "completed"},
    {"id": "2", "content": "Fix the off-by-one", "status": "in_progress"},
    {"id": "3", "content": "Add a regression test", "status": "pending"},
]


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(workspace=Workspace(root=tmp_path), scratch_dir=tmp_path / "scratch")


def _params(todos: list[dict[str, Any]]) -> TodoWriteTool.Params:
    return TodoWriteTool.Params.model_validate({"todos": todos})


async def test_stores_list_and_emits_event(ctx: ToolContext) -> None:
    out = await tool.run(_params(TODOS), ctx)
    assert not out.is_error
    assert ctx.state["todos"] == TODOS
    assert out.events == (TodosUpdated(todos=tuple(TODOS)),)
    assert "3 items (1 completed, 1 in progress, 1 pending)" in out.content
    assert "exactly one item in_progress" in out.content
    assert out.display == ("[x] Read the parser\n[>] Fix the off-by-one\n[ ] Add a regression test")


async def test_each_call_replaces_the_list(ctx: ToolContext) -> None:
    await tool.run(_params(TODOS), ctx)
    done = [{**t, "status": "completed"} for t in TODOS]
    out = await tool.run(_params(done), ctx)
    assert ctx.state["todos"] == done
    assert "All items are completed" in out.content
    out = await tool.run(_params([]), ctx)
    assert ctx.state["todos"] == []
    assert out.content == "Todo list cleared."
    assert out.events == (TodosUpdated(todos=()),)


async def test_nudges_toward_one_item_in_progress(ctx: ToolContext) -> None:
    pending = [{**t, "status": "pending"} for t in TODOS]
    out = await tool.run(_params(pending), ctx)
    assert "Mark the next item in_progress" in out.content
    busy = [{**t, "status": "in_progress"} for t in TODOS]
    out = await tool.run(_params(busy), ctx)
    assert "Keep exactly one item in_progress" in out.content


async def test_duplicate_ids_are_refused(ctx: ToolContext) -> None:
    todos = [*TODOS, {"id": "2", "content": "Again", "status": "pending"}]
    with pytest.raises(ToolError, match="'2'"):
        await tool.run(_params(todos), ctx)
    assert "todos" not in ctx.state


@pytest.mark.parametrize(
    "item",
    [
        {"id": "1", "content": "x", "status": "done"},
        {"id": "1", "content": "x"},
        {"id": "", "content": "x", "status": "pending"},
        {"id": "1", "content": "", "status": "pending"},
        {"id": "1", "content": "x", "status": "pending", "priority": "high"},
    ],
)
def test_bad_items_are_refused(item: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _params([item])


def test_registry_reports_bad_status_by_field() -> None:
    registry = ToolRegistry()
    registry.register(tool)
    bad = {"todos": [{"id": "1", "content": "x", "status": "done"}]}
    message = registry.validate("todo_write", bad)
    assert isinstance(message, str)
    assert "todos.0.status" in message


def test_schema_inlines_the_item_model() -> None:
    fn = tool.schema()["function"]
    assert fn["name"] == "todo_write"
    assert "$defs" not in fn["parameters"]
    items = fn["parameters"]["properties"]["todos"]["items"]
    assert items["properties"]["status"]["enum"] == ["pending", "in_progress", "completed"]
    assert items["required"] == ["id", "content", "status"]
    assert items["properties"]["content"]["description"]
    assert "$ref" not in str(fn)


def test_summary_and_render() -> None:
    assert tool.summary(_params(TODOS)) == "1/3 done, now: Fix the off-by-one"
    assert tool.summary(_params([])) == "0/0 done"
    assert render_todos([]) == "(todo list cleared)"
