"""ChatClient over real HTTP against the scripted server (no mocks of the HTTP client)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

from qwen_code import __version__
from qwen_code.agent.events import UsageInfo
from qwen_code.llm.client import ChatClient
from qwen_code.llm.types import ModelResponse, RetryNotice, TextChunk
from tests.fakeserver import FakeLLM, HTTPError, Turn, call, text, tool_turn
from tests.llm_helpers import MESSAGES, TOOLS, collect, failure, final, make_config, raw_server, run
from tests.sse import chunk, sse_response

ROOT = Path(__file__).resolve().parents[1]


async def test_text_streams_in_several_chunks(fake_llm: FakeLLM) -> None:
    answer = "Sure. The failing test imports a module that was renamed last week."
    fake_llm.script(text(answer))
    items = await run(fake_llm.base_url)
    chunks = [i.text for i in items if isinstance(i, TextChunk)]
    assert len(chunks) >= 4
    assert "".join(chunks) == answer
    response = final(items)
    assert (response.text, response.finish_reason, response.tool_calls) == (answer, "stop", ())


async def test_parallel_tool_calls_assemble(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        tool_turn(
            call("read_file", file_path="src/app.py"),
            call("grep_search", pattern="def main", path="src", include="*.py"),
            text="Reading both.",
        )
    )
    response = final(await run(fake_llm.base_url, tools=TOOLS))
    assert response.text == "Reading both."
    assert response.finish_reason == "tool_calls"
    assert [(c.name, c.arguments, c.parse_error) for c in response.tool_calls] == [
        ("read_file", {"file_path": "src/app.py"}, None),
        ("grep_search", {"pattern": "def main", "path": "src", "include": "*.py"}, None),
    ]
    ids = [c.id for c in response.tool_calls]
    assert all(i.startswith("call_") for i in ids) and len(set(ids)) == 2


async def test_usage_with_cached_tokens(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        Turn(
            text="ok", usage={"prompt_tokens": 5000, "completion_tokens": 12, "cached_tokens": 4096}
        )
    )
    response = final(await run(fake_llm.base_url))
    assert response.usage == UsageInfo(prompt_tokens=5000, completion_tokens=12, cached_tokens=4096)


async def test_request_body_and_headers(fake_llm: FakeLLM) -> None:
    fake_llm.script(text("a"), text("b"))
    cfg = make_config(
        fake_llm.base_url,
        sampling={"temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05},
        max_tokens=4096,
        extra_body={"metadata": {"session": "s1"}},
        headers={"X-Trace": "t1"},
    )
    async with ChatClient(cfg) as client:
        await collect(client, tools=TOOLS)
        await collect(client, tools=[])
    first, second = fake_llm.chat_requests
    body = first.body
    assert body is not None
    assert body["model"] == "qwen3-coder-plus"
    assert body["messages"] == MESSAGES
    assert body["tools"] == TOOLS
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.7, 0.8, 20)
    assert body["repetition_penalty"] == 1.05
    assert body["max_tokens"] == 4096
    assert body["metadata"] == {"session": "s1"}
    assert "tools" not in (second.body or {})
    assert first.headers["authorization"] == "Bearer test-key"
    assert first.headers["user-agent"] == f"qwen-code/{__version__}"
    assert first.headers["x-trace"] == "t1"
    assert "x-dashscope-cachecontrol" not in first.headers


async def test_connection_is_kept_alive(fake_llm: FakeLLM) -> None:
    fake_llm.script(text("a"), tool_turn(call("ls", path=".")), text("c"))
    async with ChatClient(make_config(fake_llm.base_url)) as client:
        for _ in range(3):
            await collect(client)
        assert len(await client.list_models()) == 1
    assert fake_llm.connections == 1
    assert len(fake_llm.requests) == 4


async def test_rate_limit_with_retry_after_then_success(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        HTTPError(429, {"error": {"message": "Too many requests"}}, {"Retry-After": "0"}),
        text("done"),
    )
    items = await run(fake_llm.base_url)
    notices = [i for i in items if isinstance(i, RetryNotice)]
    assert len(notices) == 1
    assert (notices[0].kind, notices[0].attempt, notices[0].delay_s) == ("rate_limit", 1, 0.0)
    assert "Too many requests" in notices[0].message
    assert "retry 1 of 5" in notices[0].message
    assert isinstance(items[0], RetryNotice)
    assert final(items).text == "done"
    assert len(fake_llm.chat_requests) == 2


async def test_retry_after_is_capped(fake_llm: FakeLLM) -> None:
    fake_llm.script(HTTPError(429, headers={"Retry-After": "120"}), text("done"))
    items = await run(fake_llm.base_url, max_retry_wait_s=0.01)
    (notice,) = [i for i in items if isinstance(i, RetryNotice)]
    assert notice.delay_s == 0.01


async def test_server_errors_are_retried(fake_llm: FakeLLM) -> None:
    fake_llm.script(HTTPError(500), HTTPError(502, "<html>Bad Gateway</html>"), text("ok"))
    items = await run(fake_llm.base_url)
    notices = [i for i in items if isinstance(i, RetryNotice)]
    assert [(n.kind, n.attempt) for n in notices] == [("server", 1), ("server", 2)]
    assert "Bad Gateway" in notices[1].message
    assert final(items).text == "ok"
    assert len(fake_llm.chat_requests) == 3


async def test_retries_are_bounded(fake_llm: FakeLLM) -> None:
    fake_llm.script(*[HTTPError(503, {"error": {"message": "overloaded"}})] * 3, text("late"))
    error, items = await failure(fake_llm.base_url, max_retries=2)
    assert (error.kind, error.retryable) == ("overloaded", True)
    assert "503" in error.message and "overloaded" in error.message
    assert "gave up after 2 retries" in error.message
    assert len([i for i in items if isinstance(i, RetryNotice)]) == 2
    assert len(fake_llm.chat_requests) == 3
    assert fake_llm.remaining == 1


async def test_auth_error_names_the_key_source(fake_llm: FakeLLM) -> None:
    fake_llm.script(HTTPError(401, {"error": {"message": "Incorrect API key provided"}}))
    error, items = await failure(fake_llm.base_url)
    assert error.kind == "auth"
    assert not error.retryable
    assert f"The server at {fake_llm.base_url} rejected the API key from OPENAI_API_KEY (401)" in (
        error.message
    )
    assert "Incorrect API key provided" in error.message
    assert "OPENAI_API_KEY" in (error.hint or "")
    assert items == []
    assert len(fake_llm.chat_requests) == 1


async def test_unknown_model_lists_the_served_models(fake_llm: FakeLLM) -> None:
    fake_llm.models = ["qwen3-coder-plus", "qwen3-coder-flash"]
    body = {
        "error": {"message": "The model `x` does not exist", "type": "NotFoundError", "code": 404}
    }
    fake_llm.script(HTTPError(404, body))
    error, _ = await failure(fake_llm.base_url, model="x")
    assert error.kind == "not_found"
    assert error.message == (
        f"Model 'x' is not served by {fake_llm.base_url}. Available models: qwen3-coder-plus, "
        "qwen3-coder-flash. Set OPENAI_MODEL or pass --model."
    )
    assert [r.path for r in fake_llm.requests] == ["/v1/chat/completions", "/v1/models"]


async def test_404_for_a_served_model_points_at_the_base_url(fake_llm: FakeLLM) -> None:
    fake_llm.script(HTTPError(404, {"detail": "Not Found"}))
    error, _ = await failure(fake_llm.base_url)
    assert error.kind == "not_found"
    assert "Not Found" in error.message
    assert "/v1" in (error.hint or "")


async def test_context_overflow(fake_llm: FakeLLM) -> None:
    message = "This model's maximum context length is 32768 tokens. However, you requested 40000."
    fake_llm.script(HTTPError(400, {"error": {"message": message}}))
    error, _ = await failure(fake_llm.base_url)
    assert error.kind == "context_overflow"
    assert message in error.message
    assert len(fake_llm.chat_requests) == 1


async def test_exhausted_script_is_a_bad_request_not_retried(fake_llm: FakeLLM) -> None:
    error, items = await failure(fake_llm.base_url)
    assert error.kind == "bad_request"
    assert "no scripted turn left" in error.message
    assert items == []
    assert fake_llm.unscripted == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_connection_refused_on_this_machine_fails_at_once() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    error, items = await failure(url, max_retries=2)
    assert (error.kind, error.retryable) == ("network", False)
    assert error.message == (
        f"Cannot reach the model server: {url} refused the connection (is the server running?)."
    )
    assert [i for i in items if isinstance(i, RetryNotice)] == []


async def test_timeout(fake_llm: FakeLLM) -> None:
    fake_llm.script(Turn(text="slow", delay_s=0.5))
    error, _ = await failure(
        fake_llm.base_url, timeout_s=0.1, max_retries=0, first_chunk_rate=0
    )  # the plain timeout: no extra wait for a local server's prompt processing
    assert (error.kind, error.retryable) == ("timeout", True)


async def test_malformed_tool_arguments_set_parse_error(fake_llm: FakeLLM) -> None:
    raw = '{"file_path": "a.py", "content": }'
    fake_llm.script(tool_turn(call("write_file", raw)))
    (tool_call,) = final(await run(fake_llm.base_url)).tool_calls
    assert tool_call.name == "write_file"
    assert tool_call.arguments == {}
    assert tool_call.raw_arguments == raw
    assert tool_call.parse_error is not None and "not valid JSON" in tool_call.parse_error


async def test_list_models(fake_llm: FakeLLM) -> None:
    fake_llm.models = ["a", "b"]
    fake_llm.max_model_len = 131072
    async with ChatClient(make_config(fake_llm.base_url)) as client:
        models = await client.list_models()
    assert [(m["id"], m["max_model_len"]) for m in models] == [("a", 131072), ("b", 131072)]


async def test_consumer_can_stop_early(fake_llm: FakeLLM) -> None:
    fake_llm.script(Turn(text="one two three four five six", chunk_words=1), text("next"))
    async with ChatClient(make_config(fake_llm.base_url)) as client:
        stream = client.stream_chat(MESSAGES, None)
        first = await anext(stream)
        assert first == TextChunk(text="one ")
        await stream.aclose()
        assert final(await collect(client)).text == "next"


async def test_a_reply_stopped_early_closes_its_connection(fake_llm: FakeLLM) -> None:
    """The endless reply's server stops writing once the client closed the connection."""
    fake_llm.script(Turn(text="la la la", forever=True), text("next"))
    async with ChatClient(make_config(fake_llm.base_url)) as client:
        stream = client.stream_chat(MESSAGES, None)
        assert isinstance(await anext(stream), TextChunk)
        await stream.aclose()
        assert await asyncio.to_thread(fake_llm.wait_for_open_connections, 0)
        assert final(await collect(client)).text == "next"
    assert fake_llm.connections == 2
    assert await asyncio.to_thread(fake_llm.wait_for_open_connections, 0)  # aclose() closed it


async def test_a_stalled_reply_closes_its_connection(fake_llm: FakeLLM) -> None:
    """The stall watchdog cancels the read; the stalled connection is closed, not kept."""
    fake_llm.script(Turn(text="la la la", forever=True, chunk_delay_s=1.0), text("ok"))
    async with ChatClient(make_config(fake_llm.base_url, stall_timeout_s=0.2)) as client:
        items = await collect(client)
        assert [i.kind for i in items if isinstance(i, RetryNotice)] == ["timeout"]
        assert final(items).text == "ok"
        assert await asyncio.to_thread(fake_llm.wait_for_open_connections, 1)  # kept alive
    assert fake_llm.connections == 2
    assert await asyncio.to_thread(fake_llm.wait_for_open_connections, 0)


def test_importing_the_client_does_not_import_openai() -> None:
    code = (
        "import sys, qwen_code.llm.client, qwen_code.llm.retry, qwen_code.llm.stream\n"
        "assert 'openai' not in sys.modules, 'openai imported'\n"
        "assert 'httpx' not in sys.modules, 'httpx imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=30)


# Faults the scripted server does not play yet, from a tiny raw HTTP server.


async def test_stream_dropped_before_content_is_retried() -> None:
    dropped = sse_response(chunk({"role": "assistant", "content": ""}), complete=False)
    good = sse_response(chunk({"content": "fine"}), chunk({}, "stop"))
    async with raw_server([dropped, good]) as (url, served):
        items = await run(url)
    assert [type(i) for i in items] == [RetryNotice, TextChunk, ModelResponse]
    assert isinstance(items[0], RetryNotice) and items[0].kind == "network"
    assert final(items).text == "fine"
    assert len(served) == 2


async def test_malformed_sse_before_content_is_retried() -> None:
    good = sse_response(chunk({"content": "fine"}), chunk({}, "stop"))
    async with raw_server([sse_response("{not json"), good]) as (url, served):
        items = await run(url)
    (notice,) = [i for i in items if isinstance(i, RetryNotice)]
    assert notice.kind == "server"
    assert "malformed" in notice.message
    assert final(items).text == "fine"
    assert len(served) == 2


async def test_empty_stream_is_an_error(fake_llm: FakeLLM) -> None:
    async with raw_server([sse_response()] * 2) as (url, served):
        error, _ = await failure(url, max_retries=1)
    assert error.kind == "server"
    assert "empty response" in error.message
    assert len(served) == 2
