"""What the model-client tests share: a config, the collected stream of one request, a
failure's error, and a bare TCP server that answers with given bytes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from qwen_code.errors import ModelError
from qwen_code.llm.client import ChatClient
from qwen_code.llm.types import ModelConfig, ModelResponse, StreamItem

MESSAGES = [{"role": "user", "content": "hi"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file.",
            "parameters": {"type": "object", "properties": {"file_path": {"type": "string"}}},
        },
    }
]


def make_config(base_url: str, **kwargs: Any) -> ModelConfig:
    defaults: dict[str, Any] = {
        "api_key": "test-key",
        "model": "qwen3-coder-plus",
        "api_key_source": "OPENAI_API_KEY",
        "timeout_s": 5.0,
        "backoff_base_s": 0.001,
    }
    return ModelConfig(base_url=base_url, **{**defaults, **kwargs})


async def collect(
    client: ChatClient, messages: list[dict[str, Any]] = MESSAGES, tools: Any = None
) -> list[StreamItem]:
    return [item async for item in client.stream_chat(messages, tools)]


async def run(base_url: str, *, tools: Any = None, **kwargs: Any) -> list[StreamItem]:
    async with ChatClient(make_config(base_url, **kwargs)) as client:
        return await collect(client, tools=tools)


async def failure(base_url: str, **kwargs: Any) -> tuple[ModelError, list[StreamItem]]:
    items: list[StreamItem] = []
    async with ChatClient(make_config(base_url, **kwargs)) as client:
        with pytest.raises(ModelError) as info:
            async for item in client.stream_chat(MESSAGES, None):
                items.append(item)
    return info.value, items


def final(items: list[StreamItem]) -> ModelResponse:
    assert isinstance(items[-1], ModelResponse)
    assert sum(isinstance(i, ModelResponse) for i in items) == 1
    return items[-1]


@contextlib.asynccontextmanager
async def raw_server(responses: list[bytes]) -> AsyncIterator[tuple[str, list[int]]]:
    """Answer the n-th request with responses[n], then close the connection."""
    served: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        await reader.readexactly(length)
        served.append(len(served))
        writer.write(responses[len(served) - 1])
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1", served
    finally:
        server.close()
        await server.wait_closed()
