"""`@path` references in a user message: attach the files' contents and directories' listings.

The message keeps the `@path` text as typed; what the references point at is appended
after it in one delimited block, the shape Qwen Code uses:

    <the user's text>

    --- Content from referenced files ---
    Content from @src/app.py:
    ```
    ...
    ```
    --- End of content ---

A reference is `@` at the start of the text or after whitespace or an opening bracket or
quote (so `a@b.c` is an e-mail address, not a reference), followed by the path; a space
in the path is written `\\ `. Paths go through `Workspace.resolve`, so a reference that
leaves the workspace is refused with a note instead of read.

An image (`@shot.png`: png, jpeg, gif, webp, bmp) is not put in the block: it is loaded
(`Expanded.images`) and `images_for_model` makes it an image part of the message for a
model that takes images, or a description by `visionModel`, or a note.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from qwen_code.tools.base import ToolContext, ToolError
from qwen_code.tools.fileio import (
    BinaryFileError,
    decode_bytes,
    list_files,
    normalize_newlines,
    sniff_format,
)
from qwen_code.tools.media import (
    MAX_IMAGE_BYTES,
    LoadedImage,
    MediaError,
    is_image_path,
    load_image,
    present_image,
)
from qwen_code.tools.workspace import Workspace

MAX_FILE_BYTES = 256 * 1024
MAX_TOTAL_BYTES = 1024 * 1024
MAX_DIR_ENTRIES = 200
BLOCK_START = "--- Content from referenced files ---"
BLOCK_END = "--- End of content ---"

REFERENCE_RE = re.compile(r"(?<![^\s(\[{\"'])@((?:\\.|[^\s\\])+)")
"""`@` at the start or after whitespace/`([{"'`, then the path with `\\`-escapes."""
_TRAILING = ",.;:!?)]}'\""
"""Punctuation that ends a sentence rather than a path (dropped when that names a path)."""
_ESCAPE_RE = re.compile(r"\\(.)")


@dataclass(frozen=True, slots=True)
class Attachment:
    """One `@` reference and what came of it. `error` is set when nothing was attached
    (missing path, outside the workspace, binary file, limit reached) and is meant to be
    shown to the user."""

    ref: str
    """The path as typed, without `@` and with escapes undone."""
    path: Path | None = None
    """The resolved absolute path (None when the reference names nothing usable)."""
    kind: Literal["file", "dir", "image"] | None = None
    bytes: int = 0
    """For a file: bytes of it attached; for a directory: size of the listing."""
    truncated: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An image to go with a message, and how it is named there (`@shot.png`, `[image 1]`)."""

    shown: str
    image: LoadedImage


@dataclass(slots=True)
class Expanded:
    text: str
    """The message for the model: the user's text plus the block of attached content."""
    attached: list[Attachment] = field(default_factory=list)
    images: list[ImageRef] = field(default_factory=list)
    """Images the references name, for `images_for_model`."""

    @property
    def errors(self) -> list[str]:
        return [a.error for a in self.attached if a.error]


@dataclass(slots=True)
class _Budget:
    max_file: int
    max_total: int
    max_entries: int
    used: int = 0

    @property
    def left(self) -> int:
        return max(self.max_total - self.used, 0)


def unescape_path(raw: str) -> str:
    """`my\\ file.txt` → `my file.txt` (a backslash keeps the next character as is)."""
    return _ESCAPE_RE.sub(r"\1", raw)


def escape_path(path: str) -> str:
    """The inverse of `unescape_path`: how a path is typed after `@`."""
    return path.replace("\\", "\\\\").replace(" ", "\\ ")


def find_references(text: str) -> list[str]:
    """The raw (still escaped) path of each `@` reference, in order."""
    return [m.group(1) for m in REFERENCE_RE.finditer(text)]


def list_files_blocking(root: Path) -> list[Path]:
    """`fileio.list_files` for synchronous code, also inside a running event loop
    (where `asyncio.run` cannot nest): it runs on a fresh loop in a worker thread."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="list-files") as pool:
        return pool.submit(lambda: asyncio.run(list_files(root))).result()


def expand_at_references(
    text: str,
    workspace: Workspace,
    *,
    max_file_bytes: int = MAX_FILE_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_dir_entries: int = MAX_DIR_ENTRIES,
    only_images: bool = False,
) -> Expanded:
    """Attach what the `@path` references in `text` point at; see the module docstring.

    Each path is attached once however often it is named. A missing path leaves the
    text as typed (it may be a mention, not a path) and records an error. With
    `only_images`, references to anything but an image are left alone.
    """
    budget = _Budget(max_file_bytes, max_total_bytes, max_dir_entries)
    expanded = Expanded(text=text)
    sections: list[str] = []
    seen: set[Path] = set()
    for raw in find_references(text):
        if only_images and not is_image_path(Path(unescape_path(raw.rstrip(_TRAILING)))):
            continue
        attachment, section = _attach(raw, workspace, budget, seen, expanded.images)
        if attachment is None or (attachment.error and attachment.error in expanded.errors):
            continue
        expanded.attached.append(attachment)
        if section:
            sections.append(section)
    if sections:
        block = "\n".join([BLOCK_START, *sections, BLOCK_END])
        expanded.text = f"{text}\n\n{block}"
    return expanded


def _attach(
    raw: str, workspace: Workspace, budget: _Budget, seen: set[Path], images: list[ImageRef]
) -> tuple[Attachment | None, str | None]:
    """The attachment and its section of the block; (None, None) for a repeat."""
    ref = _existing_ref(raw, workspace)
    if ref is None:
        name = unescape_path(raw.rstrip(_TRAILING) or raw)
        return Attachment(ref=name, error=f"@{name}: no such file"), None
    try:
        path = workspace.resolve(ref)
    except ToolError:
        error = f"@{ref}: outside the workspace, not attached"
        return Attachment(ref=ref, error=error), f"[{error}]"
    if path in seen:
        return None, None
    seen.add(path)
    if path.is_dir():
        return _attach_dir(ref, path, workspace, budget)
    if not path.is_file():
        error = f"@{ref}: not a regular file, not attached"
        return Attachment(ref=ref, path=path, error=error), f"[{error}]"
    if is_image_path(path):
        return _attach_image(ref, path, workspace, images)
    return _attach_file(ref, path, workspace, budget)


def _existing_ref(raw: str, workspace: Workspace) -> str | None:
    """The unescaped path of the reference, minus trailing punctuation when only the
    shorter form exists; None when no form names an existing path."""
    candidate = raw
    while candidate:
        ref = unescape_path(candidate)
        given = Path(ref).expanduser()
        if (given if given.is_absolute() else workspace.root / given).exists():
            return ref
        if candidate[-1] not in _TRAILING:
            return None
        candidate = candidate[:-1]
    return None


def _attach_file(
    ref: str, path: Path, workspace: Workspace, budget: _Budget
) -> tuple[Attachment, str]:
    shown = f"@{workspace.display(path)}"
    if budget.left <= 0:
        return _over_budget(ref, path, "file", shown, budget)
    try:
        text, read, size = read_capped(path, min(budget.max_file, budget.left))
    except BinaryFileError:
        error = f"{shown}: binary file, skipped"
        return Attachment(ref=ref, path=path, kind="file", error=error), f"[{error}]"
    except OSError as exc:
        error = f"{shown}: cannot read ({exc.strerror or exc})"
        return Attachment(ref=ref, path=path, kind="file", error=error), f"[{error}]"
    budget.used += read
    truncated = read < size
    section = f"Content from {shown}:\n{fenced(text)}"
    if truncated:
        section += f"\n[truncated: showing the first {read:,} of {size:,} bytes]"
    attachment = Attachment(ref=ref, path=path, kind="file", bytes=read, truncated=truncated)
    return attachment, section


def _attach_image(
    ref: str, path: Path, workspace: Workspace, images: list[ImageRef]
) -> tuple[Attachment, str | None]:
    """The image loaded for the model (`images`); it has no section in the block."""
    shown = f"@{workspace.display(path)}"
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_IMAGE_BYTES + 1)
        image = load_image(data, shown)
    except OSError as exc:
        error = f"{shown}: cannot read ({exc.strerror or exc})"
        return Attachment(ref=ref, path=path, kind="image", error=error), f"[{error}]"
    except MediaError as exc:
        error = f"{exc} Not attached."
        return Attachment(ref=ref, path=path, kind="image", error=error), f"[{error}]"
    images.append(ImageRef(shown, image))
    return Attachment(ref=ref, path=path, kind="image", bytes=len(data)), None


def _attach_dir(
    ref: str, path: Path, workspace: Workspace, budget: _Budget
) -> tuple[Attachment, str]:
    shown = f"@{workspace.display(path).rstrip('/')}/"
    if budget.left <= 0:
        return _over_budget(ref, path, "dir", shown, budget)
    try:
        entries = sorted(workspace.display(p) for p in list_files_blocking(path))
    except OSError as exc:
        error = f"{shown}: cannot list ({exc.strerror or exc})"
        return Attachment(ref=ref, path=path, kind="dir", error=error), f"[{error}]"
    kept = _fit_lines(entries[: budget.max_entries], budget.left)
    listing = "\n".join(kept)
    size = len(listing.encode())
    budget.used += size
    header = f"Content from {shown} (directory listing, recursive, {len(entries):,} files):"
    section = f"{header}\n{fenced(listing or '(no files; git-ignored files are left out)')}"
    truncated = len(kept) < len(entries)
    if truncated:
        section += f"\n[truncated: showing the first {len(kept):,} of {len(entries):,} entries]"
    attachment = Attachment(ref=ref, path=path, kind="dir", bytes=size, truncated=truncated)
    return attachment, section


def _over_budget(
    ref: str, path: Path, kind: Literal["file", "dir"], shown: str, budget: _Budget
) -> tuple[Attachment, str]:
    error = f"{shown}: not attached, the {budget.max_total:,}-byte limit for attachments is reached"
    return Attachment(ref=ref, path=path, kind=kind, truncated=True, error=error), f"[{error}]"


def _fit_lines(lines: list[str], max_bytes: int) -> list[str]:
    """The leading lines whose `\\n`-joined size stays within `max_bytes`."""
    kept: list[str] = []
    used = 0
    for line in lines:
        used += len(line.encode()) + (1 if kept else 0)
        if used > max_bytes:
            break
        kept.append(line)
    return kept


def read_capped(path: Path, cap: int) -> tuple[str, int, int]:
    """(text, bytes read, file size) for at most the first `cap` bytes of a text file.

    A cut file is decoded in the encoding its head shows and a character split by the
    cut is dropped, so a cut never turns UTF-8 into mojibake. Raises `BinaryFileError`.
    """
    with path.open("rb") as fh:
        data = fh.read(cap + 1)
        size = max(os.fstat(fh.fileno()).st_size, len(data))
    if len(data) <= cap:
        return decode_bytes(data).text, len(data), len(data)
    data = data[:cap]
    fmt = sniff_format(path)
    codec = fmt.encoding
    if fmt.bom:  # codecs that drop the BOM themselves
        codec = {"utf-8": "utf-8-sig"}.get(codec, codec.rsplit("-", 1)[0])
    text = codecs.getincrementaldecoder(codec)(errors="replace").decode(data, final=False)
    return normalize_newlines(text), len(data), size


def fenced(text: str) -> str:
    """`text` in a code fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text.removesuffix(chr(10))}\n{fence}"


@dataclass(slots=True)
class ImagesForModel:
    """What a message's images come to: `sections` for its text, `media` (image parts)
    to go with it, and `notes` for the user (an image the model will not get)."""

    sections: list[str] = field(default_factory=list)
    media: tuple[dict[str, Any], ...] = ()
    notes: list[str] = field(default_factory=list)


async def images_for_model(ctx: ToolContext, images: list[ImageRef]) -> ImagesForModel:
    """Each image as the session's model can take it: as an image part, or described by
    `visionModel`, or (neither) a note for the model and one for the user."""
    result = ImagesForModel()
    media: list[dict[str, Any]] = []
    for ref in images:
        try:
            shown = await present_image(ctx, ref.image, ref.shown)
        except ToolError as exc:
            result.notes.append(f"{ref.shown}: the vision model could not describe it ({exc})")
            result.sections.append(f"[{ref.shown}: an image that could not be described]")
            continue
        if shown.media:
            media.extend(shown.media)
            result.sections.append(f"[{ref.shown}: image ({ref.image.summary()}), attached below]")
        elif shown.seen:
            result.sections.append(shown.text)
        else:
            result.notes.append(shown.text)
            result.sections.append(f"[{ref.shown}: an image the model cannot see; not attached]")
    result.media = tuple(media)
    return result


async def prompt_with_images(
    ctx: ToolContext, text: str
) -> tuple[str, tuple[dict[str, Any], ...], list[str]]:
    """A headless prompt's `@image` references made ready for the model: (the prompt with
    the images' sections, the image parts, notes for the user). Other references are
    left as typed."""
    expanded = await asyncio.to_thread(expand_at_references, text, ctx.workspace, only_images=True)
    if not expanded.attached:
        return text, (), []
    images = await images_for_model(ctx, expanded.images)
    message = "\n\n".join([expanded.text, *images.sections])
    return message, images.media, [*expanded.errors, *images.notes]
