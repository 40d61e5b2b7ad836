"""The model a session talks to, from the settings: the client's config, the context
window and the reply's token limit; and which model to use when none is named."""

from __future__ import annotations

from typing import Any

from qwen_code.config import Provider, Settings
from qwen_code.errors import ConfigError
from qwen_code.llm.models import default_output_tokens, known_context_window
from qwen_code.llm.sampling import default_sampling
from qwen_code.llm.types import ModelConfig


def model_config(settings: Settings, provider: Provider, model: str) -> ModelConfig:
    """The client's settings for `model`. The reply's token limit: the settings'
    `samplingParams.max_tokens` when set, else one that suits the model (`output_limit`)."""
    generation = settings.model.generation_config
    sampling = {**default_sampling(model), **(generation.sampling_params or {})}
    window = generation.context_window_size or known_context_window(model)
    return ModelConfig(
        base_url=provider.base_url,
        api_key=provider.api_key,
        model=model,
        api_key_source=provider.api_key_source,
        timeout_s=generation.timeout / 1000,
        max_retries=generation.max_retries,
        sampling={k: v for k, v in sampling.items() if v is not None},
        headers=dict(generation.custom_headers),
        extra_body=dict(generation.extra_body),
        max_retry_time_s=generation.max_retry_time / 1000,
        stall_timeout_s=generation.stream_stall_timeout / 1000,
        output_limit=default_output_tokens(model, window),
        context_window=window,
    )


def max_output_tokens(config: ModelConfig) -> int | None:
    """The reply's token limit when the request sets one."""
    value = config.max_tokens or config.sampling.get("max_tokens")
    return value if isinstance(value, int) and value > 0 else None


def context_window_for(
    settings: Settings, model: str, served: list[dict[str, Any]] | None = None
) -> int | None:
    """The context window: settings, else what the server reported, else the known table."""
    configured = settings.model.generation_config.context_window_size
    if configured:
        return configured
    for entry in served or ():
        if entry.get("id") == model and isinstance(entry.get("max_model_len"), int):
            return int(entry["max_model_len"])
    return known_context_window(model)


def pick_model(provider: Provider, served: list[dict[str, Any]]) -> str:
    """Nothing named a model: use the one the server serves, or say which to choose."""
    models = [m["id"] for m in served]
    if len(models) == 1:
        return models[0]
    served = ", ".join(models) if models else "none"
    raise ConfigError(
        f"No model is set and the server at {provider.base_url} serves {served}. "
        "Set OPENAI_MODEL or pass --model."
    )
