"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

from qwen_code.agent.approval import ApprovalAnswer, ApprovalRequest


def git_init(root: Path) -> None:
    """Make `root` a git repository (git is a requirement of the project and of CI)."""
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)


def alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (nobody reaps orphans in some containers) is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


async def gone(pid: int, within: float = 3.0) -> bool:
    """Wait up to `within` seconds for `pid` to end; True when it did."""
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def run_qwen_code(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m qwen_code ARGS` in `cwd`, stdin empty, output captured. `timeout` only
    stops a hung run (a broken test), it is not a speed assertion."""
    import os
    import sys

    return subprocess.run(
        [sys.executable, "-m", "qwen_code", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env if env is not None else os.environ.copy(),
        timeout=timeout,
    )


class RecordingApprover:
    """An approver that answers as told and keeps the requests it was asked."""

    def __init__(self, answer: ApprovalAnswer) -> None:
        self.answer = answer
        self.requests: list[ApprovalRequest] = []

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        self.requests.append(request)
        return self.answer
