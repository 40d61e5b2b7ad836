"""What qwen-code knows about model ids: context windows of the common Qwen3-Coder ids.

Used when neither the settings (`model.generationConfig.contextWindowSize`) nor the server
(`max_model_len` in /v1/models) say how large the window is.
"""

from __future__ import annotations

import re

CONTEXT_WINDOWS: tuple[tuple[str, int], ...] = (
    (r"qwen/qwen3-coder-30b", 160_000),
    (r"qwen3-coder-(plus|flash)", 1_000_000),
    (r"qwen3-coder-480b", 262_144),
    (r"qwen3-coder-30b", 262_144),
    (r"qwen3-coder-next", 262_144),
    (r"qwen3-coder", 262_144),
)
"""Patterns searched (case-insensitive) in the model id, first match wins (providers.md §2)."""


def known_context_window(model: str) -> int | None:
    for pattern, size in CONTEXT_WINDOWS:
        if re.search(pattern, model, re.IGNORECASE):
            return size
    return None
