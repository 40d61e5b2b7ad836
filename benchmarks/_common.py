"""Shared bits for the benchmark scripts: run qwen-code, start the scripted server."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakeserver import FakeLLM, call, text, tool_turn  # noqa: E402

__all__ = ["FakeLLM", "call", "text", "tool_turn"]


def qwen_code_command() -> list[str]:
    """The installed console script when there is one next to this Python, else -m."""
    script = Path(sys.executable).parent / "qwen-code"
    return [str(script)] if script.exists() else [sys.executable, "-m", "qwen_code"]


def env_for(server: FakeLLM, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DASHSCOPE_"))}
    env.update(
        OPENAI_BASE_URL=server.base_url,
        OPENAI_API_KEY="bench",
        OPENAI_MODEL="qwen3-coder-plus",
        QWEN_HOME=str(home),
        NO_PROXY="127.0.0.1,localhost",
    )
    return env


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]


def describe(values: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    scaled = sorted(v * scale for v in values)
    return (
        f"median {statistics.median(scaled):.1f} {unit}, min {scaled[0]:.1f}, "
        f"max {scaled[-1]:.1f} (n={len(scaled)})"
    )


def first_requests(server: FakeLLM, home: Path, workdir: Path, runs: int) -> list[float]:
    """Seconds from starting `qwen-code -p` to its first request at `server`, `runs` times
    (each run also waits for the whole one-turn run to finish)."""
    import time

    found = []
    for _ in range(runs):
        server.script(text("ok"))
        seen = len(server.requests)
        start = time.monotonic()
        subprocess.run(
            [*qwen_code_command(), "-p", "say ok"],
            cwd=workdir,
            env=env_for(server, home),
            capture_output=True,
            check=True,
        )
        found.append(server.requests[seen].received_at - start)
    return found
