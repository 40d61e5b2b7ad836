"""Recommended sampling per model family (reference: qwen3-coder.md §3).

Standard OpenAI keys (temperature, top_p, ...) go into the request as they are; the
others (top_k, repetition_penalty, min_p) go into `extra_body`, which vLLM, SGLang,
llama.cpp and DashScope all accept.
"""

from __future__ import annotations

from typing import Any

STANDARD_KEYS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "stop",
        "n",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "parallel_tool_calls",
        "tool_choice",
        "reasoning_effort",
        "user",
    }
)
"""Keys the OpenAI chat-completions API defines; everything else is server-specific."""

QWEN3_CODER = {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05}
QWEN3_CODER_NEXT = {"temperature": 1.0, "top_p": 0.95, "top_k": 40}


def default_sampling(model: str) -> dict[str, Any]:
    """Sampling the model card recommends for `model`; `{}` (server defaults) when unknown.

    Matches served names loosely: `Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8`,
    `qwen3-coder-plus`, `qwen/qwen3-coder:free`, `unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF`.
    """
    name = model.lower().replace("_", "-")
    if "qwen3-coder" not in name:
        return {}
    if "next" in name:
        return dict(QWEN3_CODER_NEXT)
    return dict(QWEN3_CODER)


def split_sampling(sampling: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split into (standard request keys, extra_body keys), dropping None values."""
    standard: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in sampling.items():
        if value is None:
            continue
        (standard if key in STANDARD_KEYS else extra)[key] = value
    return standard, extra
