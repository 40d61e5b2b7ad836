"""MCP servers that live in the program driving qwen-code (`"type": "sdk"`).

The Claude Agent SDK runs a program's own tools as in-process MCP servers
(`create_sdk_mcp_server`) and lists them in `--mcp-config` with `"type": "sdk"`. qwen-code
reaches such a server through the control protocol: every JSON-RPC message goes to the
program as an `mcp_message` control request, and the answer's `mcp_response` comes back as
the server's reply. `PROGRAM` holds the way to send those requests while a
stream-json conversation runs (`ui.stream_input` sets it); without one, an `sdk` server
fails to connect with a message saying why.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

SendRequest = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

PROGRAM: contextvars.ContextVar[SendRequest | None] = contextvars.ContextVar(
    "qwen_code_sdk_program", default=None
)


class NoProgram(ConnectionError):
    """An `sdk` server was configured with no program on the control protocol."""


@asynccontextmanager
async def sdk_transport(name: str) -> AsyncIterator[Any]:
    """The (read, write) streams of an MCP client session whose server is the program's
    `name` server."""
    import anyio
    from mcp import types
    from mcp.shared.message import SessionMessage

    send = PROGRAM.get()
    if send is None:
        raise NoProgram(
            f"{name!r} is an SDK server (type sdk): it needs the program that defines it on "
            "the other end of --input-format stream-json"
        )
    replies_in, replies_out = anyio.create_memory_object_stream[Any](16)
    requests_in, requests_out = anyio.create_memory_object_stream[Any](16)

    async def deliver(message: Any) -> None:
        payload = message.message.model_dump(by_alias=True, mode="json", exclude_unset=True)
        try:
            answer = await send({"subtype": "mcp_message", "server_name": name, "message": payload})
        except Exception as exc:  # the program refused or went away
            if "id" in payload:
                error = {"code": -32603, "message": f"the program did not answer: {exc}"}
                await replies_in.send(
                    SessionMessage(
                        types.jsonrpc_message_adapter.validate_python(
                            {"jsonrpc": "2.0", "id": payload["id"], "error": error}
                        )
                    )
                )
            return
        reply = answer.get("mcp_response")
        if "id" in payload and "method" in payload and isinstance(reply, dict):
            await replies_in.send(
                SessionMessage(types.jsonrpc_message_adapter.validate_python(reply))
            )

    async def pump() -> None:
        async with anyio.create_task_group() as group:
            async for message in requests_out:
                group.start_soon(deliver, message)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(pump)
        try:
            yield replies_out, requests_in
        finally:
            tasks.cancel_scope.cancel()
