"""`write_file`: create or overwrite a whole file, atomically, keeping an existing file's
line endings, BOM, encoding and permission mode.

The old content is read and the new one written through the workspace's descriptor walk
(`Workspace.read_bytes` / `write_bytes`), so a directory swapped for a symlink after the
path check cannot send either outside the workspace.
"""

from __future__ import annotations

from pathlib import Path

from qwen_code.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParams
from qwen_code.tools.fileio import (
    BinaryFileError,
    TextFormat,
    detect_newline,
    line_count,
    load_text,
    normalize_newlines,
    save_text,
    unified_diff,
)


class WriteFileTool(Tool["WriteFileTool.Params"]):
    name = "write_file"
    kind = "edit"

    class Params(ToolParams):
        file_path: str
        """The file to write (absolute, or relative to the workspace root)."""
        content: str
        """The complete new content of the file."""

    def summary(self, params: WriteFileTool.Params) -> str:
        return params.file_path

    async def run(self, params: WriteFileTool.Params, ctx: ToolContext) -> ToolOutput:
        path, where, old_text, new_text, fmt = await self._plan(params, ctx)
        try:
            created = await save_text(ctx, path, new_text, fmt)
        except OSError as exc:
            raise ToolError(f"Could not write {where!r}: {exc.strerror or exc}.") from exc
        lines = line_count(new_text)
        verb = "created and wrote to new file" if created else "overwrote file"
        diff = unified_diff(old_text, new_text, where)
        return ToolOutput(
            content=f"Successfully {verb}: {path} ({lines} line{'s' if lines != 1 else ''}).",
            display=diff or f"{where}: no changes",
            data={"path": str(path), "diff": diff, "created": created},
        )

    async def preview(self, params: WriteFileTool.Params, ctx: ToolContext) -> str | None:
        try:
            _, where, old_text, new_text, _ = await self._plan(params, ctx)
        except ToolError:
            return None
        return unified_diff(old_text, new_text, where)

    async def _plan(
        self, params: WriteFileTool.Params, ctx: ToolContext
    ) -> tuple[Path, str, str, str, TextFormat]:
        """Path, display name, old text, new text, format to write — no writing."""
        path = ctx.workspace.resolve(params.file_path)
        where = ctx.workspace.display(path)
        old_text, fmt = await _existing(ctx, path, where) or ("", None)
        new_text = normalize_newlines(params.content)
        if fmt is None or (fmt.newline == "\n" and "\n" not in old_text):
            # Nothing to keep: a new or one-line file takes the content's own line ending.
            fmt = TextFormat(
                encoding=fmt.encoding if fmt else "utf-8",
                bom=fmt.bom if fmt else False,
                newline=detect_newline(params.content),
            )
        return path, where, old_text, new_text, fmt


async def _existing(
    ctx: ToolContext, path: Path, where: str
) -> tuple[str, TextFormat | None] | None:
    """The old text and format (the editor's, with `ToolContext.file_io`); None when there
    is no file yet. A binary file being replaced has neither worth keeping."""
    try:
        existing = await load_text(ctx, path)
    except (FileNotFoundError, NotADirectoryError):
        return None  # a missing parent, or a file in its place: writing will tell
    except IsADirectoryError as exc:
        raise ToolError(f"{where!r} is a directory. Give the path of a file to write.") from exc
    except BinaryFileError:
        return "", None
    except OSError as exc:
        raise ToolError(f"Could not read the existing file {str(path)!r}: {exc}.") from exc
    return existing.text, existing.format
