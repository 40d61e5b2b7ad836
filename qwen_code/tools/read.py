"""`read_file`: a text file's lines, read lazily and capped so a huge file cannot flood
the context; the model pages through the rest with `offset`/`limit`. An image comes back
as an image part for a model that takes images (else described by `visionModel`), a PDF
as the text of its `pages` (see `qwen_code.tools.media`).

The file is opened through the workspace's descriptor walk (`Workspace.open_binary`), and
the kind of file is judged from that open descriptor, so a directory swapped for a symlink
after the path check cannot make it read (or list) something outside the workspace.
"""

from __future__ import annotations

import asyncio
import difflib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pydantic import Field

from qwen_code.llm.modalities import modalities_of
from qwen_code.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParams, truncate_text
from qwen_code.tools.fileio import BinaryFileError, stream_lines
from qwen_code.tools.media import (
    MAX_IMAGE_BYTES,
    MAX_PDF_BYTES,
    MAX_PDF_PAGES,
    MediaError,
    is_image_path,
    is_pdf_path,
    load_image,
    present_image,
    read_pdf,
)
from qwen_code.tools.safe_paths import NotRegularFileError
from qwen_code.tools.workspace import Workspace

MAX_LINE_CHARS = 2000
"""Longer lines are cut (minified code, data files) and the notice says so."""

_UNSUPPORTED = {
    **dict.fromkeys(
        (".ico", ".tif", ".tiff", ".heic"),
        "an image in a format read_file does not read (png, jpeg, gif, webp and bmp it does)",
    ),
    **dict.fromkeys((".mp3", ".wav", ".flac", ".ogg", ".m4a"), "an audio file"),
    **dict.fromkeys((".mp4", ".mov", ".avi", ".mkv", ".webm"), "a video"),
}


@dataclass(slots=True)
class _Chunk:
    """The lines kept from one read, and what was left out."""

    lines: list[str] = field(default_factory=list)
    total: int = 0
    shortened: int = 0
    hit_cap: bool = False


class ReadFileTool(Tool["ReadFileTool.Params"]):
    name = "read_file"
    kind = "read"

    class Params(ToolParams):
        file_path: str
        """The file to read (absolute, or relative to the workspace root)."""
        offset: int | None = Field(default=None, ge=0)
        """The 0-based line number to start reading from; use with `limit` for large files."""
        limit: int | None = Field(default=None, ge=1)
        """The maximum number of lines to read."""
        pages: str | None = None
        """PDF only: the pages to read, e.g. "1-5" (at most 20 at a time)."""

    def summary(self, params: ReadFileTool.Params) -> str:
        return params.file_path

    async def run(self, params: ReadFileTool.Params, ctx: ToolContext) -> ToolOutput:
        path = ctx.workspace.resolve(params.file_path)
        where = ctx.workspace.display(path)
        if is_image_path(path) or is_pdf_path(path) or params.pages is not None:
            return await _read_media(path, where, params, ctx)
        start = params.offset or 0
        max_lines = min(params.limit or ctx.limits.max_output_lines, ctx.limits.max_output_lines)
        try:
            with await _open_text(ctx, path, where) as raw:
                _check_supported(path, where)
                lines, _ = stream_lines(raw)
                chunk = _collect(lines, start, max_lines, ctx.limits.max_output_chars)
        except BinaryFileError as exc:
            raise ToolError(
                f"Cannot read {where!r}: it is a binary file ({exc}). Only text files can be "
                "read; use run_shell_command with a suitable tool to inspect binary data."
            ) from exc
        if start and start >= chunk.total:
            raise ToolError(
                f"offset {start} is past the end of {where!r}, which has {chunk.total} "
                f"line(s). Use an offset below {chunk.total}."
            )
        return _output(path, where, start, chunk, params)


def _collect(lines: Iterator[str], start: int, max_lines: int, max_chars: int) -> _Chunk:
    """Keep lines from `start` until a cap is hit, then only count the rest."""
    chunk = _Chunk()
    used = 0
    for index, line in enumerate(lines):
        chunk.total = index + 1
        if index < start or chunk.hit_cap:
            continue
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + f"... [line truncated: {len(line)} characters]"
            chunk.shortened += 1
        too_long = chunk.lines and used + len(line) + 1 > max_chars
        if len(chunk.lines) >= max_lines or too_long:
            chunk.hit_cap = True
            continue
        chunk.lines.append(line)
        used += len(line) + 1
    return chunk


def _output(
    path: Path, where: str, start: int, chunk: _Chunk, params: ReadFileTool.Params
) -> ToolOutput:
    first, last = start + 1, start + len(chunk.lines)
    partial = start > 0 or last < chunk.total
    notices = []
    if partial:
        notice = f"Showing lines {first}-{last} of {chunk.total} total lines of {where}."
        if last < chunk.total:
            notice += (
                f" To read more, call read_file again with offset={last} "
                f"(and a limit if you need fewer lines)."
            )
        notices.append(f"[{notice}]")
    if chunk.shortened:
        notices.append(
            f"[{chunk.shortened} line(s) longer than {MAX_LINE_CHARS} characters were shortened.]"
        )
    body = "\n".join(chunk.lines) if chunk.total else "(empty file)"
    content = "\n".join([*notices, "", body]) if notices else body
    display = (
        f"Read lines {first}-{last} of {chunk.total}"
        if partial
        else (f"Read {chunk.total} line(s)")
    )
    data = {
        "path": str(path),
        "start_line": first,
        "end_line": last,
        "total_lines": chunk.total,
        "truncated": partial or bool(chunk.shortened),
    }
    return ToolOutput(content=content, display=display, data=data)


async def _open_text(ctx: ToolContext, path: Path, where: str) -> BinaryIO:
    """A text file to read lines from: the editor's buffer (unsaved changes included)
    when the session reads through one (`ToolContext.file_io`), else the file on disk."""
    text = await ctx.file_io.read_text(path) if ctx.file_io is not None else None
    if text is None:
        return _open(ctx.workspace, path, where)
    return io.BytesIO(text.encode("utf-8", errors="replace"))


def _open(workspace: Workspace, path: Path, where: str) -> BinaryIO:
    """The file opened for reading, or a `ToolError` that says why it cannot be."""
    try:
        return workspace.open_binary(path)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise ToolError(_not_found(workspace, path, where)) from exc
    except IsADirectoryError as exc:
        raise ToolError(
            f"{where!r} is a directory, not a file. Use list_directory to see its contents."
        ) from exc
    except NotRegularFileError as exc:
        raise ToolError(f"{where!r} is not a regular file (a device, socket or pipe).") from exc
    except OSError as exc:
        raise ToolError(f"Cannot read {where!r}: {exc.strerror or exc}.") from exc


def _check_supported(path: Path, where: str) -> None:
    kind = _UNSUPPORTED.get(path.suffix.lower())
    if kind:
        raise ToolError(
            f"{where!r} is {kind}; reading it is not supported. Ask the user to describe "
            "it, or read a text file instead."
        )


async def _read_media(
    path: Path, where: str, params: ReadFileTool.Params, ctx: ToolContext
) -> ToolOutput:
    """An image or a PDF (`pages` on any other file is an error)."""
    if not is_pdf_path(path) and not is_image_path(path):
        raise ToolError(f"pages= applies to PDF files only, and {where!r} is not one.")
    pdf = is_pdf_path(path)
    with _open(ctx.workspace, path, where) as raw:
        data = raw.read((MAX_PDF_BYTES if pdf else MAX_IMAGE_BYTES) + 1)
    try:
        if pdf:
            return await _read_pdf(path, where, data, params.pages, ctx)
        image = await asyncio.to_thread(load_image, data, where)
    except MediaError as exc:
        raise ToolError(str(exc)) from exc
    shown = await present_image(ctx, image, where)
    if not shown.seen:
        raise ToolError(shown.text)
    return ToolOutput(
        content=shown.text,
        display=f"Image {image.width}x{image.height}",
        data={"path": str(path), "width": image.width, "height": image.height},
        media=shown.media,
    )


async def _read_pdf(
    path: Path, where: str, data: bytes, pages: str | None, ctx: ToolContext
) -> ToolOutput:
    with_images = modalities_of(ctx.state).pdf
    pdf = await asyncio.to_thread(read_pdf, data, where, pages, with_images=with_images)
    last = pdf.pages[-1]
    notes = [f"[PDF {where}: pages {_ranges(pdf.pages)} of {pdf.total}.]"]
    if not pages and last < pdf.total:
        more = f"{last + 1}-{min(pdf.total, last + MAX_PDF_PAGES)}"
        notes.append(f'[To read more, call read_file again with pages="{more}".]')
    if pdf.images:
        left = f" ({pdf.images_left_out} more left out)" if pdf.images_left_out else ""
        notes.append(f"[{len(pdf.images)} image(s) from these pages are attached below{left}.]")
    text, cut = truncate_text(pdf.text, max_chars=ctx.limits.max_output_chars)
    if cut:
        notes.append("[The text was shortened; read fewer pages at a time to see all of it.]")
    return ToolOutput(
        content="\n".join([*notes, "", text]),
        display=f"Read {len(pdf.pages)} page(s) of {pdf.total}",
        data={"path": str(path), "pages": pdf.pages, "total_pages": pdf.total},
        media=tuple(image.part for image in pdf.images),
    )


def _ranges(pages: list[int]) -> str:
    """[1, 2, 3, 5] → "1-3, 5"."""
    spans: list[list[int]] = []
    for page in pages:
        if spans and page == spans[-1][1] + 1:
            spans[-1][1] = page
        else:
            spans.append([page, page])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _not_found(workspace: Workspace, path: Path, where: str) -> str:
    try:
        names = workspace.list_names(path.parent, 2000)
    except (OSError, ToolError):  # no directory there, or it changed while we looked
        return (
            f"File not found: {where!r} (its directory does not exist either). Use glob or "
            "list_directory to find the right path."
        )
    close = difflib.get_close_matches(path.name, names, n=3, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return f"File not found: {where!r}.{hint} Use glob to search for a file by name."
