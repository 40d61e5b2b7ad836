"""`query`: one prompt, its messages until the result, then the session closes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from qwen_code.sdk.client import Client
from qwen_code.sdk.messages import Message
from qwen_code.sdk.options import Options


async def query(prompt: str, *, options: Options | None = None) -> AsyncIterator[Message]:
    """Run `prompt` in a new session and yield its messages: `SystemMessage` "init",
    `AssistantMessage`s and `UserMessage`s (tool results) as they happen, and the
    `ResultMessage` last. The session is closed when the iteration ends or stops early
    (close the iterator, e.g. with `contextlib.aclosing`, to have that happen at once)."""
    async with Client(options) as client:
        await client.query(prompt)
        async for message in client.receive_response():
            yield message
