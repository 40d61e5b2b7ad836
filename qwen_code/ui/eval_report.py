"""Printing eval summaries and comparisons (`qwen-code eval run` / `eval report`) with rich."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from qwen_code.eval.report import NONE, Comparison, Summary, TaskCell, metric_rows


def render_summary(stream: TextIO, summary: Summary, label: str) -> None:
    """The eval's own summary, at its end (`label`: its output directory)."""
    render_report(Console(file=stream, highlight=False), {label: summary})


def _cell_markup(cell: TaskCell | None) -> str:
    if cell is None:
        return f"[dim]{NONE}[/]"
    return f"[green]{cell}[/]" if cell.c > 0 else f"[red]{cell}[/]"


def _render_flips(console: Console, comparison: Comparison, max_rows: int) -> None:
    groups = comparison.groups
    console.print(
        f"{len(comparison.flips)} task(s) flip between {', '.join(escape(g) for g in groups)} "
        f"(solved = at least one run passed; {comparison.common_tasks:,} task(s) in all)"
    )
    if not comparison.flips:
        return
    table = Table(title="Flips (solved / runs)", title_justify="left")
    table.add_column("task")
    for group in groups:
        table.add_column(escape(group), justify="right")
    for flip in comparison.flips[:max_rows]:
        table.add_row(escape(flip.task), *(_cell_markup(flip.cells[g]) for g in groups))
    console.print(table)
    if len(comparison.flips) > max_rows:
        console.print(f"[dim]... and {len(comparison.flips) - max_rows} more[/]")


def render_report(
    console: Console,
    summaries: Mapping[str, Summary],
    comparison: Comparison | None = None,
    warnings: Sequence[str] = (),
    max_flips: int = 100,
) -> None:
    """Print each summary (a metrics table, a column per config), then the flips.

    `summaries`: label (an OUT dir, say) -> its summary. Every task id, model and label is
    escaped: they are data and may hold `[`.
    """
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    for label, summary in summaries.items():
        if not summary.configs:
            console.print(f"{escape(label)}: no results")
            continue
        table = Table(title=escape(label), title_justify="left")
        table.add_column("metric")
        for s in summary.configs:
            table.add_column(escape(s.config), justify="right")
        for row in metric_rows(summary.configs):
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
    if summaries:
        console.print("[dim]errored runs count as unsolved; pass@k: unbiased estimator[/]")
    if comparison is not None:
        _render_flips(console, comparison, max_flips)
