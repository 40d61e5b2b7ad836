"""An ACP prompt (content blocks) as the user message the agent runs: text and images.

Text blocks are the message. A file the user mentioned stays in the text as `@path`
and its content follows in one block at the end, the shape `@path` references take in
the terminal (`--- Content from referenced files ---`): an embedded resource brings the
editor's own text of it (unsaved changes included), a resource link is read from disk
(within the workspace only). Images (image blocks, image files, image blobs) go to the
model as image parts when it takes images, else as `visionModel`'s description, else a
note. What could not be used becomes a note for the user; audio is not supported.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from acp.schema import (
    BlobResourceContents,
    EmbeddedResourceContentBlock,
    ImageContentBlock,
    ResourceContentBlock,
    TextContentBlock,
)

from qwen_code.tools.base import ToolError
from qwen_code.tools.fileio import BinaryFileError, decode_bytes
from qwen_code.tools.media import LoadedImage, MediaError, is_image_path, load_image, present_image

if TYPE_CHECKING:
    from qwen_code.tools.base import ToolContext

MAX_FILE_BYTES = 256 * 1024
"""Most of a mentioned file that is attached (as for `@path` in the terminal)."""
BLOCK_START = "--- Content from referenced files ---"
BLOCK_END = "--- End of content ---"


@dataclass(slots=True)
class UserMessage:
    """The message for the model, its image parts, and notes for the user."""

    text: str
    media: tuple[dict[str, Any], ...] = ()
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Composer:
    ctx: ToolContext
    pieces: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    images: list[tuple[str, LoadedImage]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, block: Any) -> None:
        if isinstance(block, TextContentBlock):
            self.pieces.append(block.text)
        elif isinstance(block, ImageContentBlock):
            self._image(block.data, f"[image {len(self.images) + 1}]")
        elif isinstance(block, ResourceContentBlock):
            self._link(block.uri, block.name)
        elif isinstance(block, EmbeddedResourceContentBlock):
            self._embedded(block)
        else:
            self.notes.append(
                f"{getattr(block, 'type', 'this')} content is not supported; left out."
            )

    def _image(self, data: str, label: str) -> None:
        self.pieces.append(label)
        try:
            raw = base64.b64decode(data, validate=True)
            self.images.append((label, load_image(raw, label)))
        except (binascii.Error, ValueError, MediaError) as exc:
            self.notes.append(f"{label} could not be used: {exc}")

    def _link(self, uri: str, name: str) -> None:
        path = file_path(uri)
        if path is None:
            self.pieces.append(uri or name)
            return
        label = self._label(path)
        self.pieces.append(label)
        try:
            path = self.ctx.workspace.resolve(path)
            if is_image_path(path):
                self.images.append((label, load_image(path.read_bytes(), label)))
                return
            self.sections.append(_section(label, read_capped(path)))
        except (ToolError, OSError, MediaError) as exc:
            self.notes.append(f"{label} was not attached: {_reason(exc)}")

    def _embedded(self, block: EmbeddedResourceContentBlock) -> None:
        resource = block.resource
        path = file_path(resource.uri)
        label = self._label(path) if path is not None else resource.uri
        if not isinstance(resource, BlobResourceContents):
            self.pieces.append(label)
            self.sections.append(_section(label, resource.text))
        elif (resource.mime_type or "").startswith("image/"):
            self._image(resource.blob, label)
        else:
            self.pieces.append(label)
            self.notes.append(
                f"{label} is binary ({resource.mime_type or 'unknown type'}); not attached."
            )

    def _label(self, path: Path) -> str:
        shown = self.ctx.workspace.display(path)
        return "@" + re.sub(r"([\s\\])", r"\\\1", shown)


async def user_message(ctx: ToolContext, blocks: list[Any]) -> UserMessage:
    """The prompt's blocks as one message for the model."""
    composer = _Composer(ctx)
    for block in blocks:
        composer.add(block)
    text = join_pieces(composer.pieces)
    if composer.sections:
        text = "\n\n".join([text, "\n".join([BLOCK_START, *composer.sections, BLOCK_END])])
    media: list[dict[str, Any]] = []
    for label, image in composer.images:
        shown = await present_image(ctx, image, label)
        media.extend(shown.media)
        if shown.media:
            text += f"\n\n[{label}: image ({image.summary()}), attached below]"
        elif shown.seen:
            text += f"\n\n{shown.text}"
        else:
            composer.notes.append(shown.text)
    return UserMessage(text=text.strip(), media=tuple(media), notes=composer.notes)


def join_pieces(pieces: list[str]) -> str:
    """Inline pieces in order, a space between two that would otherwise run together."""
    text = ""
    for piece in pieces:
        if text and piece and not text[-1].isspace() and not piece[0].isspace():
            text += " "
        text += piece
    return text


def file_path(uri: str) -> Path | None:
    """The local path of a `file:` URI (or of a plain absolute path); None otherwise."""
    if uri.startswith("/"):
        return Path(uri)
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(url2pathname(unquote(parsed.path)))


def read_capped(path: Path) -> str:
    """A text file's content, cut after `MAX_FILE_BYTES`; `BinaryFileError` for binary."""
    with path.open("rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) <= MAX_FILE_BYTES:
        return decode_bytes(data).text
    text = decode_bytes(data[:MAX_FILE_BYTES].decode("utf-8", "ignore").encode()).text
    return f"{text}\n[… cut at {MAX_FILE_BYTES // 1024} KB]"


def _section(label: str, text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"Content from {label}:\n{fence}\n{text.removesuffix(chr(10))}\n{fence}"


def _reason(exc: Exception) -> str:
    if isinstance(exc, BinaryFileError):
        return "it is a binary file"
    if isinstance(exc, IsADirectoryError):
        return "it is a folder"
    return str(exc).rstrip(".") or type(exc).__name__
