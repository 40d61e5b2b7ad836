"""What an edit or write_file call will change, as ACP's diff content (old and new text).

Worked out before the call runs, the way the tool itself will (same read path, same
`apply_edit`), so the editor can show the diff while asking for approval and after the
call. Nothing is written here; a call whose change cannot be worked out gets no diff and
fails on its own when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from acp import tool_diff_content

from qwen_code.tools.base import ToolError
from qwen_code.tools.edit import apply_edit
from qwen_code.tools.fileio import load_text, normalize_newlines

if TYPE_CHECKING:
    from acp.schema import FileEditToolCallContent

    from qwen_code.agent.events import ToolCall
    from qwen_code.tools.base import ToolContext

DIFF_TOOLS = frozenset({"edit", "write_file"})


async def planned_diff(ctx: ToolContext, call: ToolCall) -> FileEditToolCallContent | None:
    """The diff `call` would make (None for other tools, or when it cannot be known)."""
    raw = call.arguments.get("file_path")
    if call.name not in DIFF_TOOLS or not isinstance(raw, str):
        return None
    try:
        path = ctx.workspace.resolve(raw)
        old = await _current_text(ctx, path)
        new = _new_text(call.name, call.arguments, old, ctx.workspace.display(path))
    except (ToolError, OSError, ValueError):
        return None
    if new is None:
        return None
    return tool_diff_content(str(path), new, old)


async def _current_text(ctx: ToolContext, path: Path) -> str | None:
    """The file's text now (the editor's, when the session reads through it); None when
    there is no file yet."""
    try:
        return (await load_text(ctx, path)).text
    except (FileNotFoundError, NotADirectoryError):
        return None


def _new_text(name: str, args: dict[str, Any], old: str | None, where: str) -> str | None:
    if name == "write_file":
        content = args.get("content")
        return normalize_newlines(content) if isinstance(content, str) else None
    before, after = args.get("old_string"), args.get("new_string")
    if not isinstance(before, str) or not isinstance(after, str):
        return None
    before, after = normalize_newlines(before), normalize_newlines(after)
    if not before:  # creating a file, or filling an empty one
        return after if old is None or not old.strip() else None
    if old is None:
        return None
    new, _, _ = apply_edit(old, before, after, bool(args.get("replace_all")), where)
    return new
