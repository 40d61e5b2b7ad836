"""What qwen-code knows about model ids: context windows of the common Qwen3-Coder ids,
and the output token limit to ask for.

Windows are used when neither the settings (`model.generationConfig.contextWindowSize`) nor
the server (`max_model_len` in /v1/models) say how large the window is.
"""

from __future__ import annotations

import re
from typing import Any

CONTEXT_WINDOWS: tuple[tuple[str, int], ...] = (
    (r"qwen/qwen3-coder-30b", 160_000),
    (r"qwen3-coder-(plus|flash)", 1_000_000),
    (r"qwen3-coder-480b", 262_144),
    (r"qwen3-coder-30b", 262_144),
    (r"qwen3-coder-next", 262_144),
    (r"qwen3-coder", 262_144),
)
"""Patterns searched (case-insensitive) in the model id, first match wins (providers.md §2)."""

QWEN3_CODER_OUTPUT_TOKENS = 65_536
"""The output length the Qwen3-Coder model card recommends (DashScope's limit too)."""
DEFAULT_OUTPUT_TOKENS = 32_768
"""For other models: long enough for any file worth writing in one call."""
MIN_OUTPUT_TOKENS = 1_024

_LENGTH_KEYS = ("max_model_len", "context_length", "context_window", "max_context_length")


def known_context_window(model: str) -> int | None:
    for pattern, size in CONTEXT_WINDOWS:
        if re.search(pattern, model, re.IGNORECASE):
            return size
    return None


def default_output_tokens(model: str, window: int | None = None) -> int:
    """The `max_tokens` to send when the settings set none: 65,536 for Qwen3-Coder models,
    else 32,768; at most half of a known context window, so the prompt keeps room."""
    limit = DEFAULT_OUTPUT_TOKENS
    if "qwen3-coder" in model.lower().replace("_", "-"):
        limit = QWEN3_CODER_OUTPUT_TOKENS
    if window:
        limit = min(limit, max(MIN_OUTPUT_TOKENS, window // 2))
    return limit


def served_context_length(model: dict[str, Any]) -> int | None:
    """The context length a /models entry reports, under the names servers use (vLLM
    `max_model_len`, others `context_length`, llama.cpp `meta.n_ctx`)."""
    for key in _LENGTH_KEYS:
        value = model.get(key)
        if isinstance(value, int) and value > 0:
            return value
    meta = model.get("meta")
    if isinstance(meta, dict):
        for key in ("n_ctx", "n_ctx_train"):
            if isinstance(meta.get(key), int) and meta[key] > 0:
                return meta[key]
    return None
