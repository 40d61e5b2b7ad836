"""The one helper that drains a reply's stream (the compressor and `ChatClient.complete`
want the whole reply, not its chunks)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from qwen_code.llm.retry import make_error
from qwen_code.llm.types import ModelResponse, StreamItem


async def final_response(stream: AsyncIterator[StreamItem]) -> ModelResponse:
    """Drain a reply's stream and return its ModelResponse (text chunks and retry notices
    are dropped). A stream that ends without one is a server error."""
    response: ModelResponse | None = None
    async for item in stream:
        if isinstance(item, ModelResponse):
            response = item
    if response is None:
        raise make_error("server", "The model stream ended without a response.")
    return response
