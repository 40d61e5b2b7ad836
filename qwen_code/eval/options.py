"""What an eval was asked to do, and what its backends report to (shared by the local
pool and the Ray backend)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from qwen_code.eval.model import RunResult, RunSpec


@dataclass(slots=True, kw_only=True)
class EvalOptions:
    out: Path
    models: list[str | None] = field(default_factory=lambda: [None])
    prompts: list[Path | None] = field(default_factory=lambda: [None])
    runs: int = 1
    parallel: int = 1
    sandbox: Literal["workspace-write", "off"] = "workspace-write"
    keep_workspaces: bool = False
    backend: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    hidden: list[str] = field(default_factory=list)
    """Paths no run may read (the task files, the repositories' mirror directory)."""
    user_settings: dict[str, Any] = field(default_factory=dict)


class Progress(Protocol):
    def planned(self, specs: list[RunSpec], kept: list[RunResult]) -> None: ...
    def started(self, spec: RunSpec) -> None: ...
    def finished(self, result: RunResult) -> None: ...


def internal_error(spec: RunSpec, exc: BaseException, why: str = "") -> RunResult:
    """An errored result for a run that broke outside its own phases."""
    error = f"{why}: {exc}" if why else f"internal error: {type(exc).__name__}: {exc}"
    return RunResult(
        run_id=spec.run_id,
        task=spec.task.id,
        model=spec.model or "default",
        prompts=spec.prompts_label,
        sample=spec.sample,
        status="errored",
        solved=False,
        error=error,
    )
