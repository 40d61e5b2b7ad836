"""The reply's token limit: a `max_tokens` default that suits the model and leaves room in
the window, dropped when a server refuses it, and enforced on the stream, so that a server
that ignores it and streams forever ends the run with a clear error instead of a hang."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qwen_code.config import Flags, load_settings, qwen_home, resolve_provider
from qwen_code.errors import ExitCode, ModelError
from qwen_code.llm.client import ChatClient
from qwen_code.llm.types import ModelConfig, StreamItem, TextChunk
from qwen_code.session.setup import model_config
from qwen_code.ui.headless import run_headless
from tests.fakefaults import CONTEXT_OVERFLOW_MESSAGE
from tests.fakeserver import FakeLLM, HTTPError, Turn, call, error_body, text, tool_turn
from tests.helpers import bodies
from tests.llm_helpers import MESSAGES, make_config

HUNG = 120
"""Seconds after which a run counts as hung (only stops a broken test)."""
VLLM_REFUSAL = (
    "This model's maximum context length is 32768 tokens. However, you requested 65636 "
    "tokens (100 in the messages, 65536 in the completion). Please reduce the length of the "
    "messages or completion."
)


def user_settings(**generation: Any) -> None:
    home = Path(os.environ["QWEN_HOME"])
    body = {"model": {"generationConfig": generation}}
    (home / "settings.json").write_text(json.dumps(body), encoding="utf-8")


def config_for(model: str, tmp_path: Path) -> ModelConfig:
    settings = load_settings(Flags(), cwd=tmp_path)
    return model_config(settings, resolve_provider(settings), model)


async def headless(workspace: Path, prompt: str = "go") -> tuple[int, dict[str, Any], str]:
    settings = load_settings(Flags(yolo=True), cwd=workspace)
    out, err = io.StringIO(), io.StringIO()
    code = await run_headless(
        settings,
        resolve_provider(settings),
        prompt,
        output_format="json",
        cwd=workspace,
        out=out,
        err=err,
        home=qwen_home(),
    )
    return code, json.loads(out.getvalue()), err.getvalue()


# The default sent as max_tokens.


def test_default_output_limit_suits_the_model(tmp_path: Path) -> None:
    limits = {
        model: (config.output_limit, config.context_window)
        for model in (
            "qwen3-coder-plus",
            "unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF",
            "llama-3.1-70b",
        )
        for config in [config_for(model, tmp_path)]
    }
    assert limits == {
        "qwen3-coder-plus": (65_536, 1_000_000),
        "unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF": (65_536, 262_144),
        "llama-3.1-70b": (32_768, None),
    }
    user_settings(contextWindowSize=16_384)
    small = config_for("llama-3.1-70b", tmp_path)
    assert (small.output_limit, small.context_window) == (8_192, 16_384)


async def test_first_request_carries_the_default(
    tmp_path: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_llm.script(text("one"))
    assert (await headless(tmp_path))[0] == ExitCode.OK
    assert bodies(fake_llm)[-1]["max_tokens"] == 65_536

    monkeypatch.setenv("OPENAI_MODEL", "my-model")
    fake_llm.script(text("two"))
    assert (await headless(tmp_path))[0] == ExitCode.OK
    assert bodies(fake_llm)[-1]["max_tokens"] == 32_768

    user_settings(samplingParams={"max_tokens": 4_096})
    fake_llm.script(text("three"))
    assert (await headless(tmp_path))[0] == ExitCode.OK
    assert bodies(fake_llm)[-1]["max_tokens"] == 4_096  # the user's setting wins


async def test_default_leaves_room_for_the_prompt(fake_llm: FakeLLM) -> None:
    config = make_config(fake_llm.base_url, output_limit=20_000, context_window=40_000)
    long = [{"role": "user", "content": "word " * 12_000}]  # 60,000 characters
    huge = [{"role": "user", "content": "word " * 24_000}]
    fake_llm.script(text("a"), text("b"), text("c"))
    async with ChatClient(config) as client:
        for messages in (MESSAGES, long, huge):
            await client.complete(messages)
    short, fitted, crowded = bodies(fake_llm)
    assert short["max_tokens"] == 20_000
    assert 1_024 <= fitted["max_tokens"] <= 40_000 - 60_000 // 3
    assert "max_tokens" not in crowded  # too little room: the server's own default


async def test_the_servers_window_is_used(fake_llm: FakeLLM) -> None:
    fake_llm.max_model_len = 32_768
    fake_llm.script(text("a"))
    async with ChatClient(make_config(fake_llm.base_url, output_limit=65_536)) as client:
        await client.list_models()
        await client.complete(MESSAGES)
    assert 30_000 < bodies(fake_llm)[0]["max_tokens"] < 32_768


async def test_a_refused_default_is_dropped_for_the_session(fake_llm: FakeLLM) -> None:
    fake_llm.script(HTTPError(400, error_body(VLLM_REFUSAL, 400)), text("ok"), text("again"))
    async with ChatClient(make_config(fake_llm.base_url, output_limit=65_536)) as client:
        assert (await client.complete(MESSAGES)).text == "ok"
        assert (await client.complete(MESSAGES)).text == "again"
    first, second, third = bodies(fake_llm)
    assert first["max_tokens"] == 65_536
    assert "max_tokens" not in second and "max_tokens" not in third


async def test_a_refused_user_max_tokens_is_reported(fake_llm: FakeLLM) -> None:
    fake_llm.script(HTTPError(400, error_body(VLLM_REFUSAL, 400)))
    async with ChatClient(make_config(fake_llm.base_url, max_tokens=65_536)) as client:
        with pytest.raises(ModelError) as info:
            await client.complete(MESSAGES)
    assert info.value.kind == "context_overflow"
    assert len(fake_llm.chat_requests) == 1


async def test_a_prompt_too_long_is_not_blamed_on_max_tokens(fake_llm: FakeLLM) -> None:
    fake_llm.script(HTTPError(400, error_body(CONTEXT_OVERFLOW_MESSAGE, 400)), text("unused"))
    async with ChatClient(make_config(fake_llm.base_url, output_limit=1_000)) as client:
        with pytest.raises(ModelError) as info:
            await client.complete(MESSAGES)
    assert info.value.kind == "context_overflow"  # the agent compresses and retries
    assert len(fake_llm.chat_requests) == 1


# A server that ignores the limit.


async def endless(config: ModelConfig, turn: Turn, fake: FakeLLM) -> tuple[ModelError, int]:
    """Stream `turn` (a `forever` one); the error that ends it and the text chunks seen."""
    fake.script(turn)
    seen: list[StreamItem] = []

    async def drain() -> None:
        async with ChatClient(config) as client:
            async for item in client.stream_chat(MESSAGES, None):
                seen.append(item)

    with pytest.raises(ModelError) as info:
        await asyncio.wait_for(drain(), HUNG)
    return info.value, sum(isinstance(i, TextChunk) for i in seen)


async def test_endless_reply_stops_with_a_clear_error(fake_llm: FakeLLM) -> None:
    config = make_config(fake_llm.base_url, max_tokens=200)
    error, _ = await endless(config, Turn(text="la la la", forever=True), fake_llm)
    assert error.kind == "output_limit" and not error.retryable
    assert error.message == "The model's reply exceeded 200 tokens without finishing; stopped."
    assert "max_tokens" in (error.hint or "")
    assert len(fake_llm.chat_requests) == 1  # not retried

    config = make_config(fake_llm.base_url, output_limit=300)
    error, _ = await endless(config, Turn(text="la la la", forever=True), fake_llm)
    assert "exceeded 300 tokens" in error.message
    assert bodies(fake_llm)[-1]["max_tokens"] == 300


async def test_endless_reply_with_usage_stops_by_the_servers_count(fake_llm: FakeLLM) -> None:
    config = make_config(fake_llm.base_url, max_tokens=500)
    turn = Turn(text="la", chunk_words=1, forever=True, forever_usage=True)
    error, chunks = await endless(config, turn, fake_llm)
    assert error.kind == "output_limit"
    assert 500 < chunks <= 500 + 50 + 64  # the server's count, past the limit by a tenth


def test_endless_reply_ends_the_headless_run(tmp_path: Path, fake_llm: FakeLLM) -> None:
    user_settings(samplingParams={"max_tokens": 300})
    # different words throughout: a repeating reply is the loop detector's, not this limit's
    fake_llm.script(Turn(text=" ".join(f"word{i}" for i in range(2000)), forever=True))
    result = subprocess.run(
        [sys.executable, "-m", "qwen_code", "-p", "go", "-o", "json"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=HUNG,
    )
    assert result.returncode == ExitCode.MAX_TOKENS, result.stderr
    report = json.loads(result.stdout)
    assert report["is_error"] is True
    assert report["subtype"] == "error_max_tokens"
    assert "The model's reply exceeded 300 tokens without finishing; stopped." in report["error"]
    assert len(fake_llm.chat_requests) == 1


# The retry of a reply cut off in a tool call, with the defaults.

WRITE = call("write_file", file_path="out.py", content="print('hello')\n" * 20)


async def test_cut_tool_call_is_retried_when_below_65536(
    tmp_path: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_MODEL", "my-model")  # default 32,768: room to retry with more
    fake_llm.script(tool_turn(WRITE, cut_at=20), tool_turn(WRITE), text("Written."))
    code, report, _ = await headless(tmp_path)
    assert (code, report["result"]) == (ExitCode.OK, "Written.")
    assert [b["max_tokens"] for b in bodies(fake_llm)] == [32_768, 65_536, 32_768]
    assert (tmp_path / "out.py").read_text() == "print('hello')\n" * 20


async def test_cut_tool_call_at_65536_goes_back_to_the_model(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(tool_turn(WRITE, cut_at=20), tool_turn(WRITE), text("Written."))
    code, report, _ = await headless(tmp_path)
    assert (code, report["result"]) == (ExitCode.OK, "Written.")
    first, second, _ = bodies(fake_llm)
    assert first["max_tokens"] == second["max_tokens"] == 65_536
    results = [m["content"] for m in second["messages"] if m["role"] == "tool"]
    assert len(results) == 1 and "cut off" in results[0]
