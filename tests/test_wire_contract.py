"""The client's HTTP transport against the openai SDK it replaced (a dev dependency now).

The same request through `AsyncOpenAI.post(..., stream=True)` (as the client made it
before) and through `ChatClient` must reach the scripted server as the same bytes with the
same headers, but the SDK's own `X-Stainless-*`; the same raw streams and error answers
must come out as the same chunks, errors and error bodies.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from qwen_code.llm.client import (
    CONNECT_TIMEOUT_S,
    LIST_MODELS_TIMEOUT_S,
    ChatClient,
    build_headers,
    build_request,
)
from qwen_code.llm.http import HttpTransport
from qwen_code.llm.transport_errors import (
    ConnectionFailed,
    RequestTimeout,
    StatusError,
    StreamError,
)
from qwen_code.llm.types import ModelConfig
from tests.fakeserver import FakeLLM, Recorded, text
from tests.llm_helpers import TOOLS, raw_server
from tests.sse import chunk, sse_response

openai = pytest.importorskip("openai")

MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a coding agent. Ünïcödé, 中文, emoji 😀, </script>"},
    {"role": "user", "content": 'Line 1\nLine 2\t"quoted" \\ back\u2028slash'},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "read_file", "arguments": '{"file_path": "a.py"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "x = 1.5e-07\n"},
]


def config(base_url: str) -> ModelConfig:
    return ModelConfig(
        base_url=base_url,
        api_key="test-key",
        model="qwen3-coder-plus",
        sampling={"temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05},
        max_tokens=4096,
        extra_body={"enable_thinking": False},
        headers={"X-Trace": "t1"},
        timeout_s=5.0,
    )


def sdk(cfg: ModelConfig, base_url: str | None = None) -> Any:
    """The client as `ChatClient` created it before."""
    timeout = cfg.timeout_s
    return openai.AsyncOpenAI(
        base_url=base_url or cfg.base_url,
        api_key=cfg.api_key or "EMPTY",
        timeout=openai.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_S)),
        max_retries=0,
        default_headers=build_headers(cfg),
    )


async def sdk_stream(client: Any, body: dict[str, Any]) -> Any:
    return await client.post(
        "/chat/completions",
        cast_to=object,
        body=body,
        stream=True,
        stream_cls=openai.AsyncStream[object],
    )


def ours(cfg: ModelConfig) -> HttpTransport:
    return HttpTransport(
        cfg.base_url,
        api_key=cfg.api_key or "EMPTY",
        headers=build_headers(cfg),
        timeout_s=cfg.timeout_s,
        connect_timeout_s=CONNECT_TIMEOUT_S,
    )


def sent_headers(recorded: Recorded) -> dict[str, str]:
    return {k: v for k, v in recorded.headers.items() if not k.startswith("x-stainless-")}


async def test_chat_request_is_byte_identical(fake_llm: FakeLLM) -> None:
    fake_llm.script(text("ok"), text("ok"))
    cfg = config(fake_llm.base_url)
    client = sdk(cfg)
    try:
        stream = await sdk_stream(client, build_request(cfg, MESSAGES, TOOLS))
        assert [c async for c in stream]
    finally:
        await client.close()
    async with ChatClient(cfg) as chat:
        await chat.complete(MESSAGES, TOOLS)
    theirs, mine = fake_llm.chat_requests
    assert mine.raw == theirs.raw
    assert b"\\u" not in mine.raw  # UTF-8, not \u escapes
    assert mine.path == theirs.path == "/v1/chat/completions"
    assert sent_headers(mine) == sent_headers(theirs)
    assert not [k for k in mine.headers if k.startswith("x-stainless-")]
    assert any(k.startswith("x-stainless-") for k in theirs.headers)


@pytest.mark.parametrize("slash", ["", "/"])
async def test_models_request_is_the_same(fake_llm: FakeLLM, slash: str) -> None:
    cfg = config(fake_llm.base_url + slash)
    client = sdk(cfg)
    try:
        page = await client.get("/models", cast_to=object, options={"timeout": 15.0})
    finally:
        await client.close()
    transport = ours(cfg)
    try:
        assert await transport.get_json("/models", LIST_MODELS_TIMEOUT_S) == page
    finally:
        await transport.aclose()
    theirs, mine = fake_llm.requests
    assert mine.path == theirs.path == "/v1/models"
    assert (mine.method, mine.raw) == ("GET", b"")
    assert sent_headers(mine) == sent_headers(theirs)


def outcome(exc: BaseException) -> tuple[Any, ...]:
    """An exception from either side, as what the classification reads of it."""
    if isinstance(exc, openai.APITimeoutError | RequestTimeout):
        return ("timeout",)
    if isinstance(exc, openai.APIConnectionError | ConnectionFailed):
        return ("connection",)
    if isinstance(exc, openai.APIStatusError):
        headers, text = exc.response.headers, exc.response.text
        return ("status", exc.status_code, exc.body, text, headers.get("retry-after"))
    if isinstance(exc, StatusError):
        return ("status", exc.status, exc.body, exc.text, exc.headers.get("retry-after"))
    if isinstance(exc, openai.APIError | StreamError):
        return ("stream_error", exc.message, exc.body)
    if isinstance(exc, ValueError):
        return ("value", type(exc).__name__, str(exc))
    raise exc


async def read(open_stream: Any) -> tuple[list[Any], tuple[Any, ...] | None]:
    """The chunks a stream yields, and how it ended (None: normally)."""
    chunks: list[Any] = []
    stream = None
    try:
        stream = await open_stream
        async for item in stream:
            chunks.append(item)
    except Exception as exc:
        return chunks, outcome(exc)
    finally:
        if stream is not None:
            await stream.close()
    return chunks, None


def raw_response(body: bytes, status: str = "200 OK", **headers: str) -> bytes:
    head = {"Content-Type": "text/event-stream", **headers, "Content-Length": str(len(body))}
    lines = "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in head.items())
    return f"HTTP/1.1 {status}\r\n{lines}Connection: close\r\n\r\n".encode() + body


STREAMS: dict[str, bytes] = {
    "plain": sse_response(chunk({"content": "a"}), chunk({}, "stop")),
    "no_done": raw_response(b'data: {"a":1}\n\n'),
    "crlf": raw_response(b'data: {"a":1}\r\n\r\ndata: {"b":2}\r\n\r\ndata: [DONE]\r\n\r\n'),
    "cr": raw_response(b'data: {"a":1}\r\rdata: [DONE]\r\r'),
    "multi_line_data": raw_response(b'data: {"a":\ndata: 1}\n\ndata: [DONE]\n\n'),
    "fields": raw_response(
        b': ping\n\nevent: message\nid: 7\nretry: 100\ndata: {"a":1}\n\ndata: [DONE]\n\n'
    ),
    "id_then_blank": raw_response(b'data: {"a":1}\nid: 1\n\n\n'),
    "no_space": raw_response(b'data:{"a":1}\n\ndata:[DONE]\n\n'),
    "null": raw_response(b"data: null\n\ndata: [DONE]\n\n"),
    "thread_event": raw_response(b'event: thread.run\ndata: {"a":1}\n\n'),
    "unterminated": raw_response(b'data: {"a":1}\n\ndata: {"b":2}'),
    "done_suffix": raw_response(b'data: {"a":1}\n\ndata: [DONE] and more\n\ndata: {"b":2}\n\n'),
    "error": raw_response(b'data: {"error": {"message": "Overloaded", "type": "x"}}\n\n'),
    "error_no_message": raw_response(b'data: {"error": {"code": 500}}\n\n'),
    "error_text": raw_response(b'data: {"error": "boom"}\n\n'),
    "error_falsy": raw_response(b'data: {"error": null, "a": 1}\n\ndata: [DONE]\n\n'),
    "malformed": raw_response(b"data: {not json\n\n"),
    "bad_utf8": raw_response(b'data: {"a": "\xff"}\n\n'),
    "json_not_sse": raw_response(b'{"choices": []}', Content_Type="application/json"),
    "dropped": sse_response(chunk({"content": "a"}), complete=False),
    "status_json": raw_response(
        json.dumps({"error": {"message": "slow down", "code": "x"}}).encode(),
        "429 Too Many Requests",
        Content_Type="application/json",
        Retry_After="3",
    ),
    "status_text": raw_response(b"  <html>Bad Gateway</html>\n", "502 Bad Gateway"),
    "status_empty": raw_response(b"", "500 Internal Server Error"),
    "status_json_string": raw_response(b'"just text"', "400 Bad Request"),
    "status_message_outside": raw_response(
        b'{"error": {"code": "x"}, "message": "m"}', "400 Bad Request"
    ),
    "status_error_null": raw_response(b'{"error": null, "detail": "d"}', "404 Not Found"),
    "status_detail": raw_response(b'{"detail": "Not Found"}', "404 Not Found"),
    "status_redirect": raw_response(b"", "304 Not Modified"),
}


@pytest.mark.parametrize("name", list(STREAMS))
async def test_streams_read_the_same(name: str) -> None:
    async with raw_server([STREAMS[name]] * 2) as (url, served):
        cfg = config(url)
        body = build_request(cfg, MESSAGES[:2], None)
        client, transport = sdk(cfg), ours(cfg)
        try:
            theirs = await read(sdk_stream(client, body))
            mine = await read(transport.stream("/chat/completions", body))
        finally:
            await client.close()
            await transport.aclose()
    assert len(served) == 2
    assert mine == theirs
