"""What `qwen-code eval` itself costs, apart from the agent and the task's tests.

1. Per run, on a small repository: a real eval of N runs (the scripted model answers at
   once, the test command is `true`), read back from each run's timings: creating the
   workspace, applying hidden tests, starting the sandboxed test command, the diff and the
   files; overhead = wall time - the agent's time. Target: under 1 s per run.
2. At scale: summarizing 20,000 results (synthetic result.json files with 5 KB diffs):
   seconds and memory for `load_results` + `summarize`.

    .venv/bin/python benchmarks/eval_overhead.py [--runs 10] [--results 20000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

from _common import FakeLLM, env_for, qwen_code_command, text

from qwen_code.eval.model import RunResult, Timings
from qwen_code.eval.report import load_results, summarize
from tests.helpers import make_repo


def per_run(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, FakeLLM() as server:
        root = Path(tmp)
        make_repo(root / "repo", {f"src/m{i}.py": f"x = {i}\n" for i in range(50)}, commit=True)
        (root / "hidden").mkdir()
        (root / "hidden" / "test_hidden.py").write_text("def test_x():\n    pass\n")
        task = {
            "id": "t",
            "repo": "repo",
            "prompt": "Do nothing.",
            "test": "true",
            "hidden_tests": "hidden",
        }
        (root / "tasks.jsonl").write_text(json.dumps(task) + "\n")
        server.script(*[text("Nothing to do.")] * (runs + 5))
        home = root / "home"
        home.mkdir()
        cmd = [*qwen_code_command(), "eval", "run", "tasks.jsonl", "--runs", str(runs)]
        started = time.monotonic()
        done = subprocess.run(cmd, cwd=root, env=env_for(server, home), capture_output=True)
        total = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(done.stderr.decode())
        results = load_results(root / "eval-runs" / "tasks")
    overhead = [r.wall_s - r.timings.agent_s for r in results]
    print(f"{len(results)} runs of a 50-file repository, one after another ({total:.1f} s in all):")
    for name in Timings.model_fields:
        values = [getattr(r.timings, name) for r in results]
        print(f"  {name:<12} median {statistics.median(values) * 1000:7.0f} ms")
    print(
        f"  overhead     median {statistics.median(overhead) * 1000:7.0f} ms, "
        f"max {max(overhead) * 1000:.0f} ms (wall - agent; target < 1000 ms)"
    )


def at_scale(count: int) -> None:
    diff = "+" + "x" * 79 + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for n in range(count):
            result = RunResult(
                run_id=f"task{n // 4}__m__default__{n % 4 + 1}",
                task=f"task{n // 4}",
                model="m",
                prompts="default",
                sample=n % 4 + 1,
                status="solved" if n % 3 else "failed",
                solved=bool(n % 3),
                input_tokens=50_000,
                output_tokens=2_000,
                cost_usd=0.05,
                wall_s=120.0,
                diff=diff * 64,
                test_output_tail="." * 4000,
            )
            run_dir = out / "runs" / result.run_id
            run_dir.mkdir(parents=True)
            (run_dir / "result.json").write_text(result.model_dump_json())
        tracemalloc.start()
        started = time.monotonic()
        summary = summarize(load_results(out, texts=False))
        took = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    (config,) = summary.configs
    print(
        f"summarizing {count:,} results (5 KB diff, 4 KB test output each): {took:.1f} s, "
        f"peak {peak / 2**20:.0f} MiB; pass@1 {config.pass_at_1:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--results", type=int, default=20_000)
    args = parser.parse_args()
    per_run(args.runs)
    at_scale(args.results)


if __name__ == "__main__":
    main()
