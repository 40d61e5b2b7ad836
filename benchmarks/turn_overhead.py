"""Client overhead per turn: from a streamed response's last byte to the next request.

Script: read_file -> edit -> run_shell_command -> answer, run headless N times. Each gap
includes the tool's own work (the shell gap includes spawning `true`; the edit gap the
checkpoint taken before the first change of a prompt). Target: median <= 15 ms for read and
edit. With `--latency 1`, the scripted model answers after 1 s, as a real one does: the
checkpoint's one-time set-up (loading git) then happens while the model thinks.

    python benchmarks/turn_overhead.py [--runs 5]
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import tempfile
from pathlib import Path

from _common import FakeLLM, call, describe, env_for, qwen_code_command, text, tool_turn

STEPS = ("read_file", "edit", "run_shell_command")


def script(server: FakeLLM, latency: float) -> None:
    server.script(
        tool_turn(call("read_file", file_path="calc.py"), delay_s=latency),
        tool_turn(
            call("edit", file_path="calc.py", old_string="a - b", new_string="a + b"),
            delay_s=latency,
        ),
        tool_turn(call("run_shell_command", command="true"), delay_s=latency),
        text("Fixed.", delay_s=latency),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds the scripted model waits before each answer (a real model takes 1+ s)",
    )
    args = parser.parse_args()
    runs, latency = args.runs, args.latency
    gaps: dict[str, list[float]] = {step: [] for step in STEPS}
    with tempfile.TemporaryDirectory() as tmp, FakeLLM() as server:
        workdir = Path(tmp)
        for _ in range(runs):
            (workdir / "calc.py").write_text("def add(a, b):\n    return a - b\n")
            script(server, latency)
            seen = len(server.chat_requests)
            subprocess.run(
                [*qwen_code_command(), "-p", "fix add", "--yolo"],
                cwd=workdir,
                env=env_for(server, workdir / "home"),
                capture_output=True,
                check=True,
            )
            requests = server.chat_requests[seen:]
            for step, (done, following) in zip(STEPS, itertools.pairwise(requests), strict=True):
                assert done.finished_at is not None
                gaps[step].append(following.received_at - done.finished_at)
    everything = [g for values in gaps.values() for g in values]
    for step, values in gaps.items():
        print(f"gap after {step:18} {describe(values)}")
    print(f"all gaps                     {describe(everything)}")


if __name__ == "__main__":
    main()
