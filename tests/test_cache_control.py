"""DashScope explicit caching: `cache_control` markers in the request body, never in the
stored conversation, only for DashScope endpoints and only when enabled."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from qwen_code.agent.approval import HeadlessApprover
from qwen_code.config import Flags, load_settings, qwen_home, resolve_provider
from qwen_code.llm import client as client_module
from qwen_code.llm.client import ChatClient, build_request, with_string_content
from qwen_code.llm.types import ModelConfig
from qwen_code.session.setup import open_session
from tests.fakeserver import FakeLLM, text

DASHSCOPE = "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
EPHEMERAL = {"type": "ephemeral"}

TOOLS = [
    {"type": "function", "function": {"name": "read_file", "parameters": {}}},
    {"type": "function", "function": {"name": "edit", "parameters": {}}},
]


def config(base_url: str = DASHSCOPE) -> ModelConfig:
    return ModelConfig(base_url=base_url, api_key="k", model="qwen3-coder-plus")


def conversation() -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "Fix the bug."},
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
        {"role": "tool", "tool_call_id": "call_1", "content": "A = 1\n"},
    ]


def marked(content: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content, "cache_control": EPHEMERAL}]


def test_markers_on_system_last_message_and_last_tool() -> None:
    messages = conversation()
    before = copy.deepcopy(messages)
    body = build_request(config(), messages, TOOLS, cache_control=True)
    sent = body["messages"]
    assert sent[0] == {"role": "system", "content": marked("You are a coding agent.")}
    assert sent[1] == messages[1]  # unmarked messages are passed as they are
    assert sent[1] is messages[1]
    assert sent[2] is messages[2]
    assert sent[3] == {"role": "tool", "tool_call_id": "call_1", "content": marked("A = 1\n")}
    assert body["tools"][0] == TOOLS[0]
    assert body["tools"][1] == {**TOOLS[1], "cache_control": EPHEMERAL}
    # Never the stored conversation, nor the caller's tool schemas.
    assert messages == before
    assert sent is not messages
    assert "cache_control" not in TOOLS[1]
    assert json.dumps(body).count('"cache_control"') == 3


def test_last_message_without_content_marks_the_one_before() -> None:
    messages = conversation()[:3]  # ends with an assistant message holding only tool calls
    body = build_request(config(), messages, None, cache_control=True)
    sent = body["messages"]
    assert sent[1] == {"role": "user", "content": marked("Fix the bug.")}
    assert sent[2] is messages[2]
    assert "tools" not in body
    # Only a system message that can be marked: marked once.
    only_system = [{"role": "system", "content": "S"}, {"role": "assistant", "content": ""}]
    body = build_request(config(), only_system, [], cache_control=True)
    assert body["messages"][0] == {"role": "system", "content": marked("S")}
    assert body["messages"][1] is only_system[1]


def test_list_content_marks_its_last_block() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    user = {"role": "user", "content": [{"type": "text", "text": "look"}, image]}
    messages = [{"role": "system", "content": "S"}, user]
    before = copy.deepcopy(messages)
    sent = build_request(config(), messages, None, cache_control=True)["messages"]
    assert sent[1]["content"] == [
        {"type": "text", "text": "look"},
        {**image, "cache_control": EPHEMERAL},
    ]
    assert messages == before


@pytest.mark.parametrize(
    ("base_url", "enabled"),
    [
        (DASHSCOPE, False),
        ("http://127.0.0.1:8000/v1", True),
        ("https://openrouter.ai/api/v1", True),
        ("https://api.example.com/dashscope/v1", True),
    ],
)
def test_no_markers_when_disabled_or_not_dashscope(base_url: str, enabled: bool) -> None:
    messages = conversation()
    body = build_request(config(base_url), messages, TOOLS, cache_control=enabled)
    assert body["messages"] in (messages, with_string_content(messages))  # "" for null: local
    assert "cache_control" not in json.dumps(body)


@pytest.mark.parametrize(
    "base_url",
    [
        "https://dashscope.aliyuncs.com/compatible-mode/v1",
        "https://dashscope-us.aliyuncs.com/compatible-mode/v1",
        "https://cn-hongkong.dashscope.aliyuncs.com/compatible-mode/v1",
    ],
)
def test_markers_for_every_dashscope_region(base_url: str) -> None:
    body = build_request(config(base_url), conversation(), TOOLS, cache_control=True)
    assert json.dumps(body).count('"cache_control"') == 3


async def test_client_sends_markers_over_http(
    fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake server stands in for DashScope: the recorded body carries the markers."""
    monkeypatch.setattr(client_module, "is_dashscope", lambda url: True)
    fake_llm.script(text("ok"))
    messages = conversation()
    before = copy.deepcopy(messages)
    cfg = ModelConfig(base_url=fake_llm.base_url, api_key="k", model="qwen3-coder-plus")
    async with ChatClient(cfg, cache_control=True) as chat:
        await chat.complete(messages, TOOLS)
    recorded = fake_llm.chat_requests[-1]
    assert recorded.body is not None
    assert recorded.body["messages"][0]["content"] == marked("You are a coding agent.")
    assert recorded.body["messages"][-1]["content"] == marked("A = 1\n")
    assert recorded.body["tools"][-1]["cache_control"] == EPHEMERAL
    assert recorded.headers.get("x-dashscope-cachecontrol") == "enable"
    assert messages == before


async def test_setting_reaches_the_session_client(tmp_path: Path, fake_llm: FakeLLM) -> None:
    settings_dir = tmp_path / ".qwen"
    settings_dir.mkdir()
    (settings_dir / "settings.json").write_text(
        json.dumps({"model": {"generationConfig": {"enableCacheControl": True}}})
    )
    for enabled in (True, False):
        if not enabled:
            (settings_dir / "settings.json").write_text("{}")
        settings = load_settings(Flags(), cwd=tmp_path)
        session = await open_session(
            settings,
            resolve_provider(settings),
            cwd=tmp_path,
            home=qwen_home(),
            approver=HeadlessApprover("yolo"),
        )
        try:
            assert session.client.cache_control is enabled
            # The fake server is not DashScope: nothing is marked even when enabled.
            fake_llm.script(text("hi"))
            async for _ in session.agent.run("hello"):
                pass
            body = fake_llm.chat_requests[-1].body
            assert body is not None
            assert "cache_control" not in json.dumps(body)
            assert isinstance(session.agent.conversation.messages[0]["content"], str)
        finally:
            await session.aclose()
