"""`qwen-code --version` and `--help`: wall time and peak RSS. Target: --version <= 0.15 s.

python benchmarks/startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import time

from _common import describe, qwen_code_command


def measure(args: list[str], runs: int) -> tuple[list[float], int]:
    times = []
    peak_kb = 0
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        subprocess.run([*qwen_code_command(), *args], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
        peak_kb = max(peak_kb, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
    return times, peak_kb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    for args in (["--version"], ["--help"]):
        times, peak_kb = measure(args, runs)
        label = " ".join(args)
        print(f"qwen-code {label:10} wall: {describe(times)}; peak RSS {peak_kb / 1024:.1f} MB")


if __name__ == "__main__":
    main()
