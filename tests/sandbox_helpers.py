"""Shared by the sandbox tests: whether the real sandbox can run here, and finding
processes by a marker in their command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qwen_code.sandbox.bwrap import unavailable_reason

REQUIRE_ENV = "QWEN_CODE_REQUIRE_SANDBOX"
"""Set by `.ci/run` once it has installed bubblewrap: the sandbox tests must then run."""


def sandbox_missing() -> str | None:
    reason = unavailable_reason()
    if reason is not None and os.environ.get(REQUIRE_ENV) == "1":
        raise RuntimeError(f"{REQUIRE_ENV}=1 but the sandbox cannot run here: {reason}")
    return reason


_MISSING = sandbox_missing()

needs_sandbox = pytest.mark.skipif(
    _MISSING is not None, reason=f"no command sandbox here: {_MISSING}"
)


def running(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state = stat[stat.rfind(")") + 2 :].split()[0]
        if marker.encode() in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found
