"""The agent against local servers: the start-up probe (llama.cpp /props, vLLM /v1/models),
the tools-dropped warning, and the first-chunk wait that grows with the prompt.

Over real HTTP: the scripted server plays llama.cpp (`props`) or vLLM (`owned_by`,
`max_model_len`); a hosted API is reached through an HTTP proxy that records what it gets.
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from qwen_code.agent.approval import HeadlessApprover
from qwen_code.config import Flags, load_settings, qwen_home, resolve_provider
from qwen_code.errors import ModelError
from qwen_code.llm.client import ChatClient
from qwen_code.llm.server_probe import (
    TOOLS_DROPPED_NOTE,
    ServerInfo,
    first_chunk_timeout,
    is_local_url,
    probe_paths,
    probe_server,
    read_models,
    read_props,
)
from qwen_code.llm.types import PromptWait
from qwen_code.session.live import Session
from qwen_code.session.setup import open_session
from qwen_code.ui.headless_outcome import RunInfo
from qwen_code.ui.render import PROCESSING, EventRenderer
from qwen_code.ui.stream_json_shapes import init_message
from tests.fakeserver import FakeLLM, Turn, text
from tests.helpers import make_repo, run_qwen_code
from tests.llm_helpers import MESSAGES, collect, final, make_config

NO_TOOLS_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n"
)
TOOLS_TEMPLATE = (
    "{% if tools %}<tools>{% for tool in tools %}{{ tool | tojson }}{% endfor %}</tools>"
    "{% endif %}" + NO_TOOLS_TEMPLATE
)


def llama_props(template: str, n_ctx: int = 8192, **extra: Any) -> dict[str, Any]:
    """What llama.cpp's GET /props answers (the fields the probe reads, and some others)."""
    return {
        "default_generation_settings": {"n_ctx": n_ctx, "params": {"temperature": 0.8}},
        "total_slots": 1,
        "model_path": "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
        "chat_template": template,
        "build_info": "b6000-deadbeef",
        **extra,
    }


async def open_on(cwd: Path, **settings_changes: Any) -> Session:
    settings = load_settings(Flags(), cwd=cwd)
    for name, value in settings_changes.items():
        setattr(settings.model.generation_config, name, value)
    return await open_session(
        settings,
        resolve_provider(settings),
        cwd=cwd,
        home=qwen_home(),
        approver=HeadlessApprover(settings.tools.approval_mode),
    )


# --- which servers, and what they say -----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8080/v1", True),
        ("http://localhost:8000/v1", True),
        ("http://[::1]:8000/v1", True),
        ("http://192.168.1.20:8000/v1", True),
        ("http://10.0.0.5/v1", True),
        ("http://172.20.3.4:30000/v1", True),
        ("http://100.101.102.103:8080/v1", True),  # Tailscale
        ("http://gpu-box.local:8080/v1", True),
        ("http://llama:8080/v1", True),  # a container's name
        ("https://dashscope.aliyuncs.com/compatible-mode/v1", False),
        ("https://dashscope-intl.aliyuncs.com/compatible-mode/v1", False),
        ("https://openrouter.ai/api/v1", False),
        ("https://api.openai.com/v1", False),
        ("http://8.8.8.8/v1", False),
        ("not a url", False),
    ],
)
def test_local_servers(url: str, local: bool) -> None:
    assert is_local_url(url) is local


def test_first_chunk_wait_grows_with_the_prompt_up_to_a_cap() -> None:
    # 3,940 prompt tokens (25.7 s cold on a CPU engine): 120 s + 79 s.
    assert first_chunk_timeout(120, 3940, rate=50, cap_s=1800) == pytest.approx(198.8)
    assert first_chunk_timeout(120, 0, rate=50, cap_s=1800) == 120
    assert first_chunk_timeout(120, 1_000_000, rate=50, cap_s=1800) == 1800
    assert first_chunk_timeout(2000, 1_000_000, rate=50, cap_s=1800) == 2000  # never below
    assert first_chunk_timeout(120, 3940, rate=0, cap_s=1800) == 120  # turned off


def test_props_caps_decide_when_present() -> None:
    caps = {"supports_tools": False, "supports_tool_calls": False, "supports_system_role": True}
    info = read_props(llama_props(TOOLS_TEMPLATE, chat_template_caps=caps))
    assert info == ServerInfo(kind="llama.cpp", tools=False, context_window=8192)
    caps = {"supports_tools": True, "supports_tool_calls": True}
    info = read_props(llama_props(NO_TOOLS_TEMPLATE, chat_template_caps=caps))
    assert info is not None and info.tools is True


def test_props_template_text_decides_without_a_verdict() -> None:
    other_caps = {"supports_preserve_reasoning": True}  # says nothing about tools
    info = read_props(llama_props(NO_TOOLS_TEMPLATE, chat_template_caps=other_caps))
    assert info is not None and info.tools is False
    info = read_props(llama_props(TOOLS_TEMPLATE))
    assert info is not None and info.tools is True
    assert read_props(llama_props("{{ message.tool_calls }}")).tools is True  # type: ignore[union-attr]


def test_props_without_jinja_cannot_take_tools() -> None:
    info = read_props(llama_props(TOOLS_TEMPLATE, use_jinja=False))
    assert info is not None and (info.tools, info.jinja) == (False, False)
    assert info.to_json() == {
        "kind": "llama.cpp",
        "tools": False,
        "context_window": 8192,
        "jinja": False,
    }


def test_not_llama_cpp_props() -> None:
    assert read_props({"detail": "Not Found"}) is None


def test_models_list() -> None:
    page = {"data": [{"id": "m", "owned_by": "vllm", "max_model_len": 32768}]}
    assert read_models(page, "m") == ServerInfo(kind="vllm", context_window=32768)
    sglang = [{"id": "m", "owned_by": "sglang", "max_model_len": 65536}]
    assert read_models(sglang, "m") == ServerInfo(kind="sglang", context_window=65536)
    assert read_models(page, "other") is None
    plain = {"data": [{"id": "m", "owned_by": "someone"}]}
    assert read_models(plain, "m") == ServerInfo(kind="openai-compatible")


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("http://h:8080/v1", ("http://h:8080/", "props", "v1/models")),
        ("http://h:8080/v1/", ("http://h:8080/", "props", "v1/models")),
        ("http://h:8080", ("http://h:8080/", "props", "models")),
        ("http://h/llama/v1", ("http://h/", "llama/props", "llama/v1/models")),
    ],
)
def test_probe_paths(base: str, expected: tuple[str, str, str]) -> None:
    assert probe_paths(base) == expected


# --- the probe over HTTP ------------------------------------------------------------------


async def test_probe_asks_llama_cpp_props_at_the_root(fake_llm: FakeLLM) -> None:
    fake_llm.props = llama_props(NO_TOOLS_TEMPLATE, n_ctx=4096)
    info = await probe_server(fake_llm.base_url, model="x", api_key="k", headers={})
    assert info == ServerInfo(kind="llama.cpp", tools=False, context_window=4096)
    assert [r.path for r in fake_llm.requests] == ["/props"]  # n_ctx known: no /v1/models


async def test_probe_reads_vllm_models(fake_llm: FakeLLM) -> None:
    fake_llm.owned_by, fake_llm.max_model_len = "vllm", 32768
    info = await probe_server(fake_llm.base_url, model="qwen3-coder-plus", api_key="k", headers={})
    assert info == ServerInfo(kind="vllm", context_window=32768)
    assert [r.path for r in fake_llm.requests] == ["/props", "/v1/models"]
    assert fake_llm.requests[0].headers["authorization"] == "Bearer k"


async def test_probe_gives_up_quickly_and_quietly(fake_llm: FakeLLM) -> None:
    fake_llm.models_delay_s = 5
    started = time.monotonic()
    info = await probe_server(
        fake_llm.base_url, model="qwen3-coder-plus", api_key="k", headers={}, timeout_s=0.3
    )
    assert info is None
    assert time.monotonic() - started < 2


async def test_nothing_listening_is_no_error() -> None:
    info = await probe_server("http://127.0.0.1:9/v1", model="m", api_key="k", headers={})
    assert info is None


async def test_hosted_apis_are_never_probed(
    fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every request to the hosted API goes through the scripted server as an HTTP proxy:
    the client's own model list does, the probe sends none."""
    monkeypatch.setenv("HTTP_PROXY", fake_llm.base_url.removesuffix("/v1"))
    hosted = "http://dashscope.aliyuncs.com/compatible-mode/v1"
    assert await probe_server(hosted, model="qwen3-coder-plus", api_key="k", headers={}) is None
    assert fake_llm.requests == []
    async with ChatClient(make_config(hosted, max_retries=0)) as client:
        with pytest.raises(ModelError):  # the proxy answers 404: the request got there
            await client.list_models()
    assert [r.path for r in fake_llm.requests] == [f"{hosted}/models"]


# --- the session --------------------------------------------------------------------------


async def test_template_without_tools_warns_once_and_is_recorded(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.props = llama_props(NO_TOOLS_TEMPLATE)
    session = await open_on(make_repo(tmp_path / "repo"))
    try:
        assert session.notes.count(TOOLS_DROPPED_NOTE) == 1
        assert session.server == ServerInfo(kind="llama.cpp", tools=False, context_window=8192)
        assert session.context_window == 8192  # the server's, not the table's 1,000,000
        assert session.client.config.output_limit == 4096  # half the window: room for a prompt
        info = RunInfo(
            session_id=session.id,
            model=session.model,
            cwd=str(session.cwd),
            tools=session.registry.names(),
            permission_mode="default",
            version="0",
        )
        init = init_message(info, server=session.server.to_json())
        assert init["server"] == {"kind": "llama.cpp", "tools": False, "context_window": 8192}
        assert (init["type"], init["subtype"]) == ("system", "init")
    finally:
        await session.aclose()
    assert [r.path for r in fake_llm.requests] == ["/props"]


async def test_template_with_tools_no_warning(fake_llm: FakeLLM, tmp_path: Path) -> None:
    caps = {"supports_tools": True, "supports_tool_calls": True}
    fake_llm.props = llama_props(TOOLS_TEMPLATE, chat_template_caps=caps)
    session = await open_on(make_repo(tmp_path / "repo"))
    try:
        assert TOOLS_DROPPED_NOTE not in session.notes
        assert session.server is not None and session.server.tools is True
    finally:
        await session.aclose()


async def test_vllm_max_model_len_is_the_context_window(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.owned_by, fake_llm.max_model_len = "vllm", 32768
    fake_llm.script(text("ok"))
    session = await open_on(make_repo(tmp_path / "repo"))
    try:
        assert session.server == ServerInfo(kind="vllm", context_window=32768)
        assert session.context_window == 32768
        assert session.notes == []
        [_ async for _ in session.run("hi")]
    finally:
        await session.aclose()
    (request,) = fake_llm.chat_requests
    assert request.body is not None and request.body["max_tokens"] <= 16384  # fits 32768


async def test_settings_window_wins(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.owned_by, fake_llm.max_model_len = "vllm", 32768
    session = await open_on(make_repo(tmp_path / "repo"), context_window_size=16_000)
    try:
        assert session.server is not None and session.server.context_window == 32768
        assert session.context_window == 16_000
    finally:
        await session.aclose()


def test_headless_warns_on_stderr_once(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.props = llama_props(NO_TOOLS_TEMPLATE)
    fake_llm.script(text("Hello."))
    result = run_qwen_code(make_repo(tmp_path / "repo"), "-p", "hi", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count(TOOLS_DROPPED_NOTE) == 1
    assert json.loads(result.stdout)["result"] == "Hello."
    (request,) = fake_llm.chat_requests
    assert request.body is not None and request.body["tools"]  # still sent: the user decides


# --- the first chunk ----------------------------------------------------------------------

SLOW_FIRST_CHUNK_S = 1.0
BASE_TIMEOUT_S = 0.4


@pytest.mark.parametrize(
    "slow",
    [
        Turn(text="Done.", delay_s=SLOW_FIRST_CHUNK_S),  # no response headers yet
        Turn(text="Done.", stall_after=0, stall_s=SLOW_FIRST_CHUNK_S),  # headers, no chunk
    ],
    ids=["before-headers", "after-headers"],
)
async def test_slow_first_chunk_waited_for_in_proportion(fake_llm: FakeLLM, slow: Turn) -> None:
    """The prompt (~260 tokens, overstated) at 200 tokens/s earns 1.3 s more than the
    0.4 s base: a first chunk after 1 s arrives; with the plain timeout it times out."""
    fake_llm.script(slow, slow)
    waits: list[PromptWait] = []
    config = make_config(fake_llm.base_url, timeout_s=BASE_TIMEOUT_S, max_retries=0)
    config.first_chunk_rate = 200
    async with ChatClient(config) as client:
        client.on_prompt_wait = waits.append
        assert final(await collect(client, MESSAGES)).text == "Done."
    assert [w.done for w in waits] == [False, True]
    assert 1.5 < waits[0].timeout_s < 3
    assert waits[0].prompt_tokens > 256

    config.first_chunk_rate = 0  # unscaled
    async with ChatClient(config) as client:
        client.on_prompt_wait = waits.append
        with pytest.raises(ModelError, match=f"did not respond within {BASE_TIMEOUT_S:g} s"):
            await collect(client, MESSAGES)
    assert len(waits) == 2  # not told: the plain timeout applies


async def test_timeout_message_names_the_scaled_wait(fake_llm: FakeLLM) -> None:
    fake_llm.script(Turn(text="late", delay_s=2.0))
    config = make_config(fake_llm.base_url, timeout_s=0.2, max_retries=0)
    config.first_chunk_rate, config.first_chunk_cap_s = 100, 0.5
    async with ChatClient(config) as client:
        with pytest.raises(ModelError, match=r"did not respond within 0\.5 s"):
            await collect(client, MESSAGES)


async def test_hosted_servers_keep_the_plain_timeout() -> None:
    client = ChatClient(make_config("https://dashscope.aliyuncs.com/compatible-mode/v1"))
    assert client._prompt_wait(MESSAGES, None) is None


def test_spinner_says_the_prompt_is_being_processed() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, force_interactive=True)
    renderer = EventRenderer(console)
    renderer.start_turn()
    try:
        renderer.prompt_wait(PromptWait(prompt_tokens=3940, timeout_s=199))
        assert renderer.thinking.running and renderer.thinking.label == PROCESSING
        renderer.prompt_wait(PromptWait(prompt_tokens=3940, timeout_s=199, done=True))
        assert renderer.thinking.label == "Thinking"
        renderer.thinking.start("Running")  # a tool asks the model (web_fetch's summary)
        renderer.prompt_wait(PromptWait(prompt_tokens=900, timeout_s=140))
        assert renderer.thinking.label == PROCESSING
        renderer.prompt_wait(PromptWait(prompt_tokens=900, timeout_s=140, done=True))
        assert renderer.thinking.label == "Running"
    finally:
        renderer.abort()
    renderer.prompt_wait(PromptWait(prompt_tokens=1, timeout_s=1))  # no spinner: nothing
    assert not renderer.thinking.running


async def test_repl_listens_for_prompt_waits(repl: Any) -> None:
    shell, _ = repl
    assert shell.session.client.on_prompt_wait == shell.renderer.prompt_wait


def test_stream_json_init_records_the_server(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.props = llama_props(NO_TOOLS_TEMPLATE)
    fake_llm.script(text("Hello."))
    result = run_qwen_code(make_repo(tmp_path / "repo"), "-p", "hi", "-o", "stream-json")
    assert result.returncode == 0, result.stderr
    init = json.loads(result.stdout.splitlines()[0])
    assert (init["type"], init["subtype"]) == ("system", "init")
    assert init["server"] == {"kind": "llama.cpp", "tools": False, "context_window": 8192}


def test_stream_json_init_records_a_plain_server(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(text("Hello."))
    result = run_qwen_code(make_repo(tmp_path / "repo"), "-p", "hi", "-o", "stream-json")
    init = json.loads(result.stdout.splitlines()[0])
    assert init["server"] == {"kind": "openai-compatible", "tools": None, "context_window": 262144}


def test_a_serve_card_tells_what_the_server_does_not(tmp_path: Path, fake_llm: FakeLLM) -> None:
    """llama-cpp-python has no /props: the card `qwen-code serve` left says its model's
    chat template takes no tools. A card for another model on that port is not believed."""
    from qwen_code.llm.server_cards import ServerCard, write_card

    home = Path(os.environ["QWEN_HOME"])
    work = tmp_path / "work"
    work.mkdir()
    stale = ServerCard(base_url=fake_llm.base_url, model="other", engine="llama.cpp", tools=False)
    write_card(home, stale)
    fake_llm.script(text("hi"), text("hi"))
    quiet = run_qwen_code(work, "-p", "hi")
    assert "cannot take tools" not in quiet.stderr
    card = ServerCard(
        base_url=fake_llm.base_url, model="qwen3-coder-plus", engine="llama.cpp", tools=False
    )
    write_card(home, card)
    warned = run_qwen_code(work, "-p", "hi")
    assert warned.returncode == 0, warned.stderr
    assert "cannot take tools" in warned.stderr


def test_local_engines_get_a_string_content_with_tool_calls() -> None:
    """llama-cpp-python refuses `content: null` beside tool calls (a 500); hosted APIs get
    null, as the openai SDK sends it."""
    from qwen_code.llm.client import build_request

    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
    ]
    local = build_request(make_config(base_url="http://127.0.0.1:8080/v1"), messages, None)
    hosted = build_request(make_config(base_url="https://api.example.com/v1"), messages, None)
    assert local["messages"][1]["content"] == ""
    assert hosted["messages"][1]["content"] is None
    assert messages[1]["content"] is None  # the history itself is not changed
