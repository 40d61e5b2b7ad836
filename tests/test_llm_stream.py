"""Pure parts of the model client: chunk accumulation, sampling, error classification."""

from __future__ import annotations

import email.utils
from typing import Any

import pytest

from qwen_code.agent.events import ToolCall, UsageInfo
from qwen_code.llm import retry
from qwen_code.llm.client import build_headers, build_request
from qwen_code.llm.dashscope import is_dashscope
from qwen_code.llm.sampling import default_sampling, split_sampling
from qwen_code.llm.sse import Event, EventReader, chunk_of, is_done
from qwen_code.llm.stream import StreamAccumulator, parse_arguments, read_usage
from qwen_code.llm.transport_errors import StreamError
from qwen_code.llm.types import ModelConfig, ModelResponse
from tests.sse import chunk


def tc(index: int | None, **fields: Any) -> dict[str, Any]:
    """A tool-call delta; `name`/`args` go under `function`."""
    delta: dict[str, Any] = {} if index is None else {"index": index}
    function = {}
    if "name" in fields:
        function["name"] = fields.pop("name")
    if "args" in fields:
        function["arguments"] = fields.pop("args")
    if function:
        delta["function"] = function
    return {**delta, **fields}


def feed(*chunks: dict[str, Any]) -> ModelResponse:
    acc = StreamAccumulator()
    for c in chunks:
        acc.add(c)
    return acc.response()


def config(**kwargs: Any) -> ModelConfig:
    return ModelConfig(
        **{"base_url": "http://127.0.0.1:9/v1", "api_key": "k", "model": "m", **kwargs}
    )


# accumulation


def test_text_deltas_are_returned_and_joined() -> None:
    acc = StreamAccumulator()
    assert acc.add(chunk({"role": "assistant", "content": ""})) == ""
    assert acc.add(chunk({"content": "Hel"})) == "Hel"
    assert acc.add(chunk({"content": "lo"})) == "lo"
    assert acc.add(chunk({"reasoning_content": "hmm"})) == ""
    assert acc.add(chunk({}, finish_reason="stop")) == ""
    assert acc.response() == ModelResponse(text="Hello", finish_reason="stop")


def test_parallel_calls_assemble_by_index_even_interleaved() -> None:
    response = feed(
        chunk({"tool_calls": [tc(0, id="call_a", type="function", name="read_file", args="")]}),
        chunk({"tool_calls": [tc(1, id="call_b", type="function", name="glob", args='{"pat')]}),
        chunk({"tool_calls": [tc(0, args='{"file_')]}),
        chunk({"tool_calls": [tc(1, args='tern": "*.py"}')]}),
        chunk({"tool_calls": [tc(0, args='path": "a.py"}')]}),
        chunk({}, finish_reason="tool_calls"),
    )
    assert response.tool_calls == (
        ToolCall(
            id="call_a",
            name="read_file",
            arguments={"file_path": "a.py"},
            raw_arguments='{"file_path": "a.py"}',
        ),
        ToolCall(
            id="call_b",
            name="glob",
            arguments={"pattern": "*.py"},
            raw_arguments='{"pattern": "*.py"}',
        ),
    )
    assert response.finish_reason == "tool_calls"


def test_id_and_name_may_arrive_late_and_repeat() -> None:
    response = feed(
        chunk({"tool_calls": [tc(0, args='{"a": ')]}),
        chunk({"tool_calls": [tc(0, name="edit")]}),
        chunk({"tool_calls": [tc(0, id="call_x", name="edit", args="1}")]}),
    )
    (call,) = response.tool_calls
    assert (call.id, call.name, call.arguments) == ("call_x", "edit", {"a": 1})


def test_missing_id_is_synthesized() -> None:
    (call,) = feed(chunk({"tool_calls": [tc(0, name="ls", args="{}")]})).tool_calls
    assert call.id.startswith("call_")
    assert len(call.id) > len("call_") + 8


def test_calls_without_index_are_told_apart_by_id() -> None:
    response = feed(
        chunk({"tool_calls": [tc(None, id="c1", name="a", args='{"x": 1}')]}),
        chunk({"tool_calls": [tc(None, id="c2", name="b", args='{"y"')]}),
        chunk({"tool_calls": [tc(None, args=": 2}")]}),
    )
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        ("c1", "a", {"x": 1}),
        ("c2", "b", {"y": 2}),
    ]


def test_reused_index_with_a_new_id_starts_a_new_call() -> None:
    response = feed(
        chunk({"tool_calls": [tc(0, id="c1", name="a", args='{"x": 1}')]}),
        chunk({"tool_calls": [tc(0, id="c2", name="b", args='{"y": 2}')]}),
    )
    assert [(c.id, c.name) for c in response.tool_calls] == [("c1", "a"), ("c2", "b")]


def test_empty_arguments_mean_no_arguments() -> None:
    (call,) = feed(chunk({"tool_calls": [tc(0, id="c", name="list_todos", args="")]})).tool_calls
    assert (call.arguments, call.parse_error) == ({}, None)


def test_malformed_arguments_set_a_precise_parse_error() -> None:
    (call,) = feed(
        chunk({"tool_calls": [tc(0, id="c", name="edit", args="{'path': 'a.py'}")]})
    ).tool_calls
    assert call.arguments == {}
    assert call.raw_arguments == "{'path': 'a.py'}"
    assert call.parse_error is not None
    assert "'edit'" in call.parse_error
    assert "not valid JSON" in call.parse_error
    assert "line 1 column 2" in call.parse_error
    assert "{'path': 'a.py'}" in call.parse_error


@pytest.mark.parametrize(
    ("raw", "expected", "error_part"),
    [
        ("", {}, None),
        ("  ", {}, None),
        ('{"a": [1, 2]}', {"a": [1, 2]}, None),
        ("[1, 2]", {}, "must be a JSON object, got a JSON list"),
        ('"text"', {}, "got a JSON str"),
        ('{"a": 1', {}, "not valid JSON"),
        ('{"a": 1,}', {}, "not valid JSON"),
    ],
)
def test_parse_arguments(raw: str, expected: dict[str, Any], error_part: str | None) -> None:
    arguments, error = parse_arguments(raw, "t")
    assert arguments == expected
    if error_part is None:
        assert error is None
    else:
        assert error is not None and error_part in error


def test_usage_is_read_with_cached_tokens() -> None:
    usage = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    details = {**usage, "prompt_tokens_details": {"cached_tokens": 64}}
    assert read_usage(details) == UsageInfo(
        prompt_tokens=100, completion_tokens=20, cached_tokens=64
    )
    top_level = {**usage, "cached_tokens": 32}
    assert read_usage(top_level).cached_tokens == 32
    nulls = {**usage, "prompt_tokens_details": None}
    assert read_usage(nulls).cached_tokens == 0
    response = feed(chunk({"content": "x"}, "stop"), chunk(None, usage=details))
    assert response.usage == UsageInfo(prompt_tokens=100, completion_tokens=20, cached_tokens=64)
    assert feed(chunk({"content": "x"}, "stop")).usage is None


def test_empty_choices_and_nameless_empty_calls_are_ignored() -> None:
    acc = StreamAccumulator()
    acc.add({"choices": []})
    acc.add(chunk({"tool_calls": [tc(0, args="")]}))
    assert acc.response() == ModelResponse(text="")


# sampling


CODER = {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05}
NEXT = {"temperature": 1.0, "top_p": 0.95, "top_k": 40}


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("qwen3-coder-plus", CODER),
        ("qwen3-coder-flash", CODER),
        ("Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8", CODER),
        ("unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF", CODER),
        ("qwen3-coder-next", NEXT),
        ("Qwen/Qwen3-Coder-Next-FP8", NEXT),
        ("gpt-4o", {}),
        ("qwen3-235b-a22b", {}),
    ],
)
def test_default_sampling(model: str, expected: dict[str, Any]) -> None:
    assert default_sampling(model) == expected


def test_default_sampling_returns_a_fresh_dict() -> None:
    default_sampling("qwen3-coder-plus")["top_k"] = 1
    assert default_sampling("qwen3-coder-plus")["top_k"] == 20


def test_split_sampling() -> None:
    standard, extra = split_sampling(
        {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "min_p": 0.0, "seed": 1, "stop": None}
    )
    assert standard == {"temperature": 0.7, "top_p": 0.8, "seed": 1}
    assert extra == {"top_k": 20, "min_p": 0.0}


def test_build_request() -> None:
    cfg = config(
        sampling={"temperature": 0.7, "top_k": 20, "repetition_penalty": 1.05},
        max_tokens=8192,
        extra_body={"enable_thinking": False},
    )
    messages = [{"role": "user", "content": "hi"}]
    tools = [{"type": "function", "function": {"name": "ls", "parameters": {}}}]
    assert build_request(cfg, messages, tools) == {
        "model": "m",
        "messages": messages,
        "tools": tools,
        "temperature": 0.7,
        "max_tokens": 8192,
        "top_k": 20,
        "repetition_penalty": 1.05,
        "enable_thinking": False,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert "tools" not in build_request(cfg, messages, [])
    assert "tools" not in build_request(cfg, messages, None)


# headers


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://dashscope.aliyuncs.com/compatible-mode/v1", True),
        ("https://dashscope-intl.aliyuncs.com/compatible-mode/v1", True),
        ("https://dashscope-us.aliyuncs.com/compatible-mode/v1", True),
        ("https://cn-hongkong.dashscope.aliyuncs.com/compatible-mode/v1", True),
        ("https://coding-intl.dashscope.aliyuncs.com/v1", True),
        ("https://api.openai.com/v1", False),
        ("https://dashscope.aliyuncs.com.evil.example/v1", False),
        ("http://127.0.0.1:8000/v1", False),
    ],
)
def test_is_dashscope(url: str, expected: bool) -> None:
    assert is_dashscope(url) is expected


def test_dashscope_headers() -> None:
    from qwen_code import __version__

    ua = f"qwen-code/{__version__}"
    headers = build_headers(
        config(base_url="https://dashscope-intl.aliyuncs.com/compatible-mode/v1")
    )
    assert headers == {
        "User-Agent": ua,
        "X-DashScope-CacheControl": "enable",
        "X-DashScope-UserAgent": ua,
    }
    assert build_headers(config()) == {"User-Agent": ua}
    custom = build_headers(config(headers={"User-Agent": "mine", "X-Team": "a"}))
    assert custom == {"User-Agent": "mine", "X-Team": "a"}


# retry helpers


def test_retry_after_parsing() -> None:
    assert retry.retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry.retry_after_seconds({"retry-after": "0.5"}) == 0.5
    assert retry.retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry.retry_after_seconds({}) is None
    assert retry.retry_after_seconds({"retry-after": "soon"}) is None
    date = email.utils.formatdate(1_000_010, usegmt=True)
    assert retry.retry_after_seconds({"retry-after": date}, now=1_000_000) == 10.0
    assert retry.retry_after_seconds({"retry-after": date}, now=2_000_000) == 0.0


def test_backoff_is_full_jitter_and_capped() -> None:
    for attempt in range(8):
        delay = retry.backoff_delay(attempt, base=1.0, cap=30.0)
        assert 0 <= delay <= min(30.0, 2**attempt)
    failure = retry.Failure(retry.make_error("rate_limit", "x"), 429, retry_after_s=120)
    assert retry.retry_delay(failure, 0, config(max_retry_wait_s=5)) == 5


@pytest.mark.parametrize(
    ("status", "message", "kind", "retryable"),
    [
        (401, "", "auth", False),
        (403, "", "auth", False),
        (404, "", "not_found", False),
        (429, "", "rate_limit", True),
        (500, "", "server", True),
        (502, "", "server", True),
        (503, "", "overloaded", True),
        (504, "", "server", True),
        (529, "", "overloaded", True),
        (408, "", "timeout", True),
        (400, "This model's maximum context length is 32768 tokens.", "context_overflow", False),
        (400, "Range of input length should be [1, 997952]", "context_overflow", False),
        (413, "", "context_overflow", False),
        (400, "messages[3].content: invalid type", "bad_request", False),
        (422, "unprocessable", "bad_request", False),
    ],
)
def test_status_classification(status: int, message: str, kind: str, retryable: bool) -> None:
    error = retry.status_error(status, message, config())
    assert (error.kind, error.retryable) == (kind, retryable)
    if message:
        assert message in error.message


def test_auth_error_names_the_key_source() -> None:
    error = retry.status_error(401, "Incorrect API key", config(api_key_source="DASHSCOPE_API_KEY"))
    assert error.message.startswith(
        "The server at http://127.0.0.1:9/v1 rejected the API key from DASHSCOPE_API_KEY (401)"
    )
    assert error.hint is not None and "DASHSCOPE_API_KEY" in error.hint
    assert error.exit_code == 41
    missing = retry.status_error(401, "", config(api_key=""))
    assert "none was set" in missing.message


def test_server_message_shapes() -> None:
    assert retry.server_message({"error": {"message": "boom"}}) == "boom"
    assert retry.server_message({"message": "flat"}) == "flat"
    assert retry.server_message({"detail": "fastapi"}) == "fastapi"
    assert retry.server_message({"error": "just text"}) == "just text"
    assert retry.server_message("  <html>oops</html> ") == "<html>oops</html>"
    assert retry.server_message(None, "fallback") == "fallback"


# server-sent events

SSE_BODIES = [
    b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n',
    b'data: {"a":1}\r\n\r\ndata: {"b":"\xc3\xa9\xe4\xb8\xad"}\r\n\r\n',
    b'data: {"a":1}\r\rdata: {"b":2}\r\r',
    b': comment\nevent: message\nid: 3\ndata: {"a":\ndata: 1}\n\ndata:{"c":3}\n\n',
    b'data: {"a":1}\n\ndata: {"unterminated":1}',
]


@pytest.mark.parametrize("raw", SSE_BODIES)
def test_events_do_not_depend_on_how_the_bytes_arrive(raw: bytes) -> None:
    whole = EventReader()
    expected = whole.feed(raw) + whole.finish()
    for size in (1, 2, 3, 7):
        reader = EventReader()
        events = [e for i in range(0, len(raw), size) for e in reader.feed(raw[i : i + size])]
        assert events + reader.finish() == expected


def test_events_and_their_chunks() -> None:
    reader = EventReader()
    events = reader.feed(SSE_BODIES[3]) + reader.finish()
    assert events == [Event(event="message", data='{"a":\n1}'), Event(event=None, data='{"c":3}')]
    assert [chunk_of(e) for e in events] == [{"a": 1}, {"c": 3}]
    reader = EventReader()
    assert reader.feed(SSE_BODIES[4]) + reader.finish() == [Event(event=None, data='{"a":1}')]
    assert is_done(Event(event=None, data="[DONE]"))


def test_an_error_object_in_the_stream_raises() -> None:
    with pytest.raises(StreamError) as info:
        chunk_of(Event(event=None, data='{"error": {"message": "Overloaded", "code": 529}}'))
    error = {"message": "Overloaded", "code": 529}
    assert (info.value.message, info.value.body) == ("Overloaded", error)
    with pytest.raises(StreamError, match="An error occurred during streaming"):
        chunk_of(Event(event=None, data='{"error": "boom"}'))
    assert chunk_of(Event(event=None, data='{"error": null, "a": 1}')) == {"error": None, "a": 1}
    with pytest.raises(ValueError):
        chunk_of(Event(event=None, data="{not json"))
