"""The scripted model server itself, checked with a plain stdlib HTTP client (no openai)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fakeserver import (
    NO_TURN_LEFT,
    FakeLLM,
    HTTPError,
    Turn,
    call,
    split_fragments,
    split_text,
    text,
    tool_turn,
)
from tests.sse import parse_events


def _conn(server: FakeLLM) -> http.client.HTTPConnection:
    url = urlsplit(server.base_url)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=5)


def _post(
    conn: http.client.HTTPConnection, body: dict[str, Any]
) -> tuple[http.client.HTTPResponse, bytes]:
    conn.request(
        "POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"}
    )
    response = conn.getresponse()
    return response, response.read()


def _chat(stream: bool = True, usage: bool = True, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "qwen3-coder-plus",
        "messages": [{"role": "user", "content": "hi"}],
    }
    if stream:
        body["stream"] = True
        if usage:
            body["stream_options"] = {"include_usage": True}
    return {**body, **extra}


def test_streams_text_as_openai_shaped_sse(fake_llm: FakeLLM) -> None:
    fake_llm.script(text("one two three four five six seven"))
    response, raw = _post(_conn(fake_llm), _chat())
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/event-stream")
    assert response.getheader("Transfer-Encoding") == "chunked"
    events = parse_events(raw)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks[1:-2]]
    assert pieces == ["one two three ", "four five six ", "seven"]
    assert chunks[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    usage = chunks[-1]
    assert usage["choices"] == []
    assert set(usage["usage"]) == {
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "prompt_tokens_details",
    }
    assert all(c["usage"] is None for c in chunks[:-1])


def test_raw_bytes_use_chunked_framing(fake_llm: FakeLLM) -> None:
    fake_llm.script(text("hello"))
    url = urlsplit(fake_llm.base_url)
    body = json.dumps(_chat()).encode()
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        data = b""
        while not data.endswith(b"0\r\n\r\n"):
            data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Content-Length" not in head
    size_line, _, after = rest.partition(b"\r\n")
    size = int(size_line, 16)
    assert after[:size].startswith(b"data: {")
    assert after[size : size + 2] == b"\r\n"
    assert rest.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")


def test_parallel_tool_calls_stream_as_fragments(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        tool_turn(
            call("read_file", file_path="src/app.py", offset=10),
            call("run_shell_command", command="pytest -q", description="run the tests"),
            text="Let me look.",
        )
    )
    _, raw = _post(_conn(fake_llm), _chat())
    chunks = parse_events(raw)[:-1]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    text_ = "".join(d.get("content") or "" for d in deltas)
    assert text_ == "Let me look."
    call_deltas = [tc for d in deltas for tc in d.get("tool_calls", [])]
    for index, name in enumerate(["read_file", "run_shell_command"]):
        mine = [tc for tc in call_deltas if tc["index"] == index]
        head, *fragments = mine
        assert head["id"].startswith("call_")
        assert head["type"] == "function"
        assert head["function"] == {"name": name, "arguments": ""}
        assert len(fragments) >= 3
        assert all(set(f) == {"index", "function"} for f in fragments)
        assert all(set(f["function"]) == {"arguments"} for f in fragments)
    args = [
        json.loads("".join(tc["function"]["arguments"] for tc in call_deltas if tc["index"] == i))
        for i in (0, 1)
    ]
    assert args == [
        {"file_path": "src/app.py", "offset": 10},
        {"command": "pytest -q", "description": "run the tests"},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_usage_chunk_only_when_asked_and_overridable(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        text("a"),
        Turn(
            text="b", usage={"prompt_tokens": 1200, "completion_tokens": 7, "cached_tokens": 1024}
        ),
    )
    conn = _conn(fake_llm)
    _, raw = _post(conn, _chat(usage=False))
    chunks = parse_events(raw)[:-1]
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    _, raw = _post(conn, _chat())
    assert parse_events(raw)[-2]["usage"] == {
        "prompt_tokens": 1200,
        "completion_tokens": 7,
        "total_tokens": 1207,
        "prompt_tokens_details": {"cached_tokens": 1024},
    }


def test_finish_reason_and_raw_arguments_are_played_as_given(fake_llm: FakeLLM) -> None:
    fake_llm.script(tool_turn(call("edit", '{"path": "a.py", '), finish_reason="length"))
    _, raw = _post(_conn(fake_llm), _chat())
    chunks = parse_events(raw)[:-1]
    fragments = [
        tc["function"]["arguments"]
        for c in chunks
        if c["choices"]
        for tc in c["choices"][0]["delta"].get("tool_calls", [])
    ]
    assert "".join(fragments) == '{"path": "a.py", '
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"


def test_non_streaming_request_gets_a_completion(fake_llm: FakeLLM) -> None:
    fake_llm.script(tool_turn(call("ls", path="."), text="Listing."))
    response, raw = _post(_conn(fake_llm), _chat(stream=False))
    assert response.getheader("Content-Type") == "application/json"
    assert int(response.getheader("Content-Length")) == len(raw)
    body = json.loads(raw)
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Listing."
    (tc,) = choice["message"]["tool_calls"]
    assert tc["type"] == "function"
    assert tc["function"] == {"name": "ls", "arguments": '{"path": "."}'}
    assert body["usage"]["total_tokens"] > 0


def test_exhausted_script_answers_400_and_counts(fake_llm: FakeLLM) -> None:
    conn = _conn(fake_llm)
    for expected in (1, 2):
        response, raw = _post(conn, _chat())
        assert response.status == 400
        assert json.loads(raw)["error"]["message"] == NO_TURN_LEFT
        assert fake_llm.unscripted == expected


def test_http_errors_carry_status_headers_and_body(fake_llm: FakeLLM) -> None:
    not_found = {"error": {"message": "The model `x` does not exist", "code": 404}}
    fake_llm.script(
        HTTPError(429, headers={"Retry-After": "0"}),
        HTTPError(404, not_found),
        HTTPError(502, "<html>Bad Gateway</html>"),
    )
    conn = _conn(fake_llm)
    response, raw = _post(conn, _chat())
    assert (response.status, response.getheader("Retry-After")) == (429, "0")
    assert "error" in json.loads(raw)
    response, raw = _post(conn, _chat())
    assert (response.status, json.loads(raw)) == (404, not_found)
    response, raw = _post(conn, _chat())
    assert response.status == 502
    assert response.getheader("Content-Type").startswith("text/plain")
    assert raw == b"<html>Bad Gateway</html>"
    assert fake_llm.remaining == 0


def test_callable_turns_see_the_request(fake_llm: FakeLLM) -> None:
    seen: list[dict[str, Any]] = []

    def echo(body: dict[str, Any]) -> Turn:
        seen.append(body)
        return text(f"you said {body['messages'][-1]['content']}")

    fake_llm.script(echo, lambda body: 1 / 0)
    conn = _conn(fake_llm)
    _, raw = _post(conn, _chat(stream=False))
    assert json.loads(raw)["choices"][0]["message"]["content"] == "you said hi"
    assert seen[0]["model"] == "qwen3-coder-plus"
    response, raw = _post(conn, _chat())
    assert response.status == 400
    assert "ZeroDivisionError" in json.loads(raw)["error"]["message"]
    assert isinstance(fake_llm.errors[0], ZeroDivisionError)


def test_models_endpoint(fake_llm: FakeLLM) -> None:
    fake_llm.models = ["qwen3-coder-plus", "qwen3-coder-flash"]
    conn = _conn(fake_llm)
    conn.request("GET", "/v1/models")
    body = json.loads(conn.getresponse().read())
    assert body["object"] == "list"
    assert [(m["id"], m["object"], m["max_model_len"]) for m in body["data"]] == [
        ("qwen3-coder-plus", "model", 262144),
        ("qwen3-coder-flash", "model", 262144),
    ]
    conn.request("GET", "/v1/nope")
    assert conn.getresponse().status == 404


def test_records_requests_with_timestamps(fake_llm: FakeLLM) -> None:
    fake_llm.script(text("a"), Turn(text="b", delay_s=0.05))
    conn = _conn(fake_llm)
    before = time.monotonic()
    conn.request(
        "POST",
        "/v1/chat/completions",
        json.dumps(_chat()),
        {"Content-Type": "application/json", "X-Custom": "1"},
    )
    conn.getresponse().read()
    _post(conn, _chat())
    first, second = fake_llm.chat_requests
    assert (first.method, first.path) == ("POST", "/v1/chat/completions")
    assert first.headers["x-custom"] == "1"
    assert first.body == _chat()
    assert before <= first.received_at <= first.finished_at <= second.received_at
    assert second.finished_at - second.received_at >= 0.05
    assert fake_llm.connections == 1  # keep-alive: both requests on one connection


def test_wait_for_requests(fake_llm: FakeLLM) -> None:
    fake_llm.script(text("a"))
    worker = threading.Thread(target=lambda: _post(_conn(fake_llm), _chat()))
    worker.start()
    (rec,) = fake_llm.wait_for_requests(1, timeout=5)
    worker.join()
    assert rec.body is not None
    with pytest.raises(TimeoutError):
        fake_llm.wait_for_requests(2, timeout=0.05)


def test_paced_stream_still_assembles(fake_llm: FakeLLM) -> None:
    fake_llm.script(Turn(text="a b c d e f", chunk_words=1, chunk_delay_s=0.002))
    _, raw = _post(_conn(fake_llm), _chat())
    chunks = parse_events(raw)[:-1]
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:7]] == [
        "a ",
        "b ",
        "c ",
        "d ",
        "e ",
        "f",
    ]


def test_stop_closes_kept_alive_connections() -> None:
    server = FakeLLM(text("a")).start()
    conn = _conn(server)
    _post(conn, _chat())
    server.stop()
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        _post(conn, _chat())
    server.stop()  # idempotent


@pytest.mark.parametrize(
    ("content", "words", "expected"),
    [
        ("", 3, []),
        ("hello", 3, ["hello"]),
        ("a b c d", 2, ["a b ", "c d"]),
        ("  lead\nline two  ", 1, ["  lead\n", "line ", "two  "]),
        ("   ", 2, ["   "]),
    ],
)
def test_split_text_keeps_every_character(content: str, words: int, expected: list[str]) -> None:
    assert split_text(content, words) == expected
    assert "".join(split_text(content, words)) == content


def test_split_fragments() -> None:
    assert split_fragments("") == []
    assert split_fragments("ab") == ["a", "b"]
    pieces = split_fragments('{"file_path": "a.py"}')
    assert len(pieces) == 3
    assert "".join(pieces) == '{"file_path": "a.py"}'
