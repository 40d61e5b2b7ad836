"""Client overhead per turn: from a streamed response's last byte to the next request.

Script: read_file -> edit -> run_shell_command -> answer, run headless N times. Each gap
includes the tool's own work (the shell gap includes spawning `true`). Target: median
<= 15 ms for read and edit.

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


def script(server: FakeLLM) -> None:
    server.script(
        tool_turn(call("read_file", file_path="calc.py")),
        tool_turn(call("edit", file_path="calc.py", old_string="a - b", new_string="a + b")),
        tool_turn(call("run_shell_command", command="true")),
        text("Fixed."),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    gaps: dict[str, list[float]] = {step: [] for step in STEPS}
    with tempfile.TemporaryDirectory() as tmp, FakeLLM() as server:
        workdir = Path(tmp)
        for _ in range(runs):
            (workdir / "calc.py").write_text("def add(a, b):\n    return a - b\n")
            script(server)
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
