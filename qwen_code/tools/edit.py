"""`edit`: replace an exact string in a file.

Matching runs on the file's text with line endings normalised to `\\n` (the model's strings
too); the result is written back atomically in the file's own line endings, BOM and
encoding, so untouched lines stay byte-for-byte the same. When the match fails, the error
shows the closest region with line numbers so the model can retry in one step.

The file is read and written through the workspace's descriptor walk
(`Workspace.read_bytes` / `write_bytes`): a directory swapped for a symlink after the path
check makes the edit fail instead of reading or changing a file outside the workspace.
"""

from __future__ import annotations

import asyncio
import difflib
import heapq
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from qwen_code.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParams
from qwen_code.tools.fileio import (
    BinaryFileError,
    TextFile,
    TextFormat,
    detect_newline,
    load_text,
    normalize_newlines,
    save_text,
    unified_diff,
)

MIN_SIMILARITY = 0.5
"""Below this the closest region is not worth showing."""
MAX_CANDIDATE_LINES = 30
MAX_LISTED_MATCHES = 20
CANDIDATES = 40
"""How many windows, ranked by shared tokens, get the exact (slow) similarity."""
MAX_SEARCH_LINES = 200_000
_TOKEN = re.compile(r"\w+|[^\w\s]")
_TYPOGRAPHIC = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
    | {"\u00a0": " "}
)


class EditTool(Tool["EditTool.Params"]):
    name = "edit"
    kind = "edit"

    class Params(ToolParams):
        file_path: str
        """The file to modify (absolute, or relative to the workspace root)."""
        old_string: str
        """The exact text to replace. Empty only to create a new file."""
        new_string: str
        """The text to put in its place (must differ from old_string)."""
        replace_all: bool = False
        """Replace every occurrence of old_string instead of requiring exactly one."""

    def summary(self, params: EditTool.Params) -> str:
        return params.file_path

    async def run(self, params: EditTool.Params, ctx: ToolContext) -> ToolOutput:
        plan = await self._plan(params, ctx)
        return await _save(ctx, plan)

    async def preview(self, params: EditTool.Params, ctx: ToolContext) -> str | None:
        try:
            plan = await self._plan(params, ctx)
        except ToolError:
            return None
        return unified_diff(plan.old_text, plan.new_text, plan.where)

    async def _plan(self, params: EditTool.Params, ctx: ToolContext) -> _Plan:
        """Work out the edit without writing anything."""
        path = ctx.workspace.resolve(params.file_path)
        where = ctx.workspace.display(path)
        old = normalize_newlines(params.old_string)
        new = normalize_newlines(params.new_string)
        if old == new:
            raise ToolError(
                "No change to apply: old_string and new_string are identical. Give the new "
                "text as new_string."
            )
        current = await _read(ctx, path, where)
        if current is None:
            if old:
                raise ToolError(
                    f"File not found: {where!r}. Check the path (glob or list_directory can "
                    "find it); to create a new file, pass an empty old_string or use write_file."
                )
            fmt = TextFormat(newline=detect_newline(params.new_string))
            return _Plan(path, where, "", new, fmt, 0)
        if not old:
            if current.text.strip():
                raise ToolError(
                    f"{where!r} already exists and is not empty, so old_string cannot be "
                    "empty. Give the exact text to replace as old_string, or use write_file "
                    "to replace the whole file."
                )
            return _Plan(path, where, current.text, new, current.format, 1)
        # In a thread: the closest-match search on a failed edit can take a moment.
        new_text, count, note = await asyncio.to_thread(
            apply_edit, current.text, old, new, params.replace_all, where
        )
        if new_text == current.text:
            raise ToolError(f"The edit would not change {where!r}: the new text is the same.")
        return _Plan(path, where, current.text, new_text, current.format, count, note)


@dataclass(frozen=True, slots=True)
class _Plan:
    path: Path
    where: str
    old_text: str
    new_text: str
    fmt: TextFormat
    replacements: int
    note: str = ""


async def _read(ctx: ToolContext, path: Path, where: str) -> TextFile | None:
    """The file's text (the editor's, with `ToolContext.file_io`); None when there is no
    file (or no directory) there."""
    try:
        return await load_text(ctx, path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except IsADirectoryError as exc:
        raise ToolError(f"{where!r} is a directory. Give the path of a file to edit.") from exc
    except BinaryFileError as exc:
        raise ToolError(f"Cannot edit {where!r}: it is a binary file ({exc}).") from exc
    except OSError as exc:
        raise ToolError(f"Cannot read {where!r}: {exc.strerror or exc}.") from exc


async def _save(ctx: ToolContext, plan: _Plan) -> ToolOutput:
    path, where = plan.path, plan.where
    try:
        created = await save_text(ctx, path, plan.new_text, plan.fmt)
    except OSError as exc:
        raise ToolError(f"Could not write {where!r}: {exc.strerror or exc}.") from exc
    diff = unified_diff(plan.old_text, plan.new_text, where)
    if created:
        content = f"Created new file: {path} with the provided content."
    else:
        plural = "" if plan.replacements == 1 else "s"
        content = f"Successfully modified file: {path} ({plan.replacements} replacement{plural})."
    data_out = {
        "path": str(path),
        "diff": diff,
        "replacements": plan.replacements,
        "created": created,
    }
    return ToolOutput(content=content + plan.note, display=diff, data=data_out)


def apply_edit(
    text: str, old: str, new: str, replace_all: bool, where: str
) -> tuple[str, int, str]:
    """(new text, replacements, note for the model); `ToolError` when old does not fit."""
    count = text.count(old)
    if count == 1 or (count > 1 and replace_all):
        return text.replace(old, new), count, ""
    if count > 1:
        raise ToolError(_many_matches(text, old, count, where))
    span = _tolerant_span(text, old)
    if span is None:
        raise ToolError(_no_match(text, old, where))
    start, end = span
    first = text.count("\n", 0, start) + 1
    last = first + text.count("\n", start, end) - (1 if text[start:end].endswith("\n") else 0)
    note = (
        f" Note: old_string matched {_lines_label(first, last)} only when trailing whitespace and "
        "typographic quotes/dashes were ignored; those lines were replaced."
    )
    return text[:start] + new + text[end:], 1, note


def _lines_label(first: int, last: int) -> str:
    return f"line {first}" if first == last else f"lines {first}-{last}"


def _line_key(line: str) -> str:
    return line.translate(_TYPOGRAPHIC).rstrip()


def _tolerant_span(text: str, old: str) -> tuple[int, int] | None:
    """The character span of the one run of whole lines equal to `old`'s lines when
    trailing whitespace and typographic punctuation are ignored; None unless unique."""
    old_lines = old.split("\n")
    if old.endswith("\n"):
        old_lines.pop()
    wanted = [_line_key(line) for line in old_lines]
    if not any(wanted):
        return None
    lines = text.split("\n")
    keys = [_line_key(line) for line in lines]
    k = len(wanted)
    hits = [
        i for i in range(len(lines) - k + 1) if keys[i] == wanted[0] and keys[i : i + k] == wanted
    ]
    if len(hits) != 1:
        return None
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    start, last = offsets[hits[0]], hits[0] + k - 1
    end = offsets[last] + len(lines[last])
    if old.endswith("\n") and end < len(text):
        end += 1
    return start, end


def _many_matches(text: str, old: str, count: int, where: str) -> str:
    starts: list[int] = []
    pos = text.find(old)
    while pos != -1 and len(starts) < MAX_LISTED_MATCHES:
        starts.append(text.count("\n", 0, pos) + 1)
        pos = text.find(old, pos + len(old))
    listed = ", ".join(str(n) for n in starts) + (", ..." if count > len(starts) else "")
    return (
        f"Found {count} occurrences of old_string in {where!r} (starting at lines {listed}), "
        "but replace_all is false. Add surrounding lines to old_string so it matches exactly "
        "one place, or set replace_all to true to change every occurrence."
    )


def _no_match(text: str, old: str, where: str) -> str:
    message = (
        f"Could not find old_string in {where!r}. It must match the file exactly, including "
        "whitespace, indentation and line breaks."
    )
    best = closest_region(text, old)
    if best is None:
        return (
            f"{message} No similar text was found either; read the file with read_file "
            "and copy the text to replace from it."
        )
    first, last, ratio = best
    lines = text.split("\n")[first - 1 : last]
    shown = lines[:MAX_CANDIDATE_LINES]
    width = len(str(first + len(shown) - 1))
    numbered = [f"{first + i:>{width}} | {line}" for i, line in enumerate(shown)]
    if len(lines) > len(shown):
        numbered.append(f"{'':>{width}} | ... ({len(lines) - len(shown)} more lines)")
    return "\n".join(
        [
            message,
            f"The closest match is at {_lines_label(first, last)} ({ratio:.0%} similar):",
            *numbered,
            "Retry with old_string copied exactly from these lines (without the line-number "
            "prefixes), or read the file again with read_file.",
        ]
    )


def closest_region(text: str, old: str) -> tuple[int, int, float] | None:
    """(first line, last line, similarity) of the run of lines, as many as `old` has,
    most similar to `old`; None when nothing reaches `MIN_SIMILARITY`.

    Scoring every window with difflib is quadratic, so windows are first ranked by how
    many tokens they share with `old` (one pass), and only the best few are compared.
    """
    lines = text.split("\n")
    wanted = old.rstrip("\n").split("\n")
    if len(lines) > MAX_SEARCH_LINES:
        return None
    best_ratio, best_start = MIN_SIMILARITY, -1
    for start in _candidate_starts(lines, wanted, CANDIDATES):
        ratio = _similarity(lines[start : start + len(wanted)], wanted)
        if ratio > best_ratio:
            best_ratio, best_start = ratio, start
    if best_start < 0:
        return None
    return best_start + 1, min(best_start + len(wanted), len(lines)), best_ratio


def _candidate_starts(lines: list[str], wanted: list[str], top: int) -> list[int]:
    """Window starts ranked by the Dice overlap of their tokens with `wanted`'s."""
    k = len(wanted)
    target = Counter(tok for line in wanted for tok in _TOKEN.findall(line))
    target_size = sum(target.values())
    tokens = [_TOKEN.findall(line) for line in lines]
    window: Counter[str] = Counter()
    shared = size = 0
    scored: list[tuple[float, int]] = []
    for i, line_tokens in enumerate(tokens):
        for tok in line_tokens:
            shared += window[tok] < target[tok]
            window[tok] += 1
        size += len(line_tokens)
        if i >= k:
            for tok in tokens[i - k]:
                window[tok] -= 1
                shared -= window[tok] < target[tok]
            size -= len(tokens[i - k])
        if i >= k - 1 or i == len(lines) - 1:
            total = size + target_size
            scored.append((2 * shared / total if total else 0.0, max(0, i - k + 1)))
    return [start for _, start in heapq.nlargest(top, scored)]


def _similarity(window: list[str], wanted: list[str]) -> float:
    """difflib's ratio: by characters for short texts, by lines for long ones (faster)."""
    left, right = "\n".join(window), "\n".join(wanted)
    if len(left) + len(right) <= 4000:
        return difflib.SequenceMatcher(None, left, right, autojunk=False).ratio()
    keys = [line.strip() for line in window], [line.strip() for line in wanted]
    return difflib.SequenceMatcher(None, *keys, autojunk=False).ratio()
