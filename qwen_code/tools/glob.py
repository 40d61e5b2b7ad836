"""`glob`: find files by name pattern, newest first, skipping what git ignores."""

from __future__ import annotations

import os
import re
from pathlib import Path

from qwen_code.textsafe import escape_name
from qwen_code.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParams
from qwen_code.tools.fileio import list_files


class GlobTool(Tool["GlobTool.Params"]):
    name = "glob"
    kind = "read"

    class Params(ToolParams):
        pattern: str
        """The glob pattern, e.g. '**/*.md' or 'src/**/test_*.py'."""
        path: str | None = None
        """The directory to search in (absolute, or relative to the workspace root).
        Defaults to the workspace root."""

    def __init__(self, *, use_ripgrep: bool = True) -> None:
        self.use_ripgrep = use_ripgrep

    def summary(self, params: GlobTool.Params) -> str:
        return params.pattern if params.path is None else f"{params.pattern} in {params.path}"

    async def run(self, params: GlobTool.Params, ctx: ToolContext) -> ToolOutput:
        root = ctx.workspace.resolve(params.path or ".", must_exist=True)
        if not root.is_dir():
            raise ToolError(
                f"{ctx.workspace.display(root)!r} is not a directory. Pass a directory as "
                "`path`, or use read_file to read a file."
            )
        pattern = _relative_pattern(params.pattern, root)
        matcher = glob_to_regex(pattern)
        files = await list_files(root, use_ripgrep=self.use_ripgrep)
        matched = [p for p in files if matcher.fullmatch(p.relative_to(root).as_posix())]
        where = escape_name(str(root))
        if not matched:
            return ToolOutput(content=_no_match_message(params.pattern, where))
        ordered = sorted(matched, key=_newest_first)
        cap = ctx.limits.glob_max_results
        shown = [escape_name(str(p)) for p in ordered[:cap]]  # undecodable bytes as \xe9
        lines = [
            f'Found {len(matched)} file(s) matching "{params.pattern}" in {where}, '
            "sorted by modification time (newest first):",
            *shown,
        ]
        if len(ordered) > cap:
            lines.append(
                f"[Showing the first {cap}; {len(ordered) - cap} more not shown. "
                "Use a narrower pattern or path to see them.]"
            )
        return ToolOutput(
            content="\n".join(lines),
            display=f"{len(matched)} file(s)",
            data={"files": shown, "total": len(matched)},
        )


def _newest_first(path: Path) -> tuple[float, str]:
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = 0.0
    return (-mtime, str(path))


def _relative_pattern(pattern: str, root: Path) -> str:
    """Accept an absolute pattern that starts with the search directory."""
    pattern = pattern.strip()
    if os.name == "nt":
        pattern = pattern.replace("\\", "/")
    if not pattern:
        raise ToolError("The pattern is empty: pass a glob such as '**/*.py'.")
    if pattern.startswith("/"):
        prefix = root.as_posix().rstrip("/") + "/"
        if not pattern.startswith(prefix):
            raise ToolError(
                f"The pattern {pattern!r} is absolute but not under the search directory "
                f"{str(root)!r}. Use a pattern relative to `path`."
            )
        pattern = pattern[len(prefix) :]
    return pattern.removeprefix("./")


def _no_match_message(pattern: str, where: str) -> str:
    message = f'No files found matching "{pattern}" in {where}.'
    if "/" not in pattern and not pattern.startswith("**"):
        message += f" The pattern only matches at the top level; try '**/{pattern}'."
    return message


def glob_to_regex(pattern: str, *, ignore_case: bool = True) -> re.Pattern[str]:
    """Compile a glob to a regex over '/'-separated relative paths.

    `*` and `?` stay within one path segment, `**` spans any number of segments
    (`a/**/b` also matches `a/b`), `[abc]`/`[!abc]` are classes, `{x,y}` alternatives.
    """
    flags = re.IGNORECASE if ignore_case else 0
    return re.compile(_translate(pattern), flags)


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern.startswith("**", i):
            piece, i = _double_star(pattern, i)
            out.append(piece)
            continue
        char = pattern[i]
        i += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            piece, i = _char_class(pattern, i)
            out.append(piece)
        elif char == "{":
            piece, i = _braces(pattern, i)
            out.append(piece)
        else:
            out.append(re.escape(char))
    return "".join(out)


def _double_star(pattern: str, i: int) -> tuple[str, int]:
    """`**/` → any directories (or none); a trailing or inner `**` → anything."""
    at_segment_start = i == 0 or pattern[i - 1] == "/"
    end = i + 2
    if at_segment_start and pattern.startswith("/", end):
        return "(?:.*/)?", end + 1
    return ".*", end


def _char_class(pattern: str, i: int) -> tuple[str, int]:
    close = pattern.find("]", i + 1 if pattern.startswith(("!", "^"), i) else i)
    if close == -1:
        return re.escape("["), i
    body = pattern[i:close]
    if body.startswith(("!", "^")):
        body = "^" + body[1:]
    body = body.replace("\\", "\\\\")
    return f"[{body}]", close + 1


def _braces(pattern: str, i: int) -> tuple[str, int]:
    """`{a,b}` with nesting; an unclosed `{` is a literal."""
    depth, j, parts, start = 1, i, [], i
    while j < len(pattern):
        char = pattern[j]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                parts.append(pattern[start:j])
                alternatives = "|".join(_translate(p) for p in parts)
                return f"(?:{alternatives})", j + 1
        elif char == "," and depth == 1:
            parts.append(pattern[start:j])
            start = j + 1
        j += 1
    return re.escape("{"), i
