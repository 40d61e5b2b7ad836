"""The session's side model: one-shot requests a tool makes for its own use (a fetched
page summarised for `web_fetch`'s prompt, an image described for a text-only model), on
`fastModel` or `visionModel` when set, else the main model. Each request's usage goes
out as a `SideUsage` event, so it counts in the session's usage and cost."""

from __future__ import annotations

from typing import Any, Literal

from qwen_code.config import Provider, Settings
from qwen_code.errors import ModelError
from qwen_code.llm.client import ChatClient
from qwen_code.session.models import model_config
from qwen_code.tools.base import ToolError
from qwen_code.tools.events import PROGRESS, SideUsage


class SessionSideModel:
    def __init__(self, settings: Settings, provider: Provider, main: ChatClient) -> None:
        self.settings, self.provider, self.main = settings, provider, main
        self._clients: dict[str, ChatClient] = {}

    def model_for(self, role: Literal["fast", "vision"]) -> str:
        chosen = self.settings.fast_model if role == "fast" else self.settings.vision_model
        return chosen or self.main.config.model

    def _client(self, model: str) -> ChatClient:
        if model == self.main.config.model:
            return self.main
        if model not in self._clients:
            cache = self.settings.model.generation_config.enable_cache_control
            config = model_config(self.settings, self.provider, model)
            self._clients[model] = ChatClient(config, cache_control=cache)
        return self._clients[model]

    async def complete(
        self, messages: list[dict[str, Any]], *, role: Literal["fast", "vision"] = "fast"
    ) -> str:
        model = self.model_for(role)
        try:
            response = await self._client(model).complete(messages)
        except ModelError as exc:
            raise ToolError(f"The request to {model} failed: {exc}") from exc
        emit = PROGRESS.get()
        if response.usage is not None and emit is not None:
            emit(SideUsage(usage=response.usage, model=model, purpose=role))
        return response.text

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
