"""`Client`: a conversation with the agent, in this process, one prompt after another.

    async with Client(Options(cwd="my-project")) as client:
        await client.query("what does main.py do?")
        async for message in client.receive_response():
            print(message)

`query` sends a prompt (prompts sent while one runs wait their turn); the messages of
every turn arrive in order, each turn ending with a `ResultMessage`. Closing the client
(leaving the `async with`, `disconnect`) stops what runs and closes the session, also
when the caller is cancelled or fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from qwen_code.sdk.errors import SdkError
from qwen_code.sdk.messages import Message, ResultMessage, parse_message
from qwen_code.sdk.options import Options

if TYPE_CHECKING:
    from qwen_code.sdk.runtime import Runtime
    from qwen_code.session.checkpoints import Checkpoint

_CLOSED = object()


class Client:
    """A session with the qwen-code agent; see the module docstring."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self._runtime: Runtime | None = None
        self._worker: asyncio.Task[None] | None = None
        self._prompts: asyncio.Queue[str] = asyncio.Queue()
        self._messages: asyncio.Queue[Any] = asyncio.Queue()
        self._pending = 0
        """Prompts sent whose turn has not ended yet."""

    # --- connecting ------------------------------------------------------------------------

    async def connect(self, prompt: str | None = None) -> None:
        """Open the session (SdkError when the options cannot be used); with `prompt`,
        send it."""
        from qwen_code.sdk.runtime import open_runtime

        if self._runtime is not None:
            raise SdkError("connect: the client is already connected.")
        self._runtime = await open_runtime(self.options)
        self._worker = asyncio.create_task(self._work(self._runtime), name="qwen-code turns")
        if prompt is not None:
            await self.query(prompt)

    async def disconnect(self) -> None:
        """Stop the running turn, if any, and close the session."""
        worker, runtime = self._worker, self._runtime
        self._worker = self._runtime = None
        try:
            if worker is not None:
                worker.cancel()
                await asyncio.wait({worker})
        finally:
            if runtime is not None:
                await runtime.aclose()
            self._messages.put_nowait(_CLOSED)

    close = disconnect

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    # --- talking ---------------------------------------------------------------------------

    async def query(self, prompt: str) -> None:
        """Send a prompt; its messages come from `receive_response`."""
        self._connected("query")
        if not isinstance(prompt, str) or not prompt.strip():
            raise SdkError("query: the prompt is empty.")
        self._pending += 1
        self._prompts.put_nowait(prompt)

    async def receive_messages(self) -> AsyncIterator[Message]:
        """Every message, turn after turn, until the client is closed."""
        self._connected("receive_messages")
        while True:
            item = await self._messages.get()
            if item is _CLOSED:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def receive_response(self) -> AsyncIterator[Message]:
        """The messages of the next turn, its `ResultMessage` last."""
        self._connected("receive_response")
        if self._pending == 0 and self._messages.empty():
            raise SdkError("receive_response: no prompt is waiting; send one with query().")
        async for message in self.receive_messages():
            yield message
            if isinstance(message, ResultMessage):
                return

    async def interrupt(self) -> None:
        """Stop the running turn (its result has subtype "error_interrupted"); the
        conversation keeps what was said so far."""
        runtime = self._connected("interrupt")
        if self._pending:
            runtime.interrupt()

    # --- the session -----------------------------------------------------------------------

    @property
    def session_id(self) -> str | None:
        """The session's id (for `Options(resume=...)`); None before `connect`."""
        return self._runtime.session.id if self._runtime is not None else None

    async def set_model(self, model: str | None = None) -> None:
        """Use `model` from the next request on; None: the model the session began with."""
        self._connected("set_model").set_model(model)

    async def set_permission_mode(self, mode: str) -> None:
        """plan, default, auto-edit, yolo (or acceptEdits, bypassPermissions), from the
        next tool call on."""
        self._connected("set_permission_mode").set_permission_mode(mode)

    async def get_context_usage(self) -> dict[str, Any]:
        """`totalTokens` the next request would take, `maxTokens` of the model's window
        (None when unknown), `percentage`, `model`."""
        return self._connected("get_context_usage").context_usage()

    async def list_checkpoints(self) -> list[Checkpoint]:
        """This session's checkpoints, newest first: one before the first change of each
        prompt that changed files (`id`, `prompt`, `turn`, `changed`)."""
        return await self._connected("list_checkpoints").checkpoints()

    async def rewind_files(self, checkpoint_id: str) -> list[str]:
        """Put the files back as they were at a checkpoint (files created since are
        removed); returns the files put back or removed. The conversation is unchanged."""
        return await self._connected("rewind_files").rewind_files(checkpoint_id)

    # --- inside ----------------------------------------------------------------------------

    def _connected(self, what: str) -> Runtime:
        if self._runtime is None:
            raise SdkError(f"{what}: the client is not connected; use `async with Client(...)`.")
        return self._runtime

    async def _work(self, runtime: Runtime) -> None:
        """Run the prompts one after another; a failure reaches the receiver."""
        while True:
            prompt = await self._prompts.get()
            try:
                await runtime.run_turn(prompt, self._put)
            except Exception as exc:
                self._messages.put_nowait(exc)
            finally:
                self._pending -= 1

    def _put(self, data: dict[str, Any]) -> None:
        self._messages.put_nowait(parse_message(data))
