"""`qwen_code.proxy` mapping: Anthropic requests to OpenAI chat, responses, stream events, errors.

Pure tables: no server, no network.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from qwen_code.errors import ModelError
from qwen_code.llm.types import ModelResponse, RetryNotice, TextChunk, ToolCall, UsageInfo
from qwen_code.proxy.events import AnthropicStream, sse
from qwen_code.proxy.translate import (
    BadRequest,
    ChatRequest,
    count_tokens,
    error_body,
    error_for,
    to_chat,
    to_message,
)

PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}


def chat(messages: list[dict[str, Any]], **extra: Any) -> ChatRequest:
    return to_chat(
        {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": messages, **extra}
    )


def user(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def result(call_id: str, content: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": call_id, "content": content, **extra}


# --- requests -------------------------------------------------------------------------------


def test_a_plain_request() -> None:
    request = chat([{"role": "user", "content": "hi"}], temperature=0.2, stream=True)
    assert request.model == "claude-sonnet-4-5"
    assert request.messages == [{"role": "user", "content": "hi"}]
    assert (request.max_tokens, request.sampling, request.stream) == (
        1024,
        {"temperature": 0.2},
        True,
    )
    assert (request.tools, request.tool_choice, request.thinking_dropped) == (None, None, False)


def test_sampling_and_stop_sequences() -> None:
    request = chat(
        [{"role": "user", "content": "hi"}],
        temperature=0,
        top_p=0.9,
        top_k=5,
        stop_sequences=["</answer>", "STOP"],
    )
    assert request.sampling == {
        "temperature": 0.0,
        "top_p": 0.9,
        "top_k": 5,
        "stop": ["</answer>", "STOP"],
    }
    assert chat([{"role": "user", "content": "hi"}], stop_sequences=[]).sampling == {}


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("Be brief.", "Be brief."),
        (
            [
                {"type": "text", "text": "You are Claude Code."},
                {"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}},
            ],
            "You are Claude Code.\n\nRules.",
        ),
    ],
)
def test_the_system_prompt_comes_first(system: Any, expected: str) -> None:
    request = chat([{"role": "user", "content": "hi"}], system=system)
    assert request.messages[0] == {"role": "system", "content": expected}


def test_user_text_and_images() -> None:
    image_url = {"type": "url", "url": "https://example.com/a.png"}
    request = chat(
        [
            user(
                {"type": "text", "text": "look"},
                {"type": "image", "source": PNG},
                {"type": "image", "source": image_url},
            )
        ]
    )
    assert request.messages == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ],
        }
    ]


def test_a_single_text_block_is_a_string() -> None:
    assert chat([user({"type": "text", "text": "hi"})]).messages == [
        {"role": "user", "content": "hi"}
    ]


def test_assistant_text_and_tool_use() -> None:
    assistant = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "Let me look."},
            {"type": "text", "text": "Reading."},
            {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a.py"}},
            {"type": "tool_use", "id": "toolu_2", "name": "LS", "input": {}},
        ],
    }
    (message,) = chat([assistant]).messages
    assert message["role"] == "assistant"
    assert message["content"] == "Let me look.\nReading."
    assert message["tool_calls"] == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "Read", "arguments": '{"path": "a.py"}'},
        },
        {"id": "toolu_2", "type": "function", "function": {"name": "LS", "arguments": "{}"}},
    ]


def test_tool_use_only_has_no_content_and_arguments_are_always_an_object() -> None:
    assistant = {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "t", "name": "X", "input": None}],
    }
    (message,) = chat([assistant]).messages
    assert message["content"] is None
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {}


@pytest.mark.parametrize(
    ("content", "is_error", "expected"),
    [
        ("file text", False, "file text"),
        ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], False, "a\nb"),
        ("no such file", True, "Error: no such file"),
        (None, False, ""),
    ],
)
def test_tool_results(content: Any, is_error: bool, expected: str) -> None:
    (message,) = chat([user(result("toolu_1", content, is_error=is_error))]).messages
    assert message == {"role": "tool", "tool_call_id": "toolu_1", "content": expected}


def test_tool_results_come_in_order_before_the_users_text() -> None:
    request = chat(
        [
            user(
                {"type": "text", "text": "and also"},
                result("toolu_1", "one"),
                result("toolu_2", "two", is_error=True),
                result("toolu_3", [{"type": "text", "text": "three"}]),
            )
        ]
    )
    assert request.messages == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "one"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: two"},
        {"role": "tool", "tool_call_id": "toolu_3", "content": "three"},
        {"role": "user", "content": "and also"},
    ]


def test_an_image_in_a_tool_result_moves_to_a_user_message() -> None:
    request = chat([user(result("toolu_1", [{"type": "image", "source": PNG}]))])
    tool, follow = request.messages
    assert tool["role"] == "tool" and "image" in tool["content"]
    assert follow["role"] == "user"
    assert follow["content"][1]["type"] == "image_url"


def test_thinking_is_dropped() -> None:
    request = chat(
        [{"role": "user", "content": "hi"}], thinking={"type": "enabled", "budget_tokens": 2048}
    )
    assert request.thinking_dropped
    assert not chat(
        [{"role": "user", "content": "hi"}], thinking={"type": "disabled"}
    ).thinking_dropped


def test_tools_become_functions_with_clean_schemas() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"$schema": {"type": "string"}, "n": {"type": "integer", "minimum": 1}},
        "required": ["n"],
        "additionalProperties": False,
    }
    tools = [
        {"name": "Count", "description": "Counts.", "input_schema": schema},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
    ]
    request = chat([{"role": "user", "content": "hi"}], tools=tools)
    assert request.tools == [
        {
            "type": "function",
            "function": {
                "name": "Count",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "$schema": {"type": "string"},
                        "n": {"type": "integer", "minimum": 1},
                    },
                    "required": ["n"],
                    "additionalProperties": False,
                },
                "description": "Counts.",
            },
        }
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "Read"}, {"type": "function", "function": {"name": "Read"}}),
        (None, None),
    ],
)
def test_tool_choice(choice: Any, expected: Any) -> None:
    assert chat([{"role": "user", "content": "hi"}], tool_choice=choice).tool_choice == expected


def test_max_tokens_is_clamped_and_optional() -> None:
    assert chat([{"role": "user", "content": "hi"}], max_tokens=200_000).max_tokens == 65_536
    assert to_chat({"model": "m", "messages": []}).max_tokens is None


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"messages": []},
        {"model": "m"},
        {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
        {"model": "m", "messages": [{"role": "user", "content": 3}]},
        {"model": "m", "messages": [user({"type": "document", "source": {}})]},
        {"model": "m", "messages": [user({"type": "image", "source": {"type": "file"}})]},
        {"model": "m", "messages": [user({"type": "tool_result", "content": "x"})]},
        {"model": "m", "messages": [], "max_tokens": -1},
        {"model": "m", "messages": [], "temperature": "hot"},
        {"model": "m", "messages": [], "top_k": 2.5},
        {"model": "m", "messages": [], "top_p": -1},
        {"model": "m", "messages": [], "stop_sequences": "STOP"},
        {"model": "m", "messages": [], "stop_sequences": [""]},
        {"model": "m", "messages": [], "tool_choice": {"type": "sometimes"}},
        {"model": "m", "messages": [], "tools": [{"description": "no name"}]},
        {"model": "m", "messages": [], "system": 5},
    ],
)
def test_malformed_bodies_are_bad_requests(body: Any) -> None:
    with pytest.raises(BadRequest):
        to_chat(body)


# --- responses ------------------------------------------------------------------------------

CALL = ToolCall(id="call_1", name="Read", arguments={"path": "a.py"})


def test_a_text_response() -> None:
    response = ModelResponse(
        text="Hello.", finish_reason="stop", usage=UsageInfo(prompt_tokens=10, completion_tokens=2)
    )
    message = to_message(response, model="claude-x", message_id="msg_1")
    assert message == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [{"type": "text", "text": "Hello."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 2,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    }


def test_tool_calls_only_and_text_with_tool_calls() -> None:
    only = to_message(
        ModelResponse(text="", tool_calls=(CALL,), finish_reason="tool_calls"),
        model="m",
        message_id="i",
    )
    assert only["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "Read", "input": {"path": "a.py"}}
    ]
    assert only["stop_reason"] == "tool_use"
    both = to_message(
        ModelResponse(text="Reading.", tool_calls=(CALL,), finish_reason="stop"),
        model="m",
        message_id="i",
    )
    assert [b["type"] for b in both["content"]] == ["text", "tool_use"]
    assert both["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        (None, "end_turn"),
        ("content_filter", "end_turn"),
    ],
)
def test_stop_reasons(finish: str | None, expected: str) -> None:
    message = to_message(ModelResponse(text="x", finish_reason=finish), model="m", message_id="i")
    assert message["stop_reason"] == expected


def test_cached_tokens_are_cache_reads() -> None:
    usage = UsageInfo(prompt_tokens=1000, completion_tokens=50, cached_tokens=800)
    message = to_message(ModelResponse(text="x", usage=usage), model="m", message_id="i")
    assert message["usage"] == {
        "input_tokens": 200,
        "output_tokens": 50,
        "cache_read_input_tokens": 800,
        "cache_creation_input_tokens": 0,
    }


# --- streams --------------------------------------------------------------------------------


def run_stream(items: list[Any], input_tokens: int = 7) -> list[dict[str, Any]]:
    stream = AnthropicStream(model="claude-x", message_id="msg_1", input_tokens=input_tokens)
    events = stream.start()
    for item in items:
        events += stream.feed(item)
    assert stream.finished
    assert_well_formed(events)
    return events


def assert_well_formed(events: list[dict[str, Any]]) -> None:
    """message_start first; one open block at a time; indices 0, 1, ...; deltas only to the
    open block; message_delta then message_stop last, nothing after."""
    assert events[0]["type"] == "message_start"
    assert [e["type"] for e in events[-2:]] == ["message_delta", "message_stop"]
    assert [e["type"] for e in events].count("message_start") == 1
    open_index: int | None = None
    next_index = 0
    for event in events[1:-2]:
        kind = event["type"]
        if kind == "content_block_start":
            assert open_index is None and event["index"] == next_index
            open_index, next_index = event["index"], next_index + 1
        elif kind == "content_block_delta":
            assert event["index"] == open_index
        elif kind == "content_block_stop":
            assert event["index"] == open_index
            open_index = None
        else:
            assert kind in ("error", "ping"), kind
    assert open_index is None


def test_text_then_tool_calls() -> None:
    usage = UsageInfo(prompt_tokens=100, completion_tokens=20, cached_tokens=60)
    response = ModelResponse(
        text="Let me read.",
        tool_calls=(CALL, ToolCall(id="call_2", name="LS", arguments={})),
        finish_reason="tool_calls",
        usage=usage,
    )
    events = run_stream([TextChunk(text="Let me "), TextChunk(text="read."), response])
    assert events[0]["message"]["usage"]["input_tokens"] == 7
    assert events[1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    texts = [e["delta"]["text"] for e in events if e.get("delta", {}).get("type") == "text_delta"]
    assert texts == ["Let me ", "read."]
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert starts[1] == {"type": "tool_use", "id": "call_1", "name": "Read", "input": {}}
    assert starts[2]["name"] == "LS"
    arguments = [
        e["delta"]["partial_json"]
        for e in events
        if e.get("delta", {}).get("type") == "input_json_delta"
    ]
    assert [json.loads(a) for a in arguments] == [{"path": "a.py"}, {}]
    delta = events[-2]
    assert delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == 20
    assert delta["usage"]["input_tokens"] == 40
    assert delta["usage"]["cache_read_input_tokens"] == 60


def test_tool_calls_only() -> None:
    events = run_stream([ModelResponse(text="", tool_calls=(CALL,), finish_reason="tool_calls")])
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[1]["index"] == 0


def test_a_retry_before_any_text_is_invisible() -> None:
    notice = RetryNotice(message="429", attempt=1, delay_s=1.0, kind="rate_limit")
    events = run_stream(
        [notice, TextChunk(text="hi"), ModelResponse(text="hi", finish_reason="stop")]
    )
    assert "error" not in [e["type"] for e in events]
    assert events[-2]["delta"]["stop_reason"] == "end_turn"


def test_a_restart_after_text_is_an_error_and_ends_the_stream() -> None:
    notice = RetryNotice(
        message="connection lost", attempt=1, delay_s=1.0, kind="network", restart=True
    )
    events = run_stream(
        [TextChunk(text="partial"), notice, TextChunk(text="again"), ModelResponse(text="again")]
    )
    errors = [e for e in events if e["type"] == "error"]
    assert len(errors) == 1 and errors[0]["error"]["type"] == "overloaded_error"
    assert "connection lost" in errors[0]["error"]["message"]
    texts = [e["delta"]["text"] for e in events if e.get("delta", {}).get("type") == "text_delta"]
    assert texts == ["partial"]


def test_unstreamed_final_text_is_sent_and_feeding_starts_the_message() -> None:
    stream = AnthropicStream(model="m", message_id="i")
    events = stream.feed(ModelResponse(text="all at once", finish_reason="stop"))
    assert_well_formed(events)
    assert events[2]["delta"]["text"] == "all at once"
    assert stream.feed(TextChunk(text="late")) == []


def test_fail_closes_the_open_block_and_ends_the_message() -> None:
    stream = AnthropicStream(model="m", message_id="i")
    events = stream.start() + stream.feed(TextChunk(text="x")) + [stream.ping()]
    events += stream.fail(error_body("api_error", "boom"))
    assert_well_formed(events)
    assert events[-3] == {"type": "error", "error": {"type": "api_error", "message": "boom"}}
    assert stream.finished and stream.fail(error_body("api_error", "again")) == []


def test_sse_framing() -> None:
    assert sse({"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'


# --- errors and token counts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "error_type"),
    [
        ("auth", 401, "authentication_error"),
        ("rate_limit", 429, "rate_limit_error"),
        ("quota", 402, "billing_error"),
        ("not_found", 404, "not_found_error"),
        ("context_overflow", 400, "invalid_request_error"),
        ("bad_request", 400, "invalid_request_error"),
        ("overloaded", 529, "overloaded_error"),
        ("server", 500, "api_error"),
        ("network", 500, "api_error"),
        ("timeout", 504, "timeout_error"),
        ("something_new", 500, "api_error"),
    ],
)
def test_error_for_model_errors(kind: str, status: int, error_type: str) -> None:
    got_status, body, headers = error_for(ModelError("it failed", kind=kind, hint="a hint"))
    assert (got_status, body["type"], body["error"]["type"]) == (status, "error", error_type)
    assert headers == {}


def test_context_overflow_reads_as_prompt_too_long() -> None:
    message = (
        "This model's maximum context length is 8192 tokens. "
        "However, your messages resulted in 9000 tokens."
    )
    _, body, _ = error_for(ModelError(message, kind="context_overflow"))
    assert body["error"]["message"] == "prompt is too long: 9000 tokens > 8192 maximum"


def test_retry_after_is_passed_on() -> None:
    error = ModelError("slow down", kind="rate_limit", retryable=True)
    error.retry_after_s = 2.5
    assert error_for(error)[2] == {"retry-after": "3"}


def test_bad_requests_and_other_exceptions() -> None:
    assert error_for(BadRequest("messages: required"))[:2] == (
        400,
        error_body("invalid_request_error", "messages: required"),
    )
    status, body, _ = error_for(RuntimeError("oops"))
    assert status == 500 and body["error"]["type"] == "api_error"


def test_count_tokens_grows_with_the_input() -> None:
    small = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    longer = {"model": "m", "messages": [{"role": "user", "content": "hi " * 500}]}
    with_system = {**longer, "system": "rules " * 200}
    tool = {"name": "Read", "description": "Reads a file.", "input_schema": {"type": "object"}}
    with_tools = {**with_system, "tools": [tool]}
    counts = [count_tokens(b) for b in (small, longer, with_system, with_tools)]
    assert counts == sorted(counts) and len(set(counts)) == 4
    with pytest.raises(BadRequest):
        count_tokens({"messages": []})


def test_system_role_messages_join_the_system_prompt() -> None:
    """Claude Code puts some system text among the messages; strict backends take one
    system message, first."""
    from qwen_code.proxy.translate import to_chat

    chat = to_chat(
        {
            "model": "m",
            "max_tokens": 10,
            "system": "You are Claude Code.",
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "system", "content": [{"type": "text", "text": "Reminder: be brief."}]},
            ],
        }
    )
    assert chat.messages == [
        {"role": "system", "content": "You are Claude Code.\n\nReminder: be brief."},
        {"role": "user", "content": "hi"},
    ]
