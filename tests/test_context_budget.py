"""The context budget: token estimates, server-usage anchoring, limits, overflow parsing
and the cap on single tool results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwen_code.agent.approval import HeadlessApprover
from qwen_code.agent.context import (
    DEFAULT_CHARS_PER_TOKEN,
    MESSAGE_OVERHEAD_TOKENS,
    ContextBudget,
    estimate_tokens,
    message_tokens,
    parse_overflow,
    schema_chars,
)
from qwen_code.agent.events import Compressed, ToolResult, UsageInfo
from qwen_code.config import Flags, load_settings, qwen_home, resolve_provider
from qwen_code.session.setup import open_session
from tests.fakeserver import FakeLLM, call, text, tool_turn

TOOLS = [{"type": "function", "function": {"name": "read_file", "parameters": {"x": "y" * 700}}}]


def test_message_estimate_counts_content_tool_calls_and_overhead() -> None:
    assert message_tokens({"role": "user", "content": ""}) == MESSAGE_OVERHEAD_TOKENS
    assert message_tokens({"role": "user", "content": "x" * 350}) == MESSAGE_OVERHEAD_TOKENS + 100
    call_message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "a" * 10, "arguments": "b" * 25}}
        ],
    }
    plain = message_tokens({"role": "assistant", "content": "a" * 10 + "b" * 25})
    assert message_tokens(call_message) > plain  # the tool-call markup costs tokens too
    parts = {"role": "user", "content": [{"type": "text", "text": "x" * 35}]}
    assert message_tokens(parts) == MESSAGE_OVERHEAD_TOKENS + 10
    assert estimate_tokens([parts, parts]) == 2 * message_tokens(parts)
    # A lower chars-per-token ratio (denser text) means more tokens.
    assert message_tokens({"role": "user", "content": "x" * 300}, 2.0) == 4 + 150


def test_estimate_without_usage_includes_the_tool_schemas() -> None:
    budget = ContextBudget(window=100_000)
    messages = [{"role": "system", "content": "s" * 700}, {"role": "user", "content": "hi"}]
    expected = estimate_tokens(messages) + -(-schema_chars(TOOLS) // DEFAULT_CHARS_PER_TOKEN)
    assert budget.estimate(messages, TOOLS) == expected
    assert budget.estimate(messages, TOOLS) > budget.estimate(messages, None)


def test_estimate_is_anchored_on_the_servers_usage() -> None:
    budget = ContextBudget(window=100_000)
    messages = [{"role": "system", "content": "s" * 7000}, {"role": "user", "content": "hi"}]
    messages.append({"role": "assistant", "content": "hello"})
    budget.observe(messages, TOOLS, UsageInfo(prompt_tokens=3000, completion_tokens=20))
    assert budget.estimate(messages, TOOLS) == 3020
    added = {"role": "user", "content": "x" * 1000}
    messages.append(added)
    assert budget.estimate(messages, TOOLS) == 3020 + message_tokens(added, budget.chars_per_token)
    # A rewritten history (a new list, or a reset) falls back to the heuristic.
    copy = list(messages)
    assert budget.estimate(copy, TOOLS) == budget.estimate_all(copy, TOOLS)
    budget.reset()
    assert budget.estimate(messages, TOOLS) == budget.estimate_all(messages, TOOLS)


def test_ratio_is_calibrated_conservatively_from_usage() -> None:
    budget = ContextBudget()
    messages = [{"role": "user", "content": "x" * 40_000}, {"role": "assistant", "content": ""}]
    budget.observe(messages, None, UsageInfo(prompt_tokens=10_004, completion_tokens=1))
    assert budget.chars_per_token == pytest.approx(4.0 * 0.9)
    # Tiny requests are dominated by template overhead and do not move the ratio.
    budget.observe(messages[:1] + messages, None, UsageInfo(prompt_tokens=50))
    assert budget.chars_per_token == pytest.approx(3.6)


def test_limits() -> None:
    budget = ContextBudget(window=100_000, threshold=0.7)
    assert budget.reserve == 8192
    assert budget.hard_limit == 100_000 - 8192
    assert budget.trigger == 70_000
    assert not budget.needs_compression(70_000)
    assert budget.needs_compression(70_001)
    small = ContextBudget(window=10_000, max_output_tokens=1000)
    assert small.reserve == 1000
    capped = ContextBudget(window=10_000)
    assert capped.reserve == 2000  # at most 20% of the window
    off = ContextBudget(window=100_000, threshold=0)
    assert not off.needs_compression(90_000)
    assert off.needs_compression(95_000)  # still never sends what cannot fit
    unknown = ContextBudget(window=None)
    assert unknown.hard_limit is None
    assert not unknown.needs_compression(10**9)


def test_a_compression_that_could_not_get_under_the_threshold_is_not_repeated() -> None:
    budget = ContextBudget(window=100_000, threshold=0.7)
    budget.settled(80_000)
    assert not budget.needs_compression(85_000)
    assert budget.needs_compression(91_000)  # over the hard limit
    budget.settled(30_000)
    assert budget.needs_compression(75_000)


def test_targets() -> None:
    budget = ContextBudget(window=100_000, threshold=0.7)
    targets = budget.targets(80_000, "threshold", base=10_000)
    assert (targets.goal, targets.limit, targets.ceiling) == (40_000, 70_000, 91_808)
    unknown = ContextBudget().targets(50_000, "overflow", base=10_000)
    assert (unknown.goal, unknown.limit, unknown.ceiling) == (22_500, 35_000, 35_000)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "This model's maximum context length is 8192 tokens. However, your messages "
            "resulted in 9000 tokens. Please reduce the length of the messages.",
            (8192, 9000),
        ),
        (
            "This model's maximum context length is 32768 tokens. However, you requested "
            "40000 tokens (39000 in the messages, 1000 in the completion).",
            (32768, 39000),
        ),
        (
            "The input (70000 tokens) is longer than the model's context length (65536 tokens).",
            (65536, 70000),
        ),
        (
            "request (9000 tokens) exceeds the available context size (8192 tokens)",
            (8192, 9000),
        ),
        ("Range of input length should be [1, 129024]", (129024, None)),
        ("prompt is too long", (None, None)),
    ],
)
def test_parse_overflow(message: str, expected: tuple[int | None, int | None]) -> None:
    assert parse_overflow(message) == expected


def test_learn_overflow_shrinks_the_window_and_recalibrates() -> None:
    budget = ContextBudget(window=262_144)
    messages = [{"role": "user", "content": "x" * 27_000}]
    actual = budget.learn_overflow(
        "maximum context length is 8192 tokens. However, your messages resulted in 9004 tokens",
        messages,
        None,
    )
    assert actual == 9004
    assert budget.window == 8192
    assert budget.chars_per_token == pytest.approx(3.0 * 0.9)


def test_cap_tool_output_keeps_head_and_tail() -> None:
    budget = ContextBudget(window=10_000)
    cap = budget.tool_output_cap()
    assert cap == int(10_000 * 0.25 * DEFAULT_CHARS_PER_TOKEN)
    assert budget.cap_tool_output("short") == "short"
    lines = "".join(f"line {i:05d}\n" for i in range(5000))
    capped = budget.cap_tool_output(lines, "/tmp/full.log")
    assert len(capped) < cap + 300
    assert capped.startswith("line 00000\n")
    assert capped.rstrip().endswith("line 04999")
    assert "characters omitted" in capped
    assert "/tmp/full.log" in capped
    assert ContextBudget().cap_tool_output(lines) == lines  # window unknown: tools' caps only


def test_compressed_event_shape() -> None:
    event = Compressed(before_tokens=10, after_tokens=5, method="summary")
    assert event.type == "compressed"
    assert event.reason == "threshold"


async def test_a_huge_tool_result_is_capped_in_the_history(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    settings = load_settings(Flags(yolo=True), cwd=root)
    settings.model.generation_config.context_window_size = 16_000
    settings.tools.truncate_tool_output_threshold = 100_000
    settings.tools.truncate_tool_output_lines = 100_000
    session = await open_session(
        settings,
        resolve_provider(settings),
        cwd=root,
        home=qwen_home(),
        approver=HeadlessApprover("yolo"),
    )
    fake_llm.script(tool_turn(call("run_shell_command", command="seq 1 30000")), text("ok"))
    try:
        events = [e async for e in session.agent.run("count")]
    finally:
        await session.aclose()
    (result,) = [e for e in events if isinstance(e, ToolResult)]
    body = fake_llm.chat_requests[1].body
    assert body is not None
    tool_message = body["messages"][-1]
    assert tool_message["role"] == "tool"
    assert tool_message["content"] == result.output  # the event shows what the model saw
    # A quarter of the window, at the calibrated chars-per-token ratio (about 3.5 here).
    assert len(tool_message["content"]) < 16_000 * 0.25 * 4
    assert "characters omitted" in tool_message["content"]
    assert "30000" in tool_message["content"]  # the tail is kept
    assert json.dumps(body).count("\\n1\\n2\\n3\\n") == 1  # and the head
