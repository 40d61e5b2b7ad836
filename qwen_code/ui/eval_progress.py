"""Live progress of an eval: a table per model and prompt set (done, solved, failed,
errored, tokens, cost) with the ETA, redrawn in place on a terminal; one line per finished
run otherwise (a log, CI)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from qwen_code.eval.model import RunResult, RunSpec, model_label

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table


@dataclass(slots=True)
class _Column:
    total: int = 0
    done: int = 0
    solved: int = 0
    failed: int = 0
    errored: int = 0
    tokens: int = 0
    cost: float = 0.0
    costed: bool = False

    def add(self, result: RunResult) -> None:
        self.done += 1
        setattr(self, result.status, getattr(self, result.status) + 1)
        self.tokens += result.tokens
        if result.cost_usd is not None:
            self.cost += result.cost_usd
            self.costed = True


class EvalProgress:
    """Counts per config; a `rich.live.Live` table on a terminal, lines elsewhere."""

    def __init__(self, stream: TextIO, *, live: bool) -> None:
        self.stream, self.live = stream, live
        self.columns: dict[str, _Column] = {}
        self.running = 0
        self.todo = 0
        self.finished_now = 0
        self._started_at = time.monotonic()
        self._lock = threading.Lock()
        self._live: Live | None = None

    @staticmethod
    def config(model: str, prompts: str) -> str:
        return model if prompts == "default" else f"{model} · {prompts}"

    def planned(self, specs: list[RunSpec], kept: list[RunResult]) -> None:
        for spec in specs:
            self._column(self.config(model_label(spec.model), spec.prompts_label)).total += 1
        for result in kept:
            column = self._column(self.config(result.model, result.prompts))
            column.total += 1
            column.add(result)
        self.todo = len(specs)
        if kept:
            print(f"eval: {len(kept)} runs kept from before, {len(specs)} to run", file=self.stream)
        if self.live and specs:
            from rich.live import Live

            self._live = Live(self._table(), console=self._console(), refresh_per_second=4)
            self._live.start()

    def started(self, spec: RunSpec) -> None:
        with self._lock:
            self.running += 1
        self._refresh()

    def finished(self, result: RunResult) -> None:
        with self._lock:
            self.running -= 1
            self.finished_now += 1
            self._column(self.config(result.model, result.prompts)).add(result)
        if self._live is None:
            print(self._line(result), file=self.stream, flush=True)
        self._refresh()

    def close(self) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.stop()
            self._live = None

    def eta_s(self) -> float | None:
        if not self.finished_now:
            return None
        left = self.todo - self.finished_now
        return (time.monotonic() - self._started_at) / self.finished_now * left

    def _column(self, name: str) -> _Column:
        return self.columns.setdefault(name, _Column())

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._table())

    def _line(self, result: RunResult) -> str:
        done = sum(c.done for c in self.columns.values())
        total = sum(c.total for c in self.columns.values())
        cost = "" if result.cost_usd is None else f", ${result.cost_usd:.4f}"
        why = f": {result.error}" if result.error else ""
        return (
            f"[{done}/{total}] {result.task} · {self.config(result.model, result.prompts)} "
            f"#{result.sample}: {result.status}{why} ({result.turns} turns, "
            f"{result.tokens:,} tokens{cost}, {result.wall_s:.1f} s)"
        )

    def _console(self) -> Console:
        from rich.console import Console

        return Console(file=self.stream, highlight=False)

    def _table(self) -> Table:
        from rich.markup import escape
        from rich.table import Table

        eta = self.eta_s()
        title = f"eval: {self.running} running" + ("" if eta is None else f", ETA {_clock(eta)}")
        table = Table(title=title, title_justify="left")
        for name in ("model · prompts", "done", "solved", "failed", "errored", "tokens", "cost"):
            table.add_column(name, justify="left" if name.startswith("model") else "right")
        for name, c in sorted(self.columns.items()):
            cost = f"${c.cost:.4f}" if c.costed else "-"
            row = [escape(name), f"{c.done}/{c.total}", str(c.solved), str(c.failed)]
            table.add_row(*row, str(c.errored), f"{c.tokens:,}", cost)
        return table


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
