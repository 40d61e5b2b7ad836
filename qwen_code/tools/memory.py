"""`save_memory`: the model keeps a fact about the user or project for later sessions.

The fact goes under "## Qwen Added Memories" in the user's QWEN.md (in $QWEN_HOME), which
every later session reads. It needs approval like an edit.
"""

from __future__ import annotations

from pathlib import Path

from qwen_code import memory
from qwen_code.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParams
from qwen_code.tools.fileio import unified_diff


class SaveMemoryTool(Tool["SaveMemoryTool.Params"]):
    name = "save_memory"
    kind = "edit"

    class Params(ToolParams):
        fact: str
        """The fact, as one self-contained sentence."""

    def summary(self, params: SaveMemoryTool.Params) -> str:
        return params.fact[:80]

    async def preview(self, params: SaveMemoryTool.Params, ctx: ToolContext) -> str | None:
        """The change exactly as `run` will make it; None when it cannot be made."""
        if ctx.home is None or not params.fact.strip():
            return None
        path = _memory_path(ctx)
        old = path.read_text(encoding="utf-8") if path.is_file() else ""
        return unified_diff(old, memory.with_memory(old, params.fact), str(path))

    async def run(self, params: SaveMemoryTool.Params, ctx: ToolContext) -> ToolOutput:
        fact = " ".join(params.fact.split())
        if not fact:
            raise ToolError("The fact is empty: pass the sentence to remember.")
        path = _memory_path(ctx)
        before = path.read_text(encoding="utf-8") if path.is_file() else ""
        memory.add_memory(fact, path.parent, path.name)
        after = path.read_text(encoding="utf-8")
        return ToolOutput(
            content=f"Saved to memory ({path}): {fact}",
            display=unified_diff(before, after, str(path)),
            data={"path": str(path)},
        )


def _memory_path(ctx: ToolContext) -> Path:
    if ctx.home is None:
        raise ToolError("Memory is not available in this session (no qwen-code home).")
    return ctx.home / ctx.memory_file_name
