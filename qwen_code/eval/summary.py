"""The numbers of an eval: results loaded from `OUT/runs/*/result.json`, pass@k, per-config
summaries, and the tasks that flip between result sets. Pure functions, no I/O but reading.

Counting rules (the same everywhere below):
- A *config* is a (model, prompts) pair; its runs are grouped per task: `n` runs, `c` solved.
- An errored run counts as a sample that was not solved: it is in `n` and not in `c`. A broken
  workspace or a test timeout is the harness's or the agent's failure to deliver, and dropping
  those runs would flatter a config that errors often. `errored` is reported on its own so that
  a harness problem stays visible.
- A task is *solved* by a result set when at least one of its runs solved it (`c > 0`), the
  pass@n view; a flip is a task solved in one set and not in another (`c == 0`, `n > 0`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ValidationError

from qwen_code.eval.model import RunResult


def load_results(
    out_dir: Path, warnings: list[str] | None = None, *, texts: bool = True
) -> list[RunResult]:
    """Every `runs/*/result.json` under `out_dir` that reads as a `RunResult`, by run id.
    `texts=False` drops each diff and test output tail (a summary of 20,000 runs needs
    only their numbers).

    A file that cannot be read or does not validate is skipped with a one-line warning
    appended to `warnings` (when given); a run directory without `result.json` (a run still
    going, or interrupted) is skipped silently.
    """
    found: list[RunResult] = []
    sink = warnings if warnings is not None else []
    runs = out_dir / "runs"
    if not runs.is_dir():
        sink.append(f"{out_dir}: no runs/ directory")
        return found
    for path in sorted(runs.glob("*/result.json")):
        try:
            result = RunResult.model_validate_json(path.read_bytes())
            if not texts:
                result.diff = result.test_output_tail = ""
            found.append(result)
        except OSError as e:
            sink.append(f"{path}: unreadable ({e.strerror or e})")
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "file"
            sink.append(f"{path}: not a valid result ({where}: {first['msg']})")
    found.sort(key=lambda r: r.run_id)
    return found


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimator, 1 - C(n-c, k) / C(n, k) (Chen et al. 2021).

    The probability that k samples drawn without replacement from n, c of them correct,
    include a correct one. Computed as 1 - prod_{i=n-c+1..n} (1 - k/i), which never forms
    the binomials (they overflow a float for n in the hundreds).
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


class TaskCell(BaseModel):
    """One task under one config (or one result set): `c` solved of `n` runs."""

    c: int
    n: int

    def __str__(self) -> str:
        return f"{self.c}/{self.n}"


class ConfigSummary(BaseModel):
    """The figures of one (model, prompts) config. Errored runs are unsolved samples."""

    config: str
    model: str
    prompts: str
    runs: int
    tasks: int
    samples_per_task: int
    """The smallest number of runs of any task: pass@k is given for k up to it."""
    solved: int
    failed: int
    errored: int
    pass_at_1: float
    """Mean over tasks of c/n."""
    pass_at_k: dict[int, float]
    """k -> mean over tasks of the unbiased estimator, for k = 1 .. samples_per_task."""
    mean_tokens: float
    """Input + output tokens, mean over all runs (errored ones included)."""
    mean_tokens_per_solved: float | None
    """Mean over the solved runs; None when none solved."""
    mean_cost_per_solved: float | None
    """Mean cost of the solved runs that reported one; None when none did."""
    total_cost: float | None
    """Sum over the runs that reported a cost; None when none did."""
    runs_with_cost: int
    cost_per_solved: float | None
    """total_cost / solved runs: what each success cost, failures paid for included."""
    mean_wall_s: float


class Summary(BaseModel):
    """Per-config figures, and per task: config label -> c/n."""

    configs: list[ConfigSummary]
    tasks: dict[str, dict[str, TaskCell]]


def config_label(model: str, prompts: str) -> str:
    """How a (model, prompts) config is named in tables and in `Summary.tasks`."""
    return model if prompts == "default" else f"{model} @ {prompts}"


def group_by_config(results: Iterable[RunResult]) -> dict[str, list[RunResult]]:
    """Results keyed by config label, in label order (one OUT dir holding several configs)."""
    groups: dict[str, list[RunResult]] = defaultdict(list)
    for r in results:
        groups[config_label(r.model, r.prompts)].append(r)
    return dict(sorted(groups.items()))


def task_cells(results: Iterable[RunResult]) -> dict[str, TaskCell]:
    """Task id -> c/n over the given runs, in task order."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        counts[r.task][0] += r.solved
        counts[r.task][1] += 1
    return {task: TaskCell(c=c, n=n) for task, (c, n) in sorted(counts.items())}


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize_config(label: str, runs: list[RunResult]) -> ConfigSummary:
    """The figures of one config's runs (at least one)."""
    cells = list(task_cells(runs).values())
    min_n = min(cell.n for cell in cells)
    solved = [r for r in runs if r.solved]
    costs = [r.cost_usd for r in runs if r.cost_usd is not None]
    total_cost = sum(costs) if costs else None
    return ConfigSummary(
        config=label,
        model=runs[0].model,
        prompts=runs[0].prompts,
        runs=len(runs),
        tasks=len(cells),
        samples_per_task=min_n,
        solved=len(solved),
        failed=sum(not r.solved and r.status != "errored" for r in runs),
        errored=sum(not r.solved and r.status == "errored" for r in runs),
        pass_at_1=sum(cell.c / cell.n for cell in cells) / len(cells),
        pass_at_k={
            k: sum(pass_at_k(cell.n, cell.c, k) for cell in cells) / len(cells)
            for k in range(1, min_n + 1)
        },
        mean_tokens=sum(r.tokens for r in runs) / len(runs),
        mean_tokens_per_solved=_mean([r.tokens for r in solved]),
        mean_cost_per_solved=_mean([r.cost_usd for r in solved if r.cost_usd is not None]),
        total_cost=total_cost,
        runs_with_cost=len(costs),
        cost_per_solved=total_cost / len(solved) if total_cost is not None and solved else None,
        mean_wall_s=sum(r.wall_s for r in runs) / len(runs),
    )


def summarize(results: Iterable[RunResult]) -> Summary:
    """Per-config figures and the per-task table; configs in label order.

    A run's `solved` flag decides (a run with status "solved" and solved False would count as
    unsolved; the runner keeps them in step). Failed and errored partition the unsolved runs.
    """
    groups = group_by_config(results)
    tasks: dict[str, dict[str, TaskCell]] = defaultdict(dict)
    for label, runs in groups.items():
        for task, cell in task_cells(runs).items():
            tasks[task][label] = cell
    return Summary(
        configs=[summarize_config(label, runs) for label, runs in groups.items()],
        tasks=dict(sorted(tasks.items())),
    )


class Flip(BaseModel):
    """A task solved (c > 0) in some result sets and unsolved (c == 0) in others."""

    task: str
    cells: dict[str, TaskCell | None]
    """Group label -> c/n; None where the group has no run of the task."""
    solved_in: list[str]
    unsolved_in: list[str]


class Comparison(BaseModel):
    groups: list[str]
    tasks: dict[str, dict[str, TaskCell | None]]
    """Every task of any group: group label -> c/n, None where the group lacks it."""
    flips: list[Flip]
    common_tasks: int
    """Tasks every group ran: the only ones whose solve rates compare like for like."""


def compare(groups: dict[str, list[RunResult]]) -> Comparison:
    """Per-task c/n of several result sets and the tasks that flip between them.

    Each group is taken whole (all its configs together): to compare configs of one OUT dir,
    pass `group_by_config(results)`. A task missing from a group is neither solved nor
    unsolved there, so it never makes a flip on its own.
    """
    per_group = {label: task_cells(runs) for label, runs in groups.items()}
    all_tasks = sorted({task for cells in per_group.values() for task in cells})
    tasks = {t: {label: per_group[label].get(t) for label in groups} for t in all_tasks}
    flips = []
    for task, cells in tasks.items():
        solved_in = [g for g, cell in cells.items() if cell is not None and cell.c > 0]
        unsolved_in = [g for g, cell in cells.items() if cell is not None and cell.c == 0]
        if solved_in and unsolved_in:
            flips.append(Flip(task=task, cells=cells, solved_in=solved_in, unsolved_in=unsolved_in))
    common = sum(all(cell is not None for cell in cells.values()) for cells in tasks.values())
    return Comparison(groups=list(groups), tasks=tasks, flips=flips, common_tasks=common)
