"""Headless start to the first request arriving at the scripted model server.

python benchmarks/first_request.py [--runs 10]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from _common import FakeLLM, describe, env_for, qwen_code_command, text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    to_request, total = [], []
    with tempfile.TemporaryDirectory() as tmp, FakeLLM() as server:
        workdir = Path(tmp)
        for _ in range(runs):
            server.script(text("ok"))
            seen = len(server.requests)
            start = time.monotonic()
            subprocess.run(
                [*qwen_code_command(), "-p", "say ok"],
                cwd=workdir,
                env=env_for(server, workdir / "home"),
                capture_output=True,
                check=True,
            )
            total.append(time.monotonic() - start)
            to_request.append(server.requests[seen].received_at - start)
    print(f"start -> first request: {describe(to_request)}")
    print(f"whole one-turn run:     {describe(total)}")


if __name__ == "__main__":
    main()
