"""Headless start to the first chat request arriving at the scripted model server (a local
server: the start-up probe's GETs of /props and /v1/models come before it and count).

python benchmarks/first_request.py [--runs 10]
QWEN_CODE_BENCH_MODULE=1 runs `python -m qwen_code` (with PYTHONPATH: another checkout).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import FakeLLM, describe, env_for, qwen_code_command, text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    to_request, total = [], []
    module = os.environ.get("QWEN_CODE_BENCH_MODULE") == "1"
    command = [sys.executable, "-m", "qwen_code"] if module else qwen_code_command()
    with tempfile.TemporaryDirectory() as tmp, FakeLLM() as server:
        workdir = Path(tmp)
        for _ in range(runs):
            server.script(text("ok"))
            seen = len(server.chat_requests)
            start = time.monotonic()
            subprocess.run(
                [*command, "-p", "say ok"],
                cwd=workdir,
                env=env_for(server, workdir / "home"),
                capture_output=True,
                check=True,
            )
            total.append(time.monotonic() - start)
            to_request.append(server.chat_requests[seen].received_at - start)
    print(f"start -> first request: {describe(to_request)}")
    print(f"whole one-turn run:     {describe(total)}")


if __name__ == "__main__":
    main()
