"""What `qwen-code proxy` adds: latency per request and per streamed chunk, requests/s,
and 50 concurrent streams, against the scripted server called directly.

python benchmarks/proxy_latency.py [--requests 200] [--chunks 200] [--concurrent 50]

The proxy runs as its own process (`qwen-code proxy`), as it would for Claude Code; the
scripted server and the clients run in this one.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from _common import FakeLLM, env_for, qwen_code_command, text

from tests import fakeserver

fakeserver._Server.request_queue_size = 256
"""socketserver's default listen backlog (5) resets connections when 50 arrive at once,
called directly or through the proxy alike: a real engine's is larger."""

PROMPT = [{"role": "user", "content": "hi"}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_proxy(server: FakeLLM, home: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    command = [*qwen_code_command(), "proxy", "--port", str(port), "--log", str(home / "log")]
    process = subprocess.Popen(
        command, env=env_for(server, home), stdout=subprocess.PIPE, text=True, cwd=home
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening" not in line:
        process.kill()
        raise SystemExit(f"the proxy did not start: {line!r}")
    return process, f"http://127.0.0.1:{port}"


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(values) * 1000:7.2f} ms, p95 {p95 * 1000:7.2f} ms"


def timed(client: httpx.Client, url: str, body: dict[str, object], stream: bool) -> float:
    start = time.perf_counter()
    if stream:
        with client.stream("POST", url, json=body) as response:
            response.raise_for_status()
            for _ in response.iter_bytes():
                pass
    else:
        client.post(url, json=body).raise_for_status()
    return time.perf_counter() - start


def sequential(server: FakeLLM, proxy: str, runs: int, words: int) -> dict[str, list[float]]:
    reply = " ".join(f"w{i}" for i in range(words))
    direct_body = {"model": "qwen3-coder-plus", "messages": PROMPT, "stream": True}
    anth = {"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": PROMPT}
    cases = {
        "direct (OpenAI SSE)": (f"{server.base_url}/chat/completions", direct_body, True),
        "proxy, not streamed": (f"{proxy}/v1/messages", anth, False),
        "proxy, streamed": (f"{proxy}/v1/messages", {**anth, "stream": True}, True),
    }
    times: dict[str, list[float]] = {}
    with httpx.Client(timeout=60) as client:
        for name, (url, body, stream) in cases.items():
            server.script(*[text(reply, chunk_words=1)] * (runs + 5))
            for _ in range(5):  # warm up: connections, first imports
                timed(client, url, body, stream)
            times[name] = [timed(client, url, body, stream) for _ in range(runs)]
    return times


async def concurrent(
    server: FakeLLM, proxy: str, count: int, words: int
) -> tuple[float, list[str]]:
    """Wall time of `count` streams at once, and what went wrong with those that failed."""
    reply = " ".join(f"w{i}" for i in range(words))
    server.script(*[text(reply, chunk_words=1)] * count)
    body = {"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": PROMPT, "stream": True}
    limits = httpx.Limits(max_connections=count + 10)

    async def one(client: httpx.AsyncClient) -> str | None:
        try:
            async with client.stream("POST", f"{proxy}/v1/messages", json=body) as response:
                data = b"".join([chunk async for chunk in response.aiter_bytes()])
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {data[:200]!r}"
        if b"event: error" in data or b"event: message_stop" not in data:
            return f"stream: {data[-300:]!r}"
        return None

    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        start = time.perf_counter()
        results = await asyncio.gather(*(one(client) for _ in range(count)))
        took = time.perf_counter() - start
    return took, [r for r in results if r is not None]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=200, help="Text chunks per streamed reply.")
    parser.add_argument("--concurrent", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeLLM() as server:
        home = Path(tmp)
        process, proxy = start_proxy(server, home)
        try:
            short = sequential(server, proxy, args.requests, 3)
            long = sequential(server, proxy, max(20, args.requests // 10), args.chunks)
            took, errors = asyncio.run(concurrent(server, proxy, args.concurrent, args.chunks))
            log = (home / "log").read_text()
        finally:
            process.terminate()
            process.wait(10)
    print(f"Short replies (3 chunks), {args.requests} sequential requests each:")
    direct = statistics.median(short["direct (OpenAI SSE)"])
    for name, values in short.items():
        rate = len(values) / sum(values)
        added = statistics.median(values) - direct
        print(f"  {name:22} {ms(values)}, {rate:6.0f} req/s, added {added * 1000:6.2f} ms")
    print(f"Streamed replies of {args.chunks} chunks:")
    direct_long = statistics.median(long["direct (OpenAI SSE)"])
    for name, values in long.items():
        per_chunk = (statistics.median(values) - direct_long) / args.chunks
        print(f"  {name:22} {ms(values)}, added per chunk {per_chunk * 1e6:7.1f} us")
    print(
        f"{args.concurrent} concurrent streams of {args.chunks} chunks through the proxy: "
        f"{took:.2f} s, {len(errors)} errors"
    )
    for error in sorted(set(errors))[:5]:
        print(f"  {error}")
    failed = [line for line in log.splitlines() if not line.endswith(" 200")]
    print(f"Proxy log: {len(log.splitlines())} requests, {len(failed)} not 200")
    for line in failed[:5]:
        print(f"  {line}")


if __name__ == "__main__":
    main()
