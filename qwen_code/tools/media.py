"""Images and PDFs for the model: loaded, checked, made small enough, and presented.

An image (png, jpeg, gif, webp, bmp; at most `MAX_IMAGE_BYTES`) is checked with Pillow,
turned upright, scaled down to fit `MAX_LONG_SIDE` and `MAX_PIXELS`, and sent as a PNG
(screenshots, drawings, anything with transparency) or a JPEG (photos) in a data URL
`image_url` part; a PNG or JPEG that needs none of that goes as it is. A PDF's pages
("1-5", at most `MAX_PDF_PAGES` at a time) are read as text with pypdf, with page
markers; their embedded images can come along as image parts ("page images": pypdf
extracts what the page holds, without rendering it).

`present_image` decides what the model gets: the image when it takes images, else a
description from `visionModel` (the session's side model), else a note saying how to
set one. Pillow and pypdf are imported when first needed.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_code.llm.modalities import Modalities, modalities_of
from qwen_code.tools.base import ToolContext

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
}
"""The image files read for the model, by suffix."""
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 100_000_000
"""Larger images are refused before they are decoded (a decompression bomb)."""
MAX_LONG_SIDE = 2048
MAX_PIXELS = 1_150_000
"""Images are scaled down to at most this many pixels (~1,500 tokens as Qwen-VL counts)."""
PASS_THROUGH_BYTES = 5 * 1024 * 1024
"""A PNG or JPEG up to this size that needs no scaling is sent unchanged."""
JPEG_QUALITY = 85
MAX_PDF_BYTES = 50 * 1024 * 1024
MAX_PDF_PAGES = 20
MAX_PAGE_IMAGES = 8
"""Embedded images sent for one read of a PDF, at most."""
MIN_PAGE_IMAGE_SIDE = 32
"""Embedded images smaller than this (rules, bullets, logos) are left out."""

DESCRIBE_PROMPT = (
    "Describe this image ({where}) for a coding assistant that cannot see it. Say what it "
    "shows and how it is laid out; copy any text in it word for word (code, error "
    "messages, labels, numbers). Be complete but do not speculate."
)


class MediaError(Exception):
    """An image or PDF that cannot be used; the message says why, for the model or user."""


# --- images ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadedImage:
    """An image ready for the model: its part and what it is."""

    part: dict[str, Any]
    width: int
    height: int
    original: tuple[int, int]
    file_bytes: int
    mime: str

    @property
    def resized(self) -> bool:
        return (self.width, self.height) != self.original

    def summary(self) -> str:
        """`1024x768, 52 KB`, and what was done to it."""
        text = f"{self.width}x{self.height}, {_kb(self.file_bytes)}"
        if self.resized:
            text += f", scaled down from {self.original[0]}x{self.original[1]}"
        return text


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_TYPES


def is_pdf_path(path: Path) -> bool:
    return path.suffix.lower() == ".pdf"


def load_image(data: bytes, name: str = "the image") -> LoadedImage:
    """`data` (an image file's bytes) as an `image_url` part; raises `MediaError`."""
    if len(data) > MAX_IMAGE_BYTES:
        raise MediaError(
            f"{name} is {len(data) / 2**20:.1f} MB; images over "
            f"{MAX_IMAGE_BYTES // 2**20} MB are not read."
        )
    image, kind = _open_image(data, name)
    original = image.size
    upright = _upright(image)
    scaled = _scaled(upright)
    unchanged = (
        scaled is image
        and kind in ("PNG", "JPEG")
        and image.mode in ("1", "L", "LA", "P", "RGB", "RGBA")
        and len(data) <= PASS_THROUGH_BYTES
    )
    if unchanged:
        encoded, mime = data, f"image/{kind.lower()}"
    else:
        encoded, mime = _encode(scaled, lossless=kind != "JPEG")
    url = f"data:{mime};base64,{base64.b64encode(encoded).decode('ascii')}"
    return LoadedImage(
        part={"type": "image_url", "image_url": {"url": url}},
        width=scaled.size[0],
        height=scaled.size[1],
        original=original,
        file_bytes=len(data),
        mime=mime,
    )


def _open_image(data: bytes, name: str) -> tuple[Any, str]:
    """The decoded image (first frame) and its format; `MediaError` when it is broken."""
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(data))
        kind = image.format or ""
        if kind not in ("PNG", "JPEG", "GIF", "WEBP", "BMP"):
            raise MediaError(f"{name} is not a png, jpeg, gif, webp or bmp image ({kind}).")
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise MediaError(f"{name} is too large to read ({width}x{height} pixels).")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except MediaError:
        raise
    except Image.UnidentifiedImageError as exc:
        raise MediaError(f"{name} is not a valid image (its format is not recognised).") from exc
    except Exception as exc:  # Pillow raises many kinds for broken files
        raise MediaError(f"{name} is not a valid image, or it is damaged ({exc}).") from exc
    return image, kind


def _upright(image: Any) -> Any:
    """The image turned as its EXIF orientation says (the same object when it needs none)."""
    from PIL import ImageOps

    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # unreadable EXIF: leave the image as it is
        return image
    return ImageOps.exif_transpose(image) if orientation not in (None, 1) else image


def _scaled(image: Any) -> Any:
    """The image scaled down to the caps (the same object when it fits)."""
    from PIL import Image

    width, height = image.size
    scale = min(1.0, MAX_LONG_SIDE / max(width, height), math.sqrt(MAX_PIXELS / (width * height)))
    if scale >= 1.0:
        return image
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    if image.mode not in ("1", "L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    return image.resize(size, Image.Resampling.LANCZOS)


def _has_alpha(image: Any) -> bool:
    return image.mode in ("LA", "RGBA", "PA") or "transparency" in image.info


def _encode(image: Any, *, lossless: bool) -> tuple[bytes, str]:
    """PNG for lossless sources and transparency, JPEG for photos."""
    out = io.BytesIO()
    if lossless or _has_alpha(image):
        if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
            image = image.convert("RGBA" if _has_alpha(image) else "RGB")
        image.save(out, format="PNG")
        if out.tell() <= PASS_THROUGH_BYTES or _has_alpha(image):
            return out.getvalue(), "image/png"
        out = io.BytesIO()  # a photo saved as PNG: too big, so a JPEG after all
    if image.mode != "RGB":
        image = image.convert("RGB")
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue(), "image/jpeg"


def _kb(size: int) -> str:
    if size >= 2**20:
        return f"{size / 2**20:.1f} MB"
    return f"{size / 1024:,.0f} KB" if size >= 1024 else f"{size} bytes"


# --- PDFs -------------------------------------------------------------------------------------


@dataclass(slots=True)
class PdfPages:
    """What was read from a PDF: the text of `pages` (1-based) with page markers."""

    text: str
    pages: list[int]
    total: int
    images: list[LoadedImage] = field(default_factory=list)
    images_left_out: int = 0


def parse_pages(spec: str, total: int) -> list[int]:
    """ "1-5", "3", "2,4-6" or "7-" (to the end) → 1-based page numbers; `MediaError`
    when the text is not a page range, names pages past the end, or too many pages."""
    pages: set[int] = set()
    for item in spec.replace(" ", "").split(","):
        first, dash, last = item.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise MediaError(
                f'pages={spec!r} is not a page range; write it as "3", "1-5" or "2,4-6".'
            )
        start = int(first)
        end = int(last) if last else (total if dash else start)
        if start < 1 or end < start:
            raise MediaError(f"pages={spec!r}: pages are numbered from 1, lowest first.")
        if end > total:
            raise MediaError(f"pages={spec!r} is out of range: the PDF has {total} page(s).")
        pages.update(range(start, end + 1))
        if len(pages) > MAX_PDF_PAGES:
            raise MediaError(
                f"pages={spec!r} names more than {MAX_PDF_PAGES} pages; read at most "
                f"{MAX_PDF_PAGES} at a time."
            )
    return sorted(pages)


def read_pdf(
    data: bytes, name: str, pages: str | None = None, *, with_images: bool = False
) -> PdfPages:
    """The text of the chosen pages (default: the first `MAX_PDF_PAGES`), and with
    `with_images` their embedded images. Raises `MediaError` (damaged, encrypted, range)."""
    if len(data) > MAX_PDF_BYTES:
        raise MediaError(f"{name} is {len(data) / 2**20:.1f} MB; PDFs over 50 MB are not read.")
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its repairs are no news to the user
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _read_pages(data, name, pages, with_images)


def _read_pages(data: bytes, name: str, pages: str | None, with_images: bool) -> PdfPages:
    if b"%PDF" not in data[:1024]:
        raise MediaError(f"{name} is not a PDF (it does not start with %PDF).")
    reader = _pdf_reader(data, name)
    total = len(reader.pages)
    if total == 0:
        raise MediaError(f"{name} has no pages.")
    numbers = parse_pages(pages, total) if pages else list(range(1, min(total, MAX_PDF_PAGES) + 1))
    result = PdfPages(text="", pages=numbers, total=total)
    sections = []
    for number in numbers:
        page = reader.pages[number - 1]
        sections.append(f"--- page {number} of {total} ---\n{_page_text(page)}")
        if with_images:
            _page_images(page, f"{name} page {number}", result)
    result.text = "\n\n".join(sections)
    return result


def _pdf_reader(data: bytes, name: str) -> Any:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise MediaError(f"{name} is encrypted (it needs a password); it cannot be read.")
        _ = len(reader.pages)
    except MediaError:
        raise
    except Exception as exc:  # pypdf: PdfReadError, DependencyError (AES), and others
        if "encrypt" in str(exc).lower() or "decrypt" in str(exc).lower():
            raise MediaError(f"{name} is encrypted; it cannot be read ({exc}).") from exc
        raise MediaError(f"{name} is not a readable PDF, or it is damaged ({exc}).") from exc
    return reader


def _page_text(page: Any) -> str:
    try:
        text = (page.extract_text() or "").strip()
    except Exception as exc:  # a damaged content stream: say so for this page only
        return f"(the text of this page could not be read: {exc})"
    return text or "(no text on this page: it may be a scan or a drawing)"


def _page_images(page: Any, name: str, result: PdfPages) -> None:
    """The page's embedded images, as many as `MAX_PAGE_IMAGES` allows in all."""
    try:
        found = list(page.images)
    except Exception:  # images pypdf cannot decode: the text still counts
        return
    for index, embedded in enumerate(found, start=1):
        if len(result.images) >= MAX_PAGE_IMAGES:
            result.images_left_out += 1
            continue
        try:
            image = load_image(embedded.data, f"{name} image {index}")
        except (MediaError, AttributeError):
            continue
        if min(image.original) >= MIN_PAGE_IMAGE_SIDE:
            result.images.append(image)


# --- what the model gets -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Presented:
    """An image as the model will get it: `text` to go with it, and its part in `media`
    when the model takes images. `seen` is False when nothing could show or describe it."""

    text: str
    media: tuple[dict[str, Any], ...] = ()
    seen: bool = True


async def present_image(ctx: ToolContext, image: LoadedImage, where: str) -> Presented:
    """The image itself for a model that takes images; otherwise `visionModel`'s
    description of it, or a note on how to set one."""
    modalities = modalities_of(ctx.state)
    if modalities.image:
        return Presented(f"Image: {where} ({image.summary()}).", (image.part,))
    if modalities.vision_model and ctx.side_model is not None:
        description = await describe_image(ctx, image, where)
        return Presented(
            f"Image: {where} ({image.summary()}). {_model(modalities)} cannot see images, "
            f"so {modalities.vision_model} described it:\n\n{description}"
        )
    return Presented(cannot_see(modalities, where, image), seen=False)


async def describe_image(ctx: ToolContext, image: LoadedImage, where: str) -> str:
    """`visionModel`'s description of the image (raises `ToolError` when it fails)."""
    assert ctx.side_model is not None
    prompt = DESCRIBE_PROMPT.format(where=where)
    message = {"role": "user", "content": [{"type": "text", "text": prompt}, image.part]}
    text = await ctx.side_model.complete([message], role="vision")
    return text.strip() or "(the vision model returned no description)"


def cannot_see(modalities: Modalities, where: str, image: LoadedImage | None = None) -> str:
    size = f" ({image.summary()})" if image is not None else ""
    return (
        f"{where} is an image{size}, and {_model(modalities)} cannot see images. To have "
        'images described, set `visionModel` in the settings (e.g. "qwen3-vl-plus"); if '
        "this model does take images, set `model.generationConfig.modalities` to "
        '{"image": true}.'
    )


def _model(modalities: Modalities) -> str:
    return modalities.model or "the model in use"
