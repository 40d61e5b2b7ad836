"""`summary.json` / `summary.md` of an eval and the report `qwen-code eval report` prints.

The numbers come from `qwen_code.eval.summary` (re-exported here); this module only writes
and renders them. Errored runs count as unsolved samples (see that module's docstring).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from qwen_code.atomic import atomic_write
from qwen_code.eval.summary import (
    Comparison,
    ConfigSummary,
    Flip,
    Summary,
    TaskCell,
    compare,
    config_label,
    group_by_config,
    load_results,
    pass_at_k,
    summarize,
)

__all__ = [
    "Comparison",
    "ConfigSummary",
    "Flip",
    "Summary",
    "TaskCell",
    "compare",
    "config_label",
    "group_by_config",
    "load_results",
    "metric_rows",
    "pass_at_k",
    "summarize",
    "summary_markdown",
    "write_summary",
]

NONE = "–"


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _usd(x: float | None) -> str:
    if x is None:
        return NONE
    return f"${x:,.2f}" if abs(x) >= 1 else f"${x:.4f}"


def _num(x: float | None) -> str:
    return NONE if x is None else f"{x:,.0f}"


def _total_cost(s: ConfigSummary) -> str:
    if s.total_cost is None:
        return NONE
    partial = "" if s.runs_with_cost == s.runs else f" ({s.runs_with_cost} of {s.runs} runs)"
    return _usd(s.total_cost) + partial


def _pass_k(k: int) -> Callable[[ConfigSummary], str]:
    return lambda s: _pct(s.pass_at_k[k]) if k in s.pass_at_k else NONE


_ROWS: list[tuple[str, Callable[[ConfigSummary], str]]] = [
    ("runs", lambda s: str(s.runs)),
    ("tasks", lambda s: str(s.tasks)),
    ("samples per task (min)", lambda s: str(s.samples_per_task)),
    ("solved", lambda s: str(s.solved)),
    ("failed", lambda s: str(s.failed)),
    ("errored (counted unsolved)", lambda s: str(s.errored)),
    ("pass@1", lambda s: _pct(s.pass_at_1)),
]
_COST_ROWS: list[tuple[str, Callable[[ConfigSummary], str]]] = [
    ("mean tokens per run", lambda s: _num(s.mean_tokens)),
    ("mean tokens per solved run", lambda s: _num(s.mean_tokens_per_solved)),
    ("mean cost per solved run", lambda s: _usd(s.mean_cost_per_solved)),
    ("total cost", _total_cost),
    ("cost per solved run (total / solved)", lambda s: _usd(s.cost_per_solved)),
    ("mean wall time", lambda s: f"{s.mean_wall_s:,.1f} s"),
]


def metric_rows(configs: Sequence[ConfigSummary]) -> list[list[str]]:
    """Metric name, then one formatted value per config: the table both outputs print.

    pass@k rows go up to the largest k any config has; a config with fewer samples shows –.
    """
    max_k = max((s.samples_per_task for s in configs), default=1)
    rows = _ROWS + [(f"pass@{k}", _pass_k(k)) for k in range(2, max_k + 1)] + _COST_ROWS
    return [[name, *(fmt(s) for s in configs)] for name, fmt in rows]


def _md_cell(text: str) -> str:
    """A table cell: a `|` would end it and a newline the row."""
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split())


def _md_table(header: list[str], rows: list[list[str]], right_from: int = 1) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    return ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in [header, align, *rows]]


def summary_markdown(summary: Summary) -> str:
    """`summary.md`: the metrics table (a column per config) and the per-task c/n table."""
    labels = [s.config for s in summary.configs]
    lines = ["# Eval summary", ""]
    if not summary.configs:
        return "\n".join([*lines, "No results.", ""])
    lines += _md_table(["metric", *labels], metric_rows(summary.configs))
    lines += [
        "",
        "Errored runs count as unsolved samples (they are in n, not in c). "
        "pass@k: the unbiased estimator (Chen et al. 2021), mean over tasks.",
        "",
        "## Tasks (solved / runs)",
        "",
    ]
    rows = [
        [task, *(str(cells[label]) if label in cells else NONE for label in labels)]
        for task, cells in summary.tasks.items()
    ]
    lines += _md_table(["task", *labels], rows)
    return "\n".join([*lines, ""])


def write_summary(out_dir: Path, summary: Summary) -> None:
    """`OUT/summary.json` (the model, dumped) and `OUT/summary.md`, each replaced atomically."""
    atomic_write(out_dir / "summary.json", (summary.model_dump_json(indent=2) + "\n").encode())
    atomic_write(out_dir / "summary.md", summary_markdown(summary).encode())
