"""A real engine on this machine: tokens/s and time to first token, straight from the server
(as curl sees it) and through the agent (`qwen-code -p`, process start to first streamed
text, which adds start-up and the agent's system prompt and tools to the prefill).

Starts `qwen-code serve --model GGUF --detach` on a free port and stops it at the end.

    .venv/bin/python benchmarks/engine_speed.py [--gguf FILE] [--runs 3]
    (default FILE: $QWEN_CODE_ENGINE_GGUF, as scripts/install-engine prints it)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PROMPT = "Write three sentences about the sea."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def qwen_code(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "qwen_code", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def direct(base_url: str, model: str) -> tuple[float, float, int]:
    """(time to first token, decode tokens/s, tokens) of one streamed request."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 96,
        "stream": True,
    }
    started = time.monotonic()
    first = last = 0.0
    tokens = 0
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=600) as reply:
        for line in reply.iter_lines():
            if not line.startswith("data: {"):
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
            if delta:
                now = time.monotonic()
                first = first or now
                last = now
                tokens += 1
    rate = (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0
    return first - started, rate, tokens


def through_agent(env: dict[str, str], cwd: Path) -> tuple[float, float, int]:
    """(time to first streamed text from process start, wall time, prompt tokens)."""
    started = time.monotonic()
    proc = qwen_code(
        "-p",
        PROMPT,
        "--output-format",
        "stream-json",
        "--include-partial-messages",
        "--max-turns",
        "1",
        env=env,
        cwd=cwd,
    )
    first = 0.0
    prompt_tokens = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        message = json.loads(line)
        if not first and message.get("type") == "stream_event" and "text" in json.dumps(message):
            first = time.monotonic() - started
        if message.get("type") == "result":
            prompt_tokens = message["usage"]["input_tokens"]
    proc.wait()
    return first, time.monotonic() - started, prompt_tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", default=os.environ.get("QWEN_CODE_ENGINE_GGUF"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not args.gguf:
        raise SystemExit("--gguf FILE (or QWEN_CODE_ENGINE_GGUF); scripts/install-engine gets one")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QWEN_"))}
        env["QWEN_HOME"] = str(root / "home")
        port = free_port()
        base_url = f"http://127.0.0.1:{port}/v1"
        started = time.monotonic()
        serve = qwen_code(
            "serve", "--model", args.gguf, "--port", str(port), "--detach", env=env, cwd=root
        )
        out, err = serve.communicate()
        if serve.returncode != 0:
            raise SystemExit(out + err)
        print(f"serve: ready in {time.monotonic() - started:.1f} s")
        try:
            model = httpx.get(f"{base_url}/models").json()["data"][0]["id"]
            direct(base_url, model)  # warm up
            runs = [direct(base_url, model) for _ in range(args.runs)]
            ttft = statistics.median(r[0] for r in runs)
            rate = statistics.median(r[1] for r in runs)
            print(f"direct (curl-like): TTFT {ttft * 1000:.0f} ms, decode {rate:.1f} tokens/s")
            agent_env = {**env, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "none"}
            agent = [through_agent(agent_env, root) for _ in range(args.runs)]
            firsts = ", ".join(f"{a[0]:.2f}" for a in agent)
            print(
                f"through the agent: first text {firsts} s after process start (the first run "
                f"cold, then the engine's prompt cache), run "
                f"{statistics.median(a[1] for a in agent):.2f} s, {agent[0][2]:,} prompt tokens "
                "as the agent counted them"
            )
        finally:
            qwen_code("serve", "stop", "--port", str(port), env=env, cwd=root).communicate()


if __name__ == "__main__":
    main()
