"""`list_directory`: the entries of one directory, directories first."""

from __future__ import annotations

import fnmatch
from pathlib import Path

from qwen_code.textsafe import escape_name
from qwen_code.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParams


class ListDirectoryTool(Tool["ListDirectoryTool.Params"]):
    name = "list_directory"
    kind = "read"

    class Params(ToolParams):
        path: str = "."
        """The directory to list (absolute, or relative to the workspace root)."""
        ignore: list[str] | None = None
        """Glob patterns for entry names to leave out, e.g. ['*.log', 'dist']."""

    def summary(self, params: ListDirectoryTool.Params) -> str:
        return params.path

    async def run(self, params: ListDirectoryTool.Params, ctx: ToolContext) -> ToolOutput:
        directory = ctx.workspace.resolve(params.path, must_exist=True)
        where = ctx.workspace.display(directory)
        if not directory.is_dir():
            raise ToolError(
                f"{where!r} is not a directory. Use read_file to read a file, or pass "
                "its parent directory."
            )
        try:
            dirs, files = _entries(directory, params.ignore or [])
        except PermissionError as exc:
            raise ToolError(f"Cannot list {where!r}: permission denied.") from exc
        if not dirs and not files:
            return ToolOutput(content=f"Directory {escape_name(str(directory))} is empty.")
        names = [f"[DIR] {name}" for name in dirs] + files
        cap = ctx.limits.list_max_entries
        lines = [f"Directory listing for {escape_name(str(directory))}:", *names[:cap]]
        if len(names) > cap:
            lines.append(
                f"[Showing the first {cap} of {len(names)} entries. Use `ignore` or list a "
                "subdirectory, or use glob to find specific files.]"
            )
        return ToolOutput(
            content="\n".join(lines),
            display=f"{len(dirs)} dir(s), {len(files)} file(s)",
            data={"directories": dirs, "files": files},
        )


def _entries(directory: Path, ignore: list[str]) -> tuple[list[str], list[str]]:
    """Names of the subdirectories and of the other entries, each sorted by name. Bytes of
    a name that are not UTF-8 are shown as `\\xe9` escapes (see `textsafe.escape_name`)."""
    dirs: list[str] = []
    files: list[str] = []
    patterns = [pat.rstrip("/") for pat in ignore if pat.strip("/")]
    for entry in directory.iterdir():
        name = entry.name
        if name == ".git" or any(fnmatch.fnmatchcase(name, pat) for pat in patterns):
            continue
        (dirs if entry.is_dir() else files).append(escape_name(name))
    return sorted(dirs), sorted(files)
