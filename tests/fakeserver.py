"""A scripted OpenAI-compatible model server over real HTTP, for tests. Stdlib only.

`server.script(text("Hi"), tool_turn(call("read_file", file_path="a.py")))`. Each POST
/v1/chat/completions plays the next entry: a `Turn` (SSE when the request has `stream: true`,
else one JSON completion), an `HTTPError`, or a callable that gets the request body and
returns one of those. An exhausted script answers 400 (so clients do not retry) and counts
in `unscripted`. Every request is recorded in `requests`.

Fault modes are fields of `Turn` (dropped connection, stall, malformed SSE line, calls as
Qwen XML text, a reply cut off at the token limit, a reply that never ends); `aux` answers
tool-less requests (summaries) without using the script; `strict_history` answers 400 to a
history a real server would reject (helpers in `tests/fakefaults.py`).
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakefaults import history_problem
from tests.fakescript import (
    Call,
    HTTPError,
    Playback,
    Reply,
    ScriptEntry,
    Turn,
    call,
    error_body,
    split_fragments,
    split_text,
    text,
    tool_turn,
)
from tests.sse import LAST_FRAME, event, frame

__all__ = [
    "NO_TURN_LEFT",
    "Call",
    "FakeLLM",
    "HTTPError",
    "Recorded",
    "Reply",
    "ScriptEntry",
    "Turn",
    "call",
    "error_body",
    "split_fragments",
    "split_text",
    "text",
    "tool_turn",
]

NO_TURN_LEFT = "fake LLM: no scripted turn left"


@dataclass
class Recorded:
    """One request as the server saw it (header names lower-cased). `received_at`: monotonic
    time when it was read; `finished_at`: just before the response's last bytes were written."""

    path: str
    method: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    received_at: float
    finished_at: float | None = None
    raw: bytes = b""
    """The body's bytes as received."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: Any  # the ThreadingHTTPServer, with `.fake` set to the FakeLLM

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        self.server.fake._track(self.connection, add=False)
        super().finish()

    def _dispatch(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.record = fake._record(self, body, raw)
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            if self.command == "POST" and path == "/v1/chat/completions":
                self._chat(body or {})
            elif self.command == "POST" and (path, fake.tokenizer) in _TOKENIZER_ROUTES:
                self._json(200, _TOKENIZER_ROUTES[path, fake.tokenizer](body or {}))
            elif self.command == "GET" and path == "/v1/models":
                fake._stopping.wait(fake.models_delay_s)
                self._json(200, fake._models_body())
            elif self.command == "GET" and path == "/props" and fake.props is not None:
                self._json(200, fake.props)
            else:
                self._json(404, error_body(f"fake LLM: no route {self.command} {path}", 404))
        except OSError:  # the client went away (or stop() shut the socket)
            self.close_connection = True

    do_GET = do_POST = _dispatch

    def _chat(self, body: dict[str, Any]) -> None:
        fake = self.server.fake
        reply = fake._next_reply(body)
        if reply is None:
            self._json(400, error_body(NO_TURN_LEFT, 400))
        elif isinstance(reply, HTTPError):
            default = error_body(f"fake error {reply.status}", reply.status)
            self._json(reply.status, default if reply.body is None else reply.body, reply.headers)
        else:
            if reply.delay_s:
                time.sleep(reply.delay_s)
            playback = Playback(reply, body, fake.chunk_words)
            if body.get("stream") and reply.forever:
                self._stream_forever(playback)
            elif body.get("stream"):
                self._stream(playback)
            else:
                self._json(200, playback.completion())

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """Send `body` as JSON, or as plain text when it is a str."""
        plain, headers = isinstance(body, str), headers or {}
        data = body.encode() if plain else json.dumps(body).encode()
        ctype = "text/plain; charset=utf-8" if plain else "application/json"
        self._head(status, {"Content-Type": ctype, "Content-Length": f"{len(data)}", **headers})
        self.record.finished_at = time.monotonic()
        self.wfile.write(data)

    def _stream(self, playback: Playback) -> None:
        sse = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        self._head(200, {**sse, "Transfer-Encoding": "chunked"})
        frames = [frame(event(c)) for c in [*playback.chunks(), "[DONE]"]]
        frames[-1] += LAST_FRAME
        frames = self._faults(playback.turn, frames)
        if playback.turn.chunk_delay_s:  # paced: one write per event
            for one in frames[:-1]:
                self.wfile.write(one)
                time.sleep(playback.turn.chunk_delay_s)
            frames = frames[-1:]
        self.record.finished_at = time.monotonic()
        if not frames:
            return
        self.wfile.write(b"".join(frames))  # unpaced: one write (no GIL ping-pong per event)

    def _stream_forever(self, playback: Playback) -> None:
        """Stream until the client closes the connection (the write fails) or stop()."""
        sse = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        self._head(200, {**sse, "Transfer-Encoding": "chunked"})
        self.close_connection = True
        batch: list[bytes] = []
        for chunk in playback.endless():
            batch.append(frame(event(chunk)))
            if len(batch) >= 64:  # fewer writes; each still a few KB at most
                self.wfile.write(b"".join(batch))
                batch.clear()
                if playback.turn.chunk_delay_s:
                    time.sleep(playback.turn.chunk_delay_s)
                if self.server.fake._stopping.is_set():
                    return

    def _faults(self, turn: Turn, frames: list[bytes]) -> list[bytes]:
        """Play a turn's stream faults; returns the frames still to send ([] when cut)."""
        if turn.malformed_after is not None:
            line = frame(f"{turn.malformed_line}\n\n".encode())
            frames.insert(min(turn.malformed_after, len(frames) - 1), line)
        cut = turn.drop_after if turn.drop_after is not None else turn.stall_after
        if cut is None:
            return frames
        cut = min(cut, len(frames) - 1)
        self.wfile.write(b"".join(frames[:cut]))
        self.wfile.flush()
        if turn.drop_after is not None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return []
        time.sleep(turn.stall_s)
        return frames[cut:]

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()


def _template(body: dict[str, Any]) -> dict[str, Any]:
    parts = [f"<|im_start|>{m['role']} {m.get('content') or ''}" for m in body["messages"]]
    return {"prompt": " ".join(parts) + " <|im_start|>assistant"}


_TOKENIZER_ROUTES: dict[tuple[str, str | None], Any] = {
    ("/tokenize", "vllm"): lambda body: {
        "count": 4000 + len(body["messages"]),
        "max_model_len": 262144,
        "tokens": [],
    },
    ("/apply-template", "llama.cpp"): _template,
    ("/tokenize", "llama.cpp"): lambda body: {
        "tokens": list(range(len(str(body.get("content", "")).split())))
    },
}
"""The token-counting endpoints of vLLM and llama.cpp's server (`FakeLLM.tokenizer`)."""


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (reset, broken pipe) is no error worth printing."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class FakeLLM:
    """A scripted OpenAI-compatible server on 127.0.0.1 (a free port)."""

    def __init__(
        self,
        *turns: ScriptEntry,
        models: list[str] | None = None,
        max_model_len: int = 262144,
        chunk_words: int = 3,
    ) -> None:
        self.models = list(models or ["qwen3-coder-plus"])
        self.max_model_len = max_model_len
        self.chunk_words = chunk_words
        self.unscripted = 0
        """Chat requests that found the script exhausted (answered 400)."""
        self.aux: ScriptEntry | None = None
        """When set, answers requests without tools (summaries) instead of the script."""
        self.strict_history = False
        """When set, a history a real server rejects is answered 400 (see `violations`)."""
        self.violations: list[str] = []
        self.errors: list[Exception] = []
        """Exceptions raised by scripted callables (answered 400)."""
        self.connections = 0
        """TCP connections accepted (1 for a client that keeps its connection alive)."""
        self.models_delay_s = 0.0
        """Seconds GET /v1/models waits before it answers (cut short by stop())."""
        self.tokenizer: str | None = None
        """"vllm": serve vLLM's POST /tokenize (chat messages; count = 4000 + messages);
        "llama.cpp": serve POST /apply-template and /tokenize (one token per word)."""
        self.props: dict[str, Any] | None = None
        """When set, GET /props (at the root, as llama.cpp's server) answers it; else 404."""
        self.owned_by = "fake"
        """The `owned_by` of the /v1/models entries ("vllm", "sglang", "llamacpp")."""
        self._stopping = threading.Event()
        self._script: deque[ScriptEntry] = deque(turns)
        self._requests: list[Recorded] = []
        self._cond = threading.Condition()
        self._conns: set[socket.socket] = set()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeLLM:
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(("127.0.0.1", 0), _Handler)
            self._server.daemon_threads = True
            self._server.fake = self
            poll = {"poll_interval": 0.02}  # so that stop() returns quickly
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs=poll)
            self._thread.daemon = True
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._cond:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "FakeLLM is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, *turns: ScriptEntry) -> FakeLLM:
        """Append turns to play back, in order."""
        with self._cond:
            self._script.extend(turns)
        return self

    @property
    def remaining(self) -> int:
        """Scripted entries not played yet."""
        with self._cond:
            return len(self._script)

    @property
    def requests(self) -> list[Recorded]:
        with self._cond:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[Recorded]:
        """Block until at least `n` requests were received; raise TimeoutError otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._requests) >= n, timeout):
                raise TimeoutError(f"FakeLLM got {len(self._requests)} requests, expected {n}")
            return list(self._requests)

    def wait_for_chat_requests(self, n: int, timeout: float = 5.0) -> list[Recorded]:
        """As `wait_for_requests`, counting only chat requests (not a client's GET /props
        or /v1/models at start-up)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.chat_requests) >= n, timeout):
                got = len(self.chat_requests)
                raise TimeoutError(f"FakeLLM got {got} chat requests, expected {n}")
            return self.chat_requests

    def wait_for_open_connections(self, n: int, timeout: float = 5.0) -> bool:
        """Block until exactly `n` connections are open; False if that never happened."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._conns) == n, timeout)

    def _record(self, handler: _Handler, body: Any, raw: bytes) -> Recorded:
        rec = Recorded(
            path=handler.path,
            method=handler.command,
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body if isinstance(body, dict) else None,
            received_at=time.monotonic(),
            raw=raw,
        )
        with self._cond:
            self._requests.append(rec)
            self._cond.notify_all()
        return rec

    def _next_reply(self, body: dict[str, Any]) -> Reply | None:
        problem = history_problem(body.get("messages")) if self.strict_history else None
        if problem is not None:
            self.violations.append(problem)
            return HTTPError(400, error_body(f"fake LLM: invalid history: {problem}", 400))
        with self._cond:
            entry = self.aux if self.aux is not None and not body.get("tools") else None
            if entry is None:
                entry = self._script.popleft() if self._script else None
            if entry is None:
                self.unscripted += 1
        if entry is None or isinstance(entry, Turn | HTTPError):
            return entry
        try:
            reply = entry(body)
            if not isinstance(reply, Turn | HTTPError):
                raise TypeError(f"a scripted callable returned {reply!r}, not a Turn or HTTPError")
        except Exception as exc:
            self.errors.append(exc)
            return HTTPError(400, error_body(f"fake LLM: scripted callable raised {exc!r}", 400))
        return reply

    def _models_body(self) -> dict[str, Any]:
        entry = {"object": "model", "created": 0, "owned_by": self.owned_by}
        data = [{"id": m, **entry, "max_model_len": self.max_model_len} for m in self.models]
        return {"object": "list", "data": data}

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._cond:
            (self._conns.add if add else self._conns.discard)(conn)
            self.connections += add
            self._cond.notify_all()
