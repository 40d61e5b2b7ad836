"""ChatClient against real model misbehaviour and server faults, over real HTTP: Qwen XML
calls in content, cut-off tool calls, stalls, drops, bounded retries, error kinds, base URLs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from qwen_code.llm.client import ChatClient
from qwen_code.llm.types import ModelResponse, RetryNotice, StreamItem, TextChunk
from tests.fakeserver import FakeLLM, HTTPError, Turn, call, text, tool_turn
from tests.llm_helpers import (
    MESSAGES,
    TOOLS,
    collect,
    failure,
    final,
    make_config,
    raw_server,
    run,
)
from tests.sse import chunk, sse_response

# Model output: Qwen XML in content, cut-off tool calls.

EDIT_TOOLS = [
    *TOOLS,
    {
        "type": "function",
        "function": {
            "name": "write_file",
            "parameters": {
                "type": "object",
                "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
            },
        },
    },
]
BIG = "def main():\n" + "    print('hello')\n" * 40


def texts(items: list[StreamItem]) -> str:
    return "".join(i.text for i in items if isinstance(i, TextChunk))


@pytest.mark.parametrize("layout", ["wrapped", "unwrapped", "oneline"])
async def test_xml_tool_calls_in_content_become_tool_calls(fake_llm: FakeLLM, layout: str) -> None:
    turn = tool_turn(
        call("read_file", file_path="src/app.py"),
        call("write_file", file_path="b.py", content=BIG),
        text="Reading, then writing.",
        xml=layout,
        chunk_chars=3,
    )
    fake_llm.script(turn)
    items = await run(fake_llm.base_url, tools=EDIT_TOOLS)
    response = final(items)
    assert "<" not in texts(items)
    assert texts(items) == response.text
    assert response.text.rstrip() == "Reading, then writing."
    assert response.finish_reason == "tool_calls"
    # vLLM strips one newline at each end of a value: the one-line layout loses BIG's last
    content = BIG[:-1] if layout == "oneline" else BIG
    assert [(c.name, c.arguments, c.parse_error) for c in response.tool_calls] == [
        ("read_file", {"file_path": "src/app.py"}, None),
        ("write_file", {"file_path": "b.py", "content": content}, None),
    ]
    assert len({c.id for c in response.tool_calls}) == 2


async def test_structured_calls_win_over_leaked_xml(fake_llm: FakeLLM) -> None:
    leaked = "Reading.</parameter> <tool_call><function=read_file><parameter=file_path>x"
    fake_llm.script(tool_turn(call("read_file", file_path="a.py"), text=leaked))
    items = await run(fake_llm.base_url, tools=TOOLS)
    response = final(items)
    assert response.text == texts(items) == "Reading. "
    assert [c.arguments for c in response.tool_calls] == [{"file_path": "a.py"}]


async def test_markup_that_is_no_call_is_shown_after_all(fake_llm: FakeLLM) -> None:
    answer = "Write <function=name without a bracket, then more text"
    fake_llm.script(text(answer))
    items = await run(fake_llm.base_url, tools=TOOLS)
    assert texts(items) == final(items).text == answer
    assert final(items).tool_calls == ()


async def test_cut_off_tool_call_is_retried_with_a_larger_max_tokens(fake_llm: FakeLLM) -> None:
    whole = call("write_file", file_path="b.py", content=BIG)
    fake_llm.script(
        tool_turn(whole, text="Writing b.py.", cut_at=40), tool_turn(whole, text="Writing b.py.")
    )
    items = await run(fake_llm.base_url, tools=EDIT_TOOLS)
    (notice,) = [i for i in items if isinstance(i, RetryNotice)]
    assert (notice.kind, notice.restart, notice.delay_s) == ("length", True, 0.0)
    assert "max_tokens=65536" in notice.message
    response = final(items)
    assert response.text == "Writing b.py."
    assert [(c.arguments, c.parse_error) for c in response.tool_calls] == [
        ({"file_path": "b.py", "content": BIG}, None)
    ]
    first, second = (r.body or {} for r in fake_llm.chat_requests)
    assert "max_tokens" not in first
    assert second["max_tokens"] == 65536


@pytest.mark.parametrize("xml", [None, "wrapped"])
async def test_cut_off_twice_is_reported_to_the_model(fake_llm: FakeLLM, xml: str | None) -> None:
    cut = tool_turn(call("write_file", file_path="b.py", content=BIG), cut_at=60, xml=xml)
    fake_llm.script(cut, cut)
    items = await run(fake_llm.base_url, tools=EDIT_TOOLS)
    (tool_call,) = final(items).tool_calls
    assert tool_call.name == "write_file"
    assert tool_call.arguments == {}
    assert tool_call.parse_error is not None
    assert "cut off" in tool_call.parse_error and "max_tokens=65536" in tool_call.parse_error
    assert len(fake_llm.chat_requests) == 2


async def test_no_length_retry_at_the_limit_already(fake_llm: FakeLLM) -> None:
    fake_llm.script(tool_turn(call("write_file", file_path="b.py", content=BIG), cut_at=30))
    items = await run(fake_llm.base_url, tools=EDIT_TOOLS, max_tokens=65536)
    assert not [i for i in items if isinstance(i, RetryNotice)]
    assert "cut off" in (final(items).tool_calls[0].parse_error or "")


async def test_length_retry_refused_by_the_server_reports_the_cut_reply(fake_llm: FakeLLM) -> None:
    message = "max_tokens is too large: 65536. This model's maximum context length is 32768 tokens"
    fake_llm.script(
        tool_turn(call("write_file", file_path="b.py", content=BIG), cut_at=30),
        HTTPError(400, {"error": {"message": message}}),
    )
    items = await run(fake_llm.base_url, tools=EDIT_TOOLS)
    assert "cut off" in (final(items).tool_calls[0].parse_error or "")


async def test_text_cut_off_by_length_is_not_retried(fake_llm: FakeLLM) -> None:
    fake_llm.script(text("A long answer that", finish_reason="length"))
    response = final(await run(fake_llm.base_url, tools=TOOLS))
    assert (response.text, response.finish_reason) == ("A long answer that", "length")
    assert len(fake_llm.chat_requests) == 1


# Server behaviour: stalls, drops, bounded retries, error kinds, base URLs.


async def test_stalled_stream_is_retried_from_the_start(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        Turn(text="one two three four five", chunk_words=1, stall_after=3, stall_s=2.0),
        text("fine"),
    )
    items = await run(fake_llm.base_url, stall_timeout_s=0.2)
    notices = [i for i in items if isinstance(i, RetryNotice)]
    assert [(n.kind, n.restart) for n in notices] == [("timeout", True)]
    assert "stalled: no data for 0.2 s" in notices[0].message
    assert final(items).text == "fine"
    assert [type(i) for i in items][:2] == [TextChunk, TextChunk]


async def test_a_pause_shorter_than_the_stall_timeout_is_fine(fake_llm: FakeLLM) -> None:
    fake_llm.script(Turn(text="one two three", chunk_words=1, stall_after=2, stall_s=0.15))
    items = await run(fake_llm.base_url, stall_timeout_s=1.0)
    assert final(items).text == "one two three"
    assert not [i for i in items if isinstance(i, RetryNotice)]


async def test_a_slow_consumer_is_not_a_stall(fake_llm: FakeLLM) -> None:
    fake_llm.script(Turn(text="one two three", chunk_words=1))
    async with ChatClient(make_config(fake_llm.base_url, stall_timeout_s=0.05)) as client:
        items = []
        async for item in client.stream_chat(MESSAGES, None):
            items.append(item)
            await asyncio.sleep(0.12)
    assert final(items).text == "one two three"


async def test_dropped_tool_call_stream_is_retried(fake_llm: FakeLLM) -> None:
    turn = tool_turn(call("write_file", file_path="b.py", content=BIG), text="Writing.")
    fake_llm.script(tool_turn(*turn.tool_calls, text="Writing.", drop_after=4), turn)
    items = await run(fake_llm.base_url, tools=EDIT_TOOLS)
    (notice,) = [i for i in items if isinstance(i, RetryNotice)]
    assert (notice.kind, notice.restart) == ("network", True)
    assert notice.message.startswith(f"The connection to {fake_llm.base_url}")
    assert "was lost" in notice.message and "Is the server running?" not in notice.message
    response = final(items)
    assert response.text == "Writing."
    assert response.tool_calls[0].arguments == {"file_path": "b.py", "content": BIG}


async def test_malformed_line_mid_answer_restarts(fake_llm: FakeLLM) -> None:
    fake_llm.script(Turn(text="one two three", chunk_words=1, malformed_after=3), text("ok"))
    items = await run(fake_llm.base_url)
    (notice,) = [i for i in items if isinstance(i, RetryNotice)]
    assert (notice.kind, notice.restart) == ("server", True)
    assert final(items).text == "ok"


async def test_total_retry_time_is_bounded(fake_llm: FakeLLM) -> None:
    """A second wait of 1 s cannot fit in 1.5 s whatever the machine's speed (no timing race)."""
    fake_llm.script(*[HTTPError(500, headers={"Retry-After": "1"})] * 5, text("late"))
    error, items = await failure(fake_llm.base_url, max_retries=10, max_retry_time_s=1.5)
    assert error.kind == "server"
    assert "gave up after 1 retry" in error.message
    assert len([i for i in items if isinstance(i, RetryNotice)]) == 1
    assert len(fake_llm.chat_requests) == 2


async def test_retries_of_silent_timeouts_fit_the_retry_time(fake_llm: FakeLLM) -> None:
    """A retry is made only if another attempt as long as the silent one still fits."""
    fake_llm.script(*[Turn(text="late", delay_s=0.8)] * 6)
    error, items = await failure(
        fake_llm.base_url, timeout_s=0.3, max_retries=5, max_retry_time_s=0.5, first_chunk_rate=0
    )
    assert error.kind == "timeout"
    assert len([i for i in items if isinstance(i, RetryNotice)]) <= 1  # not 5
    assert len(fake_llm.chat_requests) <= 2


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (
            429,
            {
                "error": {
                    "message": "You exceeded your current quota.",
                    "code": "insufficient_quota",
                }
            },
        ),
        (
            400,
            {
                "error": {
                    "message": "Access denied, please make sure your account is in good standing.",
                    "code": "Arrearage",
                }
            },
        ),
        (
            403,
            {
                "error": {
                    "message": "The free tier of the model has been exhausted.",
                    "type": "AllocationQuota.FreeTierOnly",
                }
            },
        ),
        (429, {"error": {"message": "Free allocated quota exceeded."}}),
    ],
)
async def test_quota_errors_are_not_retried(fake_llm: FakeLLM, status: int, body: Any) -> None:
    fake_llm.script(HTTPError(status, body), text("never"))
    error, items = await failure(fake_llm.base_url)
    assert (error.kind, error.retryable, error.exit_code) == ("quota", False, 1)
    assert "no quota left" in error.message
    assert "billing" in (error.hint or "")
    assert items == []
    assert len(fake_llm.chat_requests) == 1


async def test_dashscope_allocation_throttle_is_a_rate_limit(fake_llm: FakeLLM) -> None:
    body = {
        "error": {
            "message": "Allocated quota exceeded, please increase your quota limit.",
            "code": "Throttling.AllocationQuota",
        }
    }
    fake_llm.script(HTTPError(429, body, {"Retry-After": "0"}), text("ok"))
    items = await run(fake_llm.base_url)
    assert [i.kind for i in items if isinstance(i, RetryNotice)] == ["rate_limit"]
    assert final(items).text == "ok"


@pytest.mark.parametrize("status", [503, 529])
async def test_overloaded_is_its_own_kind_and_retried(fake_llm: FakeLLM, status: int) -> None:
    fake_llm.script(HTTPError(status), text("ok"))
    items = await run(fake_llm.base_url)
    (notice,) = [i for i in items if isinstance(i, RetryNotice)]
    assert notice.kind == "overloaded"
    assert "overloaded" in notice.message
    assert final(items).text == "ok"


@pytest.mark.parametrize("suffix", ["", "/"])
async def test_base_url_without_v1_gets_it_added(fake_llm: FakeLLM, suffix: str) -> None:
    base = fake_llm.base_url.removesuffix("/v1") + suffix
    fake_llm.script(text("one"), text("two"))
    async with ChatClient(make_config(base)) as client:
        assert final(await collect(client)).text == "one"
        assert final(await collect(client)).text == "two"
        assert [m["id"] for m in await client.list_models()] == ["qwen3-coder-plus"]
    assert [r.path for r in fake_llm.requests] == [
        "/chat/completions",
        "/v1/chat/completions",
        "/v1/chat/completions",
        "/v1/models",
    ]


async def test_model_listing_without_v1(fake_llm: FakeLLM) -> None:
    base = fake_llm.base_url.removesuffix("/v1")
    async with ChatClient(make_config(base)) as client:
        assert [m["id"] for m in await client.list_models()] == ["qwen3-coder-plus"]
    assert [r.path for r in fake_llm.requests] == ["/models", "/v1/models"]


async def test_unknown_model_behind_a_base_url_without_v1(fake_llm: FakeLLM) -> None:
    base = fake_llm.base_url.removesuffix("/v1")
    fake_llm.script(HTTPError(404, {"error": {"message": "The model `x` does not exist"}}))
    error, _ = await failure(base, model="x")
    assert error.kind == "not_found"
    assert "Model 'x' is not served by" in error.message
    assert "Available models: qwen3-coder-plus" in error.message


async def test_a_wrong_path_is_not_retried_forever(fake_llm: FakeLLM) -> None:
    base = fake_llm.base_url.removesuffix("/v1") + "/nothing"
    error, _ = await failure(base)
    assert error.kind == "not_found"
    assert "/v1" in (error.hint or "")
    assert [r.path for r in fake_llm.requests] == [
        "/nothing/chat/completions",
        "/nothing/v1/chat/completions",
        "/nothing/v1/models",
        "/nothing/models",
    ]


async def test_single_quoted_tool_arguments_are_repaired(fake_llm: FakeLLM) -> None:
    fake_llm.script(tool_turn(call("write_file", "{'file_path': 'a.py', 'content': 'x',}")))
    (tool_call,) = final(await run(fake_llm.base_url)).tool_calls
    assert (tool_call.arguments, tool_call.parse_error) == (
        {"file_path": "a.py", "content": "x"},
        None,
    )


async def test_stream_broken_after_text_restarts_the_response() -> None:
    partial = sse_response(
        chunk({"role": "assistant"}), chunk({"content": "Hello"}), complete=False
    )
    again = sse_response(chunk({"content": "again"}, "stop"))
    async with raw_server([partial, again]) as (url, served):
        items = await run(url)
    assert [type(i) for i in items] == [TextChunk, RetryNotice, TextChunk, ModelResponse]
    notice = items[1]
    assert isinstance(notice, RetryNotice)
    assert (notice.kind, notice.restart, notice.attempt) == ("network", True, 1)
    assert "starts over" in notice.message
    assert final(items).text == "again"
    assert len(served) == 2


async def test_error_objects_inside_the_stream_are_classified() -> None:
    overloaded = sse_response({"error": {"message": "Overloaded", "type": "overloaded_error"}})
    good = sse_response(chunk({"content": "fine"}), chunk({}, "stop"))
    async with raw_server([overloaded, good]) as (url, _):
        items = await run(url)
    assert [i.kind for i in items if isinstance(i, RetryNotice)] == ["overloaded"]
    quota = sse_response({"error": {"message": "quota", "code": "insufficient_quota"}})
    async with raw_server([quota, good]) as (url, served):
        error, _ = await failure(url)
    assert (error.kind, len(served)) == ("quota", 1)
