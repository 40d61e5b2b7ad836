"""A scripted OpenAI-compatible model server over real HTTP, for tests. Stdlib only.

`server.script(text("Hi"), tool_turn(call("read_file", file_path="a.py")))`. Each POST
/v1/chat/completions plays the next entry: a `Turn` (SSE when the request has `stream: true`,
else one JSON completion), an `HTTPError`, or a callable that gets the request body and
returns one of those. An exhausted script answers 400 (so clients do not retry) and counts
in `unscripted`. Every request is recorded in `requests`.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeAlias

NO_TURN_LEFT = "fake LLM: no scripted turn left"


@dataclass
class Call:
    """One tool call in a scripted turn. `arguments` may be a raw string (malformed JSON)."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def arguments_text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, ensure_ascii=False)

    def wire(self, call_id: str, arguments: str | None = None) -> dict[str, Any]:
        """The call as an OpenAI `tool_calls` entry."""
        args = self.arguments_text() if arguments is None else arguments
        fn = {"name": self.name, "arguments": args}
        return {"id": call_id, "type": "function", "function": fn}


@dataclass
class Turn:
    """One scripted assistant response."""

    text: str = ""
    tool_calls: list[Call] = field(default_factory=list)
    finish_reason: str | None = None
    """Defaults to "tool_calls" when there are calls, else "stop"."""
    usage: dict[str, Any] | None = None
    """Overrides prompt_tokens / completion_tokens / total_tokens / cached_tokens."""
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    """Pause between streamed events (default: the whole stream goes out in one write)."""
    chunk_words: int | None = None
    """Words per streamed text chunk (default: the server's)."""


@dataclass
class HTTPError:
    """Answer with this status; a dict body is sent as JSON, a str body as plain text."""

    status: int
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)


Reply: TypeAlias = Turn | HTTPError
ScriptEntry: TypeAlias = Reply | Callable[[dict[str, Any]], Reply]


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


def text(content: str, **kwargs: Any) -> Turn:
    """A plain text turn."""
    return Turn(text=content, **kwargs)


def call(name: str, arguments: dict[str, Any] | str | None = None, /, **kwargs: Any) -> Call:
    """`call("read_file", file_path="a.py")`, or `call("x", '{"bad": ')` for raw argument text."""
    return Call(name=name, arguments=arguments if arguments is not None else kwargs)


def tool_turn(*calls: Call, text: str = "", **kwargs: Any) -> Turn:
    """A turn that calls tools (several calls are parallel calls)."""
    return Turn(text=text, tool_calls=list(calls), **kwargs)


def error_body(message: str, status: int, type_: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": status}}


def split_text(content: str, words: int) -> list[str]:
    """Split text into pieces of `words` words each, keeping all whitespace."""
    tokens = re.findall(r"\s*\S+\s*", content) or ([content] if content else [])
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), max(1, words))]


def split_fragments(raw: str, parts: int = 3) -> list[str]:
    """Split argument text into at least `parts` pieces (fewer only if it is that short)."""
    size = max(1, -(-len(raw) // parts))
    return [raw[i : i + size] for i in range(0, len(raw), size)]


class _Playback:
    """Turns a `Turn` into OpenAI-shaped chunk dicts (or one completion dict).

    Fault modes (dropped connections, stalls, malformed SSE, XML calls in content) hook in
    here or in `_Handler._stream`, which writes what `chunks()` yields.
    """

    def __init__(self, turn: Turn, request: dict[str, Any], chunk_words: int) -> None:
        self.turn, self.request = turn, request
        self.chunk_words = turn.chunk_words or chunk_words
        self.call_ids = [c.id or f"call_{secrets.token_hex(12)}" for c in turn.tool_calls]
        self.include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        self.head = {
            "id": f"chatcmpl-{secrets.token_hex(12)}",
            "created": int(time.time()),
            "model": request.get("model", "fake"),
            "system_fingerprint": None,
        }
        self.finish_reason = turn.finish_reason or ("tool_calls" if turn.tool_calls else "stop")

    def usage(self) -> dict[str, Any]:
        sent = len(json.dumps(self.request.get("messages", [])))
        sent += len(json.dumps(self.request.get("tools", [])))
        out = len(self.turn.text) + sum(len(c.arguments_text()) for c in self.turn.tool_calls)
        over = dict(self.turn.usage or {})
        prompt = over.pop("prompt_tokens", max(1, sent // 4))
        completion = over.pop("completion_tokens", max(1, out // 4))
        details = {"cached_tokens": over.pop("cached_tokens", 0)}
        total = {"total_tokens": prompt + completion, "prompt_tokens_details": details}
        return {"prompt_tokens": prompt, "completion_tokens": completion, **total, **over}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        chunk = {**self.head, "object": "chat.completion.chunk", "choices": [choice]}
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def chunks(self) -> Iterator[dict[str, Any]]:
        yield self._chunk({"role": "assistant", "content": ""})
        for piece in split_text(self.turn.text, self.chunk_words):
            yield self._chunk({"content": piece})
        for i, (c, call_id) in enumerate(zip(self.turn.tool_calls, self.call_ids, strict=True)):
            yield self._chunk({"tool_calls": [{"index": i, **c.wire(call_id, "")}]})
            for frag in split_fragments(c.arguments_text()):
                yield self._chunk({"tool_calls": [{"index": i, "function": {"arguments": frag}}]})
        yield self._chunk({}, self.finish_reason)
        if self.include_usage:
            yield {**self._chunk({}), "choices": [], "usage": self.usage()}

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.turn.text or None}
        if self.turn.tool_calls:
            calls = zip(self.turn.tool_calls, self.call_ids, strict=True)
            message["tool_calls"] = [c.wire(call_id) for c, call_id in calls]
        choice = {"index": 0, "message": message, "finish_reason": self.finish_reason}
        usage = self.usage()
        return {**self.head, "object": "chat.completion", "choices": [choice], "usage": usage}


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
        self.record = fake._record(self, body)
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            if self.command == "POST" and path == "/v1/chat/completions":
                self._chat(body or {})
            elif self.command == "GET" and path == "/v1/models":
                self._json(200, fake._models_body())
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
            playback = _Playback(reply, body, fake.chunk_words)
            if body.get("stream"):
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

    def _stream(self, playback: _Playback) -> None:
        sse = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        self._head(200, {**sse, "Transfer-Encoding": "chunked"})
        events = [f"data: {json.dumps(c, ensure_ascii=False)}\n\n" for c in playback.chunks()]
        frames = [_frame(e.encode()) for e in [*events, "data: [DONE]\n\n"]]
        frames[-1] += b"0\r\n\r\n"  # end of the chunked body
        if playback.turn.chunk_delay_s:  # paced: one write per event
            for frame in frames[:-1]:
                self.wfile.write(frame)
                time.sleep(playback.turn.chunk_delay_s)
            frames = frames[-1:]
        self.record.finished_at = time.monotonic()
        self.wfile.write(b"".join(frames))  # unpaced: one write (no GIL ping-pong per event)

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()


def _frame(data: bytes) -> bytes:
    """One chunk of a chunked transfer-encoded body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


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
        self.errors: list[Exception] = []
        """Exceptions raised by scripted callables (answered 400)."""
        self.connections = 0
        """TCP connections accepted (1 for a client that keeps its connection alive)."""
        self._script: deque[ScriptEntry] = deque(turns)
        self._requests: list[Recorded] = []
        self._cond = threading.Condition()
        self._conns: set[socket.socket] = set()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeLLM:
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
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

    def _record(self, handler: _Handler, body: Any) -> Recorded:
        rec = Recorded(
            path=handler.path,
            method=handler.command,
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body if isinstance(body, dict) else None,
            received_at=time.monotonic(),
        )
        with self._cond:
            self._requests.append(rec)
            self._cond.notify_all()
        return rec

    def _next_reply(self, body: dict[str, Any]) -> Reply | None:
        with self._cond:
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
        entry = {"object": "model", "created": 0, "owned_by": "fake"}
        data = [{"id": m, **entry, "max_model_len": self.max_model_len} for m in self.models]
        return {"object": "list", "data": data}

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._cond:
            (self._conns.add if add else self._conns.discard)(conn)
            self.connections += add
