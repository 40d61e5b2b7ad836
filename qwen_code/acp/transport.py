"""The wire under ACP: newline-delimited JSON-RPC on the process's stdin and stdout.

The protocol gets private copies of file descriptors 0 and 1; fd 0 then reads /dev/null
and fd 1 writes to stderr, so no command the agent runs and no stray `print` can read a
message meant for the agent or write into the editor's stream.

`LineTransport` is the `acp` package's message transport with one difference: a line
that is not JSON, or not a JSON-RPC message, is answered with the JSON-RPC error for it
(-32700 / -32600) instead of a logged traceback and silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import IO, Any

STREAM_LIMIT = 50 * 1024 * 1024
"""Longest message read in one piece (images travel base64-encoded inside prompts)."""

PARSE_ERROR = -32700
INVALID_REQUEST = -32600


def claim_stdio(stdin: IO[Any], stdout: IO[Any], stderr: IO[Any]) -> tuple[int, int]:
    """Private copies of the stdin and stdout descriptors for the protocol; the originals
    are pointed at /dev/null and stderr. Raises OSError (or ValueError for a stream
    without a descriptor)."""
    in_fd, out_fd = os.dup(stdin.fileno()), os.dup(stdout.fileno())
    stdout.flush()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, stdin.fileno())
    finally:
        os.close(null)
    os.dup2(stderr.fileno(), stdout.fileno())
    return in_fd, out_fd


async def open_streams(
    in_fd: int, out_fd: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio streams over the two descriptors (pipes, sockets or a terminal)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=STREAM_LIMIT)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(in_fd, "rb", buffering=0)
    )
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(out_fd, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, writer


class LineTransport:
    """One JSON-RPC message per line each way (the `acp.Transport` protocol)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()
        self._closed = False

    async def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode("utf-8")
        async with self._lock:
            if self._closed:
                raise ConnectionError("the connection is closed")
            self._writer.write(data)
            await self._writer.drain()

    async def receive(self) -> dict[str, Any] | None:
        """The next message; None at the end of input. Lines that are not messages are
        answered with an error and skipped."""
        while True:
            line = await self._read_line()
            if not line:
                return None
            if not line.strip():
                continue
            message, problem = parse_message(line)
            if message is not None:
                return message
            if problem is not None:
                with contextlib.suppress(ConnectionError, OSError):
                    await self.send(problem)

    async def close(self) -> None:
        """Stop writing (every message sent was drained already)."""
        async with self._lock:
            if not self._closed:
                self._closed = True
                self._writer.close()

    async def _read_line(self) -> bytes:
        """A whole line however long (a line over the stream limit is read in pieces)."""
        chunks: list[bytes] = []
        while True:
            try:
                chunks.append(await self._reader.readuntil(b"\n"))
                return b"".join(chunks)
            except asyncio.LimitOverrunError as exc:
                chunks.append(await self._reader.readexactly(exc.consumed))
            except asyncio.IncompleteReadError as exc:
                chunks.append(exc.partial)
                return b"".join(chunks)


def parse_message(line: bytes) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the message, None), or (None, the error response to send; None when the line
    was a broken notification or response, which get no answer)."""
    try:
        message = json.loads(line)
    except ValueError:
        return None, _error(None, PARSE_ERROR, "Parse error: the line is not JSON")
    if not isinstance(message, dict):
        return None, _error(None, INVALID_REQUEST, "Invalid request: not a JSON object")
    method = message.get("method")
    if isinstance(method, str):
        return message, None
    if method is None and ("result" in message or "error" in message):
        # a response to one of the agent's requests (whose ids are numbers)
        return (message, None) if _valid_id(message.get("id")) else (None, None)
    if "id" not in message:
        return None, None
    return None, _error(message.get("id"), INVALID_REQUEST, "Invalid request: no method")


def _valid_id(request_id: Any) -> bool:
    return isinstance(request_id, str | int) and not isinstance(request_id, bool)


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    if not _valid_id(request_id):
        request_id = None
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
