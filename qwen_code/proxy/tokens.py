"""Input token counts for `/v1/messages/count_tokens` from the served model's own tokenizer.

Engines that run the model locally can count exactly what the model will see, chat template
and tools included: vLLM (and SGLang) serve `POST /tokenize`, which takes chat messages and
tools; llama.cpp's server serves `POST /apply-template` (messages to prompt) and `POST
/tokenize` (text to tokens). Hosted APIs (DashScope, OpenRouter) serve neither; there, and
whenever the backend cannot answer quickly, the caller falls back to its character
estimate. What each backend serves is learned on its first count and remembered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from qwen_code.llm.dashscope import is_dashscope
from qwen_code.llm.transport_errors import TransportError

if TYPE_CHECKING:
    from qwen_code.llm.http import HttpTransport
    from qwen_code.proxy.backend import Pool
    from qwen_code.proxy.routes import Route
    from qwen_code.proxy.translate import ChatRequest

TOKENIZE_TIMEOUT_S = 5.0
"""A count is an estimate's upgrade: never worth a long wait."""

VLLM, LLAMA_CPP, NONE = "vllm", "llama.cpp", "none"


def server_root(base_url: str) -> str:
    """The engine's root URL: the OpenAI base URL without its `/v1`."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


async def _vllm(transport: HttpTransport, model: str, chat: ChatRequest) -> int:
    body: dict[str, Any] = {
        "model": model,
        "messages": chat.messages,
        "add_generation_prompt": True,
    }
    if chat.tools:
        body["tools"] = chat.tools
    answer = await transport.post_json("tokenize", body, TOKENIZE_TIMEOUT_S)
    return int(answer["count"])


async def _llama_cpp(transport: HttpTransport, model: str, chat: ChatRequest) -> int:
    body: dict[str, Any] = {"messages": chat.messages}
    if chat.tools:
        body["tools"] = chat.tools
    rendered = await transport.post_json("apply-template", body, TOKENIZE_TIMEOUT_S)
    prompt = rendered["prompt"]
    if not isinstance(prompt, str):
        raise TypeError("apply-template gave no prompt")
    tokens = await transport.post_json(
        "tokenize", {"content": prompt, "add_special": True}, TOKENIZE_TIMEOUT_S
    )
    return len(tokens["tokens"])


_COUNTERS: dict[str, Callable[[HttpTransport, str, ChatRequest], Awaitable[int]]] = {
    VLLM: _vllm,
    LLAMA_CPP: _llama_cpp,
}


class TokenCounter:
    """Exact counts where the backend can give them, remembered per engine."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self.kinds: dict[str, str] = {}
        """Engine root URL -> VLLM, LLAMA_CPP or NONE (serves neither)."""

    async def count(self, route: Route, chat: ChatRequest) -> int | None:
        """The backend's count of `chat`'s input tokens, or None (use the estimate)."""
        root = server_root(route.backend.base_url)
        known = self.kinds.get(root)
        if known == NONE or is_dashscope(root):
            return None
        transport = self._pool.get(root, route.config(max_tokens=None), {})
        for kind in [known] if known else [VLLM, LLAMA_CPP]:
            try:
                tokens = await _COUNTERS[kind](transport, route.model, chat)
            except (TransportError, ValueError, KeyError, TypeError):
                continue
            self.kinds[root] = kind
            return tokens
        if known is None:
            self.kinds[root] = NONE
        return None
