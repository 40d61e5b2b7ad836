"""What the model takes besides text: images, and PDF pages (sent as images).

Decided, first answer wins: the setting `model.generationConfig.modalities` (Qwen Code's
key, `{"image": true, "pdf": true}`); the server's model card when it says (OpenRouter's
`architecture.input_modalities` / `modality`, `capabilities` lists as Ollama and LM
Studio give them); else a small catalog of known vision models by name (Qwen-VL, QVQ,
Qwen-Omni, GPT-4o/4.1/5, Claude, Gemini, ...). Qwen3-Coder is text-only.

Also here: the token estimate of one image part, from its pixels as Qwen-VL counts them
(one token per 28x28 patch), read from the image header inside the data URL.
"""

from __future__ import annotations

import binascii
import math
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qwen_code.config import Settings

MODALITIES_KEY = "modalities"
"""`ToolContext.state` key: a `SessionModalities` (or a `Modalities`) for the session."""

_VISION_NAMES = re.compile(
    r"(?:^|[/:])(?:qwen[\d.]*-?vl|qvq|qwen[\d.]*-?omni|gpt-4o|gpt-4\.1|gpt-5|claude-"
    r"|gemini-|llava|pixtral)",
    re.IGNORECASE,
)
"""Model ids of known vision models (a provider prefix such as `Qwen/` may come first)."""

_WORDS = {"image": ("image", "images", "vision"), "pdf": ("pdf", "file", "document")}


@dataclass(frozen=True, slots=True)
class Modalities:
    """What the session's model takes now, and the model that describes images for it."""

    model: str = ""
    image: bool = False
    pdf: bool = False
    """PDF pages may go to the model as images (the embedded images of each page)."""
    vision_model: str = ""
    """The `visionModel` setting: describes images for a model that cannot see them."""


def takes_images(
    settings: Settings, model: str, served_models: list[dict[str, Any]] | None = None
) -> bool:
    """True when `model` accepts image parts: the setting, else the card, else the catalog."""
    configured = _from_setting(settings, "image")
    if configured is not None:
        return configured
    card = _from_card(model, served_models, "image")
    if card is not None:
        return card
    return bool(_VISION_NAMES.search(model.strip()))


def takes_pdf(
    settings: Settings, model: str, served_models: list[dict[str, Any]] | None = None
) -> bool:
    """True when PDF pages may go to `model` as images: the setting's `pdf`, else
    whether it takes images at all."""
    configured = _from_setting(settings, "pdf")
    if configured is not None:
        return configured
    return takes_images(settings, model, served_models)


def _from_setting(settings: Any, key: str) -> bool | None:
    generation = getattr(getattr(settings, "model", None), "generation_config", None)
    configured = getattr(generation, "modalities", None)
    if isinstance(configured, Mapping) and isinstance(configured.get(key), bool):
        return bool(configured[key])
    return None


def _from_card(model: str, served: list[dict[str, Any]] | None, kind: str) -> bool | None:
    """What the server's model list says about `model` taking `kind`; None when silent."""
    for entry in served or ():
        if isinstance(entry, dict) and entry.get("id") == model:
            return card_says(entry, kind)
    return None


def card_says(entry: Mapping[str, Any], kind: str) -> bool | None:
    """Tolerant reading of one model card: lists of input modalities, an OpenRouter
    `modality` string (`text+image->text`), or a `capabilities` list or map."""
    words = _WORDS[kind]
    arch = entry.get("architecture")
    arch = arch if isinstance(arch, Mapping) else {}
    for listed in (arch.get("input_modalities"), entry.get("input_modalities")):
        if isinstance(listed, list) and listed:
            return any(str(item).lower() in words for item in listed)
    modality = arch.get("modality") or entry.get("modality")
    if isinstance(modality, str) and "->" in modality:
        inputs = modality.split("->", 1)[0].lower().split("+")
        return any(item.strip() in words for item in inputs)
    return _capabilities(entry.get("capabilities"), words)


def _capabilities(capabilities: Any, words: tuple[str, ...]) -> bool | None:
    if isinstance(capabilities, list) and capabilities:
        return any(str(item).lower() in words for item in capabilities)
    if isinstance(capabilities, Mapping):
        for word in words:
            if isinstance(capabilities.get(word), bool):
                return bool(capabilities[word])
    return None


class SessionModalities:
    """`ctx.state[MODALITIES_KEY]` of a session: called, it says what the model in use
    takes now (it follows a switch of model, since `model` is asked each time)."""

    def __init__(
        self,
        settings: Settings,
        model: Callable[[], str],
        served_models: list[dict[str, Any]] | None = None,
    ) -> None:
        self.settings, self.model, self.served = settings, model, list(served_models or ())

    def __call__(self) -> Modalities:
        model = self.model()
        return Modalities(
            model=model,
            image=takes_images(self.settings, model, self.served),
            pdf=takes_pdf(self.settings, model, self.served),
            vision_model=getattr(self.settings, "vision_model", "") or "",
        )


def modalities_of(state: Mapping[str, Any]) -> Modalities:
    """What the session behind a tool context's `state` takes (text only when unknown)."""
    source = state.get(MODALITIES_KEY)
    if isinstance(source, Modalities):
        return source
    if callable(source):
        found = source()
        if isinstance(found, Modalities):
            return found
    return Modalities()


# --- the token estimate of an image -------------------------------------------------------

IMAGE_TOKENS_DEFAULT = 1000
"""Tokens counted for an image whose size cannot be read from its URL."""
PATCH_PIXELS = 28
"""Qwen-VL turns each 28x28 patch into one token (14-pixel patches, merged 2x2)."""
MAX_IMAGE_TOKENS = 16_384
IMAGE_OVERHEAD_TOKENS = 2
"""The markers around an image (`<|vision_start|>`, `<|vision_end|>`)."""
_HEADER_CHARS = 16_384
"""Base64 characters decoded to find the size (12 KB of the file: the header is early)."""


def is_image_part(part: Any) -> bool:
    return isinstance(part, Mapping) and part.get("type") == "image_url"


def image_tokens(part: Mapping[str, Any]) -> int:
    """Tokens one image part is estimated to take: its 28-pixel patches, capped."""
    image_url = part.get("image_url")
    url = image_url.get("url") if isinstance(image_url, Mapping) else image_url
    size = data_url_size(url) if isinstance(url, str) else None
    if size is None:
        return IMAGE_TOKENS_DEFAULT
    width, height = size
    patches = math.ceil(width / PATCH_PIXELS) * math.ceil(height / PATCH_PIXELS)
    return IMAGE_OVERHEAD_TOKENS + min(MAX_IMAGE_TOKENS, max(4, patches))


def data_url_size(url: str) -> tuple[int, int] | None:
    """(width, height) of the image in a `data:...;base64,` URL, from its header."""
    if not url.startswith("data:"):
        return None
    comma = url.find(",")
    if comma < 0:
        return None
    head = url[comma + 1 : comma + 1 + _HEADER_CHARS]
    head = head[: len(head) - len(head) % 4]
    try:
        data = binascii.a2b_base64(head)
    except (binascii.Error, ValueError):
        return None
    return image_size(data)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first bytes of a PNG, JPEG, GIF, WebP or BMP file."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return struct.unpack(">II", data[16:24])
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data.startswith(b"BM"):
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
    except struct.error:
        return None
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


_SOF = {*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC}
"""JPEG start-of-frame markers (they carry the size); C4, C8 and CC are other segments."""


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
        elif marker in _SOF:
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return width, height
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            index += 2
        else:
            index += 2 + struct.unpack(">H", data[index + 2 : index + 4])[0]
    return None
