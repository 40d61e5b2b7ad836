"""What a hook costs a tool call: `Hooks.fire` with one matching command hook (a shell that
reads the event from stdin), and with none matching. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/hook_overhead.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qwen_code.hooks import Hooks, HookSpec

RUNS = 40


async def main() -> None:
    spec = HookSpec(
        event="PreToolUse",
        matcher="Bash",
        command="cat >/dev/null",
        timeout_s=60,
        source="user",
        path=None,
    )
    with tempfile.TemporaryDirectory() as cwd:
        hooks = Hooks([spec], cwd=Path(cwd), env=dict(os.environ), base=lambda: {"session_id": "b"})
        fields = {"tool_name": "run_shell_command", "tool_input": {"command": "ls"}}
        matched = []
        for _ in range(RUNS):
            started = time.perf_counter()
            await hooks.fire("PreToolUse", fields, match="run_shell_command")
            matched.append(time.perf_counter() - started)
        missed = []
        for _ in range(RUNS):
            started = time.perf_counter()
            await hooks.fire("PreToolUse", fields, match="read_file")
            missed.append(time.perf_counter() - started)
    print(
        f"one matching hook: median {statistics.median(matched) * 1000:.1f} ms, "
        f"min {min(matched) * 1000:.1f} ms ({RUNS} runs)"
    )
    print(f"no hook matching: median {statistics.median(missed) * 1e6:.0f} us")


if __name__ == "__main__":
    asyncio.run(main())
