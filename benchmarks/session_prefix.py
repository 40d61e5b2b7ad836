"""What a 30-turn session sends: bytes and estimated tokens per request, prefix reuse.

One headless prompt whose scripted model makes 29 tool calls (reads, greps, globs,
edits, shell commands) and then answers, against the scripted server. For each request:
its size, its estimated tokens, and how much of the previous request it starts with
(the prefix a server cache can reuse; 100 % means the request only appends). Also the
fixed cost of every request: system prompt and tool schemas.

    .venv/bin/python benchmarks/session_prefix.py [--turns 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from _common import FakeLLM, call, env_for, qwen_code_command, text, tool_turn

from qwen_code.agent.context import DEFAULT_CHARS_PER_TOKEN, estimate_tokens, schema_chars


def make_project(root: Path, files: int = 8) -> None:
    (root / "src").mkdir(parents=True)
    for i in range(files):
        body = "\n".join(f"def helper_{i}_{j}(x):\n    return x * {j}\n" for j in range(40))
        (root / "src" / f"mod{i}.py").write_text(body)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)


def script(turns: int) -> list[Any]:
    steps = []
    for i in range(turns - 1):
        n = i % 8
        kind = i % 5
        if kind == 0:
            steps.append(tool_turn(call("read_file", file_path=f"src/mod{n}.py")))
        elif kind == 1:
            steps.append(tool_turn(call("grep_search", pattern=f"helper_{n}_1\\d")))
        elif kind == 2:
            old, new = f"return x * {i % 40}", f"return x * {i % 40} + 0"
            steps.append(
                tool_turn(
                    call(
                        "edit",
                        file_path=f"src/mod{n}.py",
                        old_string=old,
                        new_string=new,
                        replace_all=True,
                    )
                )
            )
        elif kind == 3:
            steps.append(tool_turn(call("run_shell_command", command="git status --short")))
        else:
            steps.append(tool_turn(call("glob", pattern="src/*.py"), text="Checking the layout."))
    steps.append(text("Done: the helpers are updated."))
    return steps


def common_prefix(a: str, b: str) -> int:
    limit = min(len(a), len(b))
    lo, hi = 0, limit
    while lo < hi:  # binary search on equal prefixes (fast for long strings)
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=30)
    turns = parser.parse_args().turns
    with tempfile.TemporaryDirectory() as tmp, FakeLLM() as server:
        root = Path(tmp) / "project"
        make_project(root)
        server.script(*script(turns))
        subprocess.run(
            [*qwen_code_command(), "-p", "update the helpers", "--yolo"],
            cwd=root,
            env=env_for(server, Path(tmp) / "home"),
            capture_output=True,
            check=True,
        )
        bodies = [r.body for r in server.chat_requests if r.body]
    report(bodies)


def report(bodies: list[dict[str, Any]]) -> None:
    first = bodies[0]
    system = first["messages"][0]["content"]
    tools_chars = schema_chars(first.get("tools"))
    print(f"requests: {len(bodies)}")
    print(
        f"system prompt: {len(system):,} chars ≈ {len(system) / DEFAULT_CHARS_PER_TOKEN:,.0f} "
        f"tokens; tool schemas: {tools_chars:,} chars ≈ "
        f"{tools_chars / DEFAULT_CHARS_PER_TOKEN:,.0f} tokens ({len(first.get('tools', []))} "
        "tools)"
    )
    reuse, previous = [], None
    print(" req    bytes  est. tokens  prefix reuse")
    for index, body in enumerate(bodies, 1):
        wire = json.dumps({"tools": body.get("tools"), "messages": body["messages"]})
        tokens = estimate_tokens(body["messages"]) + round(tools_chars / DEFAULT_CHARS_PER_TOKEN)
        share = ""
        if previous is not None:
            ratio = common_prefix(previous[:-2], wire) / max(1, len(previous) - 2)
            reuse.append(ratio)
            share = f"{ratio:.1%}"
        if index <= 3 or index % 5 == 0 or index == len(bodies):
            print(f"{index:>4} {len(wire.encode()):>8,} {tokens:>12,}  {share:>12}")
        previous = wire
    if reuse:
        print(
            f"prefix reuse: min {min(reuse):.1%}, median {statistics.median(reuse):.1%} "
            f"over {len(reuse)} follow-up requests"
        )


if __name__ == "__main__":
    main()
