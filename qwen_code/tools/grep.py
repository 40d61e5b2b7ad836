"""`grep_search`: search file contents with ripgrep (or a pure-Python fallback)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from qwen_code.processes import kill_process
from qwen_code.textsafe import escape_name
from qwen_code.tools.base import (
    Tool,
    ToolContext,
    ToolError,
    ToolOutput,
    ToolParams,
    truncate_text,
)
from qwen_code.tools.fileio import (
    BinaryFileError,
    find_ripgrep,
    list_files,
    open_lines,
)
from qwen_code.tools.glob import glob_to_regex

MAX_LINE_CHARS = 500
"""Matched lines longer than this are cut (minified files would flood the context)."""
COUNT_FACTOR = 10
"""Past the cap, keep counting up to `limit * COUNT_FACTOR` matches to say how many more."""


@dataclass(slots=True)
class _Hits:
    """Matches collected so far, grouped by file in the order found."""

    limit: int
    by_file: dict[Path, list[tuple[int, str]]] = field(default_factory=dict)
    total: int = 0

    def add(self, path: Path, line_number: int, text: str) -> bool:
        """Record one match; False once counting can stop."""
        self.total += 1
        if self.total <= self.limit:
            self.by_file.setdefault(path, []).append((line_number, text))
        return self.total < self.limit * COUNT_FACTOR

    @property
    def capped(self) -> bool:
        return self.total > self.limit

    @property
    def count_exact(self) -> bool:
        return self.total < self.limit * COUNT_FACTOR


class GrepTool(Tool["GrepTool.Params"]):
    name = "grep_search"
    kind = "read"

    class Params(ToolParams):
        pattern: str
        """The regular expression to search for, e.g. 'def \\w+_handler' or 'import (os|sys)'."""
        path: str | None = None
        """The file or directory to search (absolute, or relative to the workspace root).
        Defaults to the workspace root."""
        glob: str | None = None
        """Only search files matching this glob, e.g. '*.py' or '*.{ts,tsx}'."""
        limit: int | None = Field(default=None, ge=1)
        """The most matching lines to return."""

    def __init__(self, *, use_ripgrep: bool = True) -> None:
        self.use_ripgrep = use_ripgrep

    def summary(self, params: GrepTool.Params) -> str:
        where = f" in {params.path}" if params.path else ""
        return f"{params.pattern!r}{where}"

    async def run(self, params: GrepTool.Params, ctx: ToolContext) -> ToolOutput:
        if not params.pattern:
            raise ToolError("The pattern is empty: pass a regular expression to search for.")
        target = ctx.workspace.resolve(params.path or ".", must_exist=True)
        limit = min(params.limit or ctx.limits.grep_max_matches, ctx.limits.grep_max_matches)
        hits = _Hits(limit=limit)
        rg = find_ripgrep() if self.use_ripgrep else None
        if rg:
            await _search_ripgrep(rg, params, target, hits)
        else:
            files = [target] if target.is_file() else await list_files(target, use_ripgrep=False)
            await asyncio.to_thread(_search_python, params, target, files, hits)
        where = escape_name(ctx.workspace.display(target))
        where = "the workspace root" if where == "." else where
        header = f'pattern "{params.pattern}" in {where}'
        if params.glob:
            header += f' (filter: "{params.glob}")'
        if not hits.total:
            return ToolOutput(content=f"No matches found for {header}.")
        text = _format(hits, header, ctx)
        text, _ = truncate_text(text, max_chars=ctx.limits.max_output_chars)
        return ToolOutput(
            content=text,
            display=f"{hits.total}{'' if hits.count_exact else '+'} match(es)",
            data={"matches": hits.total, "files": len(hits.by_file)},
        )


def _format(hits: _Hits, header: str, ctx: ToolContext) -> str:
    shown = min(hits.total, hits.limit)
    noun = "match" if shown == 1 else "matches"
    lines = [f"Found {shown} {noun} for {header}:", "---"]
    for path, matches in hits.by_file.items():
        lines.append(f"File: {escape_name(ctx.workspace.display(path))}")
        lines.extend(f"L{number}: {text}" for number, text in matches)
        lines.append("---")
    if hits.capped:
        total = f"{hits.total}" if hits.count_exact else f"at least {hits.total}"
        lines.append(
            f"[Showing the first {hits.limit} of {total} matches. Use a more specific "
            "pattern, path or glob to see the rest.]"
        )
    return "\n".join(lines)


def _clip(text: str) -> str:
    text = text.rstrip("\r\n")
    if len(text) > MAX_LINE_CHARS:
        return text[:MAX_LINE_CHARS] + f"... [{len(text) - MAX_LINE_CHARS} more characters]"
    return text


def _rg_text(node: dict[str, Any]) -> str:
    """ripgrep's JSON carries text as {"text": ...} or, when not UTF-8, {"bytes": base64}."""
    if "text" in node:
        return str(node["text"])
    return base64.b64decode(node.get("bytes", "")).decode("utf-8", "replace")


def _rg_path(node: dict[str, Any]) -> Path:
    """A path from ripgrep's JSON, as Python names it (bad bytes as surrogates, the way the
    fallback's `os.fsdecode` gets them), so both show it the same: `escape_name`."""
    if "text" in node:
        return Path(str(node["text"]))
    return Path(os.fsdecode(base64.b64decode(node.get("bytes", ""))))


async def _search_ripgrep(rg: str, params: GrepTool.Params, target: Path, hits: _Hits) -> None:
    argv = [rg, "--json", "--ignore-case", "--hidden", "--sort", "path", "--glob", "!.git"]
    if params.glob:
        argv += ["--glob", params.glob]
    argv += ["--regexp", params.pattern, "--", str(target)]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=64 * 1024 * 1024,
    )
    assert proc.stdout is not None and proc.stderr is not None
    stderr_task = asyncio.ensure_future(proc.stderr.read())
    finished = False
    try:
        finished = await _read_rg_matches(proc.stdout, hits)
    finally:
        if not finished:  # stopped early (or cancelled): rg may still be writing
            kill_process(proc)
        rc = await proc.wait()
        stderr = (await stderr_task).decode("utf-8", "replace").strip()
    if rc == 2 and not hits.total and stderr:
        raise ToolError(f"grep_search failed: {stderr}\nFix the pattern (ripgrep regex syntax).")


async def _read_rg_matches(stdout: asyncio.StreamReader, hits: _Hits) -> bool:
    """Collect matches; False when counting stopped before the end of the output."""
    async for raw in stdout:
        if not raw.startswith(b'{"type":"match"'):
            continue
        data = json.loads(raw)["data"]
        path = _rg_path(data["path"])
        if not hits.add(path, int(data["line_number"]), _clip(_rg_text(data["lines"]))):
            return False
    return True


def _search_python(params: GrepTool.Params, target: Path, files: list[Path], hits: _Hits) -> None:
    """The fallback when ripgrep is missing: Python `re`, same output shape."""
    try:
        regex = re.compile(params.pattern, re.IGNORECASE)
    except re.error as exc:
        raise ToolError(f"grep_search failed: invalid regular expression: {exc}") from exc
    if target.is_dir():
        files = [p for p in files if _glob_ok(params.glob, p.relative_to(target))]
    for path in sorted(files):
        if not _search_file(regex, path, hits):
            return


def _glob_ok(pattern: str | None, relative: Path) -> bool:
    """ripgrep's rule: a glob without '/' matches the file name at any depth."""
    if not pattern:
        return True
    subject = relative.as_posix() if "/" in pattern else relative.name
    return glob_to_regex(pattern, ignore_case=False).fullmatch(subject) is not None


def _search_file(regex: re.Pattern[str], path: Path, hits: _Hits) -> bool:
    try:
        with open_lines(path) as (lines, _):
            for number, line in enumerate(lines, start=1):
                if regex.search(line) and not hits.add(path, number, _clip(line)):
                    return False
    except (BinaryFileError, OSError, UnicodeError):
        pass
    return True
