"""Added latency per command from the sandbox: `true` through run_shell_command, unsandboxed
and in each sandbox mode (and with an allow-listed network, which adds the in-sandbox bridge
to the proxy). Prints medians and the difference to unsandboxed; target: under 30 ms for
workspace-write.

    .venv/bin/python benchmarks/sandbox_overhead.py [--runs 50] [--command true]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qwen_code.sandbox.bwrap import unavailable_reason  # noqa: E402
from qwen_code.sandbox.manager import Sandbox  # noqa: E402
from qwen_code.sandbox.policy import CREDENTIAL_PATHS, expand_paths  # noqa: E402
from qwen_code.tools.base import ToolContext  # noqa: E402
from qwen_code.tools.shell import ShellTool  # noqa: E402
from qwen_code.tools.workspace import Workspace  # noqa: E402

CASES: dict[str, dict[str, object] | None] = {
    "unsandboxed": None,
    "workspace-write": {"setting": "workspace-write"},
    "read-only": {"setting": "read-only"},
    "workspace-write + allow-list": {"setting": "workspace-write", "network": ("pypi.org",)},
}


async def timings(
    case: dict[str, object] | None, command: str, runs: int, base: Path
) -> list[float]:
    ws, scratch = base / "ws", base / "scratch"
    ws.mkdir(exist_ok=True)
    sandbox = None
    if case is not None:
        hidden = expand_paths(CREDENTIAL_PATHS, Path.home(), {})
        sandbox = Sandbox(hidden=hidden, **case)  # type: ignore[arg-type]
    ctx = ToolContext(
        workspace=Workspace(root=ws, extra_roots=(scratch,)), scratch_dir=scratch, sandbox=sandbox
    )
    tool, params = ShellTool(), ShellTool.Params(command=command)
    samples = []
    for index in range(runs + 3):
        start = time.perf_counter()
        out = await tool.run(params, ctx)
        elapsed = (time.perf_counter() - start) * 1000
        if out.is_error:
            raise SystemExit(f"{command!r} failed: {out.content}")
        if index >= 3:  # warm-up: first probe of bwrap, first proxy start
            samples.append(elapsed)
    if sandbox is not None:
        sandbox.close()
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--command", default="true")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason:
        raise SystemExit(f"no sandbox here: {reason}")
    print(f"run_shell_command({args.command!r}), {args.runs} runs each, median (p90) in ms")
    baseline = None
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in CASES.items():
            samples = await timings(case, args.command, args.runs, Path(tmp))
            median = statistics.median(samples)
            p90 = statistics.quantiles(samples, n=10)[-1]
            baseline = median if baseline is None else baseline
            added = "" if case is None else f"   +{median - baseline:.1f} ms"
            print(f"  {name:<30} {median:7.1f} ({p90:.1f}){added}")


if __name__ == "__main__":
    asyncio.run(main())
