"""Text that can always be written as UTF-8: shown, sent to the server and saved alike.

Two sources of unencodable strings reach the conversation. A model (or a proxy that splits
text by UTF-16 code units) may send a lone surrogate as the JSON escape `\\ud800`; Python
decodes it into a `str` that no UTF-8 encoder accepts. And file names that are not valid
UTF-8 come out of `os.listdir`/`os.fsdecode` with their bad bytes as surrogates
(`surrogateescape`). Model text gets U+FFFD for lone surrogates as it arrives; file names
are shown with the undecodable bytes as `\\xe9`-style escapes. Stdlib only, no qwen_code
imports: every layer may use it.
"""

from __future__ import annotations

import os
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def has_surrogates(text: str) -> bool:
    """True when `text` holds a surrogate code point (cannot be encoded as UTF-8)."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def is_high_surrogate(char: str) -> bool:
    """The first half of a UTF-16 pair: its second half may still be on its way."""
    return "\ud800" <= char <= "\udbff"


def clean_text(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD; a high and low surrogate next to
    each other (a pair split between two chunks, joined again) become their character."""
    if not has_surrogates(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def escape_name(name: str) -> str:
    """A file name or path for display: bytes that were not valid UTF-8 (decoded by Python
    with `surrogateescape`) written as `\\xe9`-style escapes, the rest unchanged."""
    if not has_surrogates(name):
        return name
    try:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    except UnicodeError:  # a surrogate that no undecodable byte produces
        return clean_text(name)


def clean_json(value: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings) with every string, keys
    included, passed through `clean_text`. Other values are returned as they are."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_json(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(item) for item in value]
    return value
