"""The eval report's numbers, checked by hand: pass@k, per-config summaries, flips, the files."""

from __future__ import annotations

import io
import json
import math
from fractions import Fraction
from itertools import combinations
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from qwen_code.eval.model import RunResult, Status, run_id
from qwen_code.eval.report import (
    Summary,
    TaskCell,
    compare,
    group_by_config,
    load_results,
    pass_at_k,
    summarize,
    summary_markdown,
    write_summary,
)
from qwen_code.ui.eval_report import render_report


def result(
    task: str,
    sample: int,
    status: Status,
    *,
    model: str = "m1",
    prompts: str = "default",
    tokens: tuple[int, int] = (0, 0),
    cost: float | None = None,
    wall: float = 0.0,
) -> RunResult:
    return RunResult(
        run_id=run_id(task, model, prompts, sample),
        task=task,
        model=model,
        prompts=prompts,
        sample=sample,
        status=status,
        solved=status == "solved",
        error="workspace broke" if status == "errored" else None,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cost_usd=cost,
        wall_s=wall,
    )


# m1: 3 tasks x 2 samples.  A: solved, solved (c=2)  B: solved, failed (c=1)
#                           C: failed, errored (c=0: the errored run is an unsolved sample)
M1 = [
    result("A", 1, "solved", tokens=(100, 50), cost=0.10, wall=10),
    result("A", 2, "solved", tokens=(200, 100), cost=0.20, wall=20),
    result("B", 1, "solved", tokens=(300, 0), cost=0.30, wall=30),
    result("B", 2, "failed", tokens=(500, 100), cost=0.60, wall=40),
    result("C", 1, "failed", tokens=(800, 100), cost=0.90, wall=50),
    result("C", 2, "errored", wall=30),
]
# m2 with prompts p2, no costs: A solved, failed, failed (n=3, c=1)  B failed x2 (c=0)
#                               C solved, errored (c=1)
M2 = [
    result("A", 1, "solved", model="m2", prompts="p2", tokens=(10, 10)),
    result("A", 2, "failed", model="m2", prompts="p2", tokens=(10, 10)),
    result("A", 3, "failed", model="m2", prompts="p2", tokens=(10, 10)),
    result("B", 1, "failed", model="m2", prompts="p2", tokens=(10, 10)),
    result("B", 2, "failed", model="m2", prompts="p2", tokens=(10, 10)),
    result("C", 1, "solved", model="m2", prompts="p2", tokens=(30, 30)),
    result("C", 2, "errored", model="m2", prompts="p2"),
]


def test_summary_of_three_tasks_by_two_samples() -> None:
    summary = summarize(M1)
    [s] = summary.configs
    assert (s.config, s.model, s.prompts) == ("m1", "m1", "default")
    assert (s.runs, s.tasks, s.samples_per_task) == (6, 3, 2)
    assert (s.solved, s.failed, s.errored) == (3, 2, 1)
    # pass@1 = mean(2/2, 1/2, 0/2) = 1.5 / 3 = 0.5
    assert s.pass_at_1 == pytest.approx(0.5)
    # pass@2: A 1 - C(0,2)/C(2,2) = 1; B n-c = 1 < k = 2, so 1; C 1 - C(2,2)/C(2,2) = 0
    #   -> (1 + 1 + 0) / 3 = 2/3
    assert s.pass_at_k == pytest.approx({1: 0.5, 2: 2 / 3})
    # tokens per run: 150, 300, 300, 600, 900, 0 -> 2250 / 6 = 375
    assert s.mean_tokens == pytest.approx(375)
    # solved runs: 150, 300, 300 -> 250; their costs 0.1, 0.2, 0.3 -> 0.2
    assert s.mean_tokens_per_solved == pytest.approx(250)
    assert s.mean_cost_per_solved == pytest.approx(0.2)
    # total: 0.1 + 0.2 + 0.3 + 0.6 + 0.9 = 2.1 over the 5 runs that reported one; / 3 solved
    assert s.total_cost == pytest.approx(2.1)
    assert s.runs_with_cost == 5
    assert s.cost_per_solved == pytest.approx(0.7)
    # wall: 10 + 20 + 30 + 40 + 50 + 30 = 180 -> 30
    assert s.mean_wall_s == pytest.approx(30)
    assert summary.tasks == {
        "A": {"m1": TaskCell(c=2, n=2)},
        "B": {"m1": TaskCell(c=1, n=2)},
        "C": {"m1": TaskCell(c=0, n=2)},
    }


def test_uneven_samples_and_no_costs() -> None:
    summary = summarize(M1 + M2)
    assert [s.config for s in summary.configs] == ["m1", "m2 @ p2"]
    s = summary.configs[1]
    assert (s.runs, s.tasks, s.samples_per_task) == (7, 3, 2)
    assert (s.solved, s.failed, s.errored) == (2, 4, 1)
    # pass@1 = mean(1/3, 0/2, 1/2) = (5/6) / 3 = 5/18
    assert s.pass_at_1 == pytest.approx(5 / 18)
    # k only up to the smallest n (2). pass@2: A 1 - C(2,2)/C(3,2) = 2/3; B 0; C 1
    #   -> (2/3 + 0 + 1) / 3 = 5/9
    assert s.pass_at_k == pytest.approx({1: 5 / 18, 2: 5 / 9})
    # solved runs: A 20 tokens, C 60 -> 40
    assert s.mean_tokens_per_solved == pytest.approx(40)
    assert s.total_cost is None
    assert s.mean_cost_per_solved is None
    assert s.cost_per_solved is None
    assert summary.tasks["A"] == {"m1": TaskCell(c=2, n=2), "m2 @ p2": TaskCell(c=1, n=3)}


def test_errored_runs_are_unsolved_samples() -> None:
    runs = [result("T", 1, "solved"), result("T", 2, "errored"), result("T", 3, "errored")]
    [s] = summarize(runs).configs
    assert (s.solved, s.failed, s.errored) == (1, 0, 2)
    assert s.pass_at_1 == pytest.approx(1 / 3)
    assert summarize(runs).tasks["T"]["m1"] == TaskCell(c=1, n=3)
    assert s.mean_tokens_per_solved == 0
    assert s.mean_cost_per_solved is None


def test_no_solved_run() -> None:
    [s] = summarize([result("T", 1, "failed", cost=0.5)]).configs
    assert s.pass_at_k == {1: 0.0}
    assert s.mean_tokens_per_solved is None
    assert s.total_cost == 0.5
    assert s.cost_per_solved is None


def test_empty() -> None:
    summary = summarize([])
    assert summary == Summary(configs=[], tasks={})
    assert "No results." in summary_markdown(summary)


def brute_force(n: int, c: int, k: int) -> Fraction:
    """Every k-subset of n samples (the first c correct): the share holding a correct one."""
    subsets = list(combinations(range(n), k))
    return Fraction(sum(any(i < c for i in s) for s in subsets), len(subsets))


@given(
    st.integers(1, 10).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))
    )
)
def test_pass_at_k_matches_enumeration(nck: tuple[int, int, int]) -> None:
    n, c, k = nck
    assert pass_at_k(n, c, k) == pytest.approx(float(brute_force(n, c, k)), abs=1e-12)


def test_pass_at_k_edges_and_large_n() -> None:
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 3, 3) == 1.0  # n - c = 2 < k
    assert pass_at_k(4, 1, 1) == 0.25
    # Binomials that overflow a float: C(2000, 1000) ~ 1e600
    exact = 1 - Fraction(math.comb(1990, 1000), math.comb(2000, 1000))
    assert pass_at_k(2000, 10, 1000) == pytest.approx(float(exact), rel=1e-9)
    for bad in [(2, 3, 1), (2, 1, 0), (2, 1, 3), (2, -1, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(*bad)


def test_flips_between_two_groups() -> None:
    only_m1 = result("D", 1, "failed")
    cmp = compare({"m1": [*M1, only_m1], "m2": M2})
    assert cmp.groups == ["m1", "m2"]
    assert cmp.common_tasks == 3
    # A: 2/2 vs 1/3, solved in both; B: 1/2 vs 0/2; C: 0/2 vs 1/2; D: m1 only, no flip
    assert [(f.task, f.solved_in, f.unsolved_in) for f in cmp.flips] == [
        ("B", ["m1"], ["m2"]),
        ("C", ["m2"], ["m1"]),
    ]
    assert cmp.flips[0].cells == {"m1": TaskCell(c=1, n=2), "m2": TaskCell(c=0, n=2)}
    assert cmp.tasks["D"] == {"m1": TaskCell(c=0, n=1), "m2": None}


def test_flips_between_configs_of_one_dir() -> None:
    groups = group_by_config(M2 + M1)
    assert list(groups) == ["m1", "m2 @ p2"]
    assert [f.task for f in compare(groups).flips] == ["B", "C"]


def write_runs(out: Path, runs: list[RunResult]) -> None:
    for r in runs:
        (out / "runs" / r.run_id).mkdir(parents=True)
        (out / "runs" / r.run_id / "result.json").write_text(r.model_dump_json())


def test_load_skips_invalid_results_with_a_warning(tmp_path: Path) -> None:
    write_runs(tmp_path, M1)
    (tmp_path / "runs" / "broken").mkdir()
    (tmp_path / "runs" / "broken" / "result.json").write_text("{not json")
    (tmp_path / "runs" / "partial").mkdir()
    (tmp_path / "runs" / "partial" / "result.json").write_text(json.dumps({"run_id": "x"}))
    (tmp_path / "runs" / "running").mkdir()  # no result.json yet: skipped silently
    warnings: list[str] = []
    loaded = load_results(tmp_path, warnings)
    assert loaded == sorted(M1, key=lambda r: r.run_id)
    assert len(warnings) == 2
    assert "broken/result.json: not a valid result" in warnings[0]
    assert "partial/result.json: not a valid result" in warnings[1]
    assert load_results(tmp_path) == loaded  # no list: no warnings kept, still no traceback


def test_load_without_runs_dir(tmp_path: Path) -> None:
    warnings: list[str] = []
    assert load_results(tmp_path / "nowhere", warnings) == []
    assert warnings == [f"{tmp_path / 'nowhere'}: no runs/ directory"]


def test_write_summary(tmp_path: Path) -> None:
    write_runs(tmp_path, M1 + M2)
    summary = summarize(load_results(tmp_path))
    write_summary(tmp_path, summary)
    assert Summary.model_validate_json((tmp_path / "summary.json").read_text()) == summary
    assert json.loads((tmp_path / "summary.json").read_text())["configs"][0]["pass_at_k"] == {
        "1": 0.5,
        "2": pytest.approx(2 / 3),
    }
    md = (tmp_path / "summary.md").read_text()
    for line in [
        "| metric | m1 | m2 @ p2 |",
        "| --- | ---: | ---: |",
        "| runs | 6 | 7 |",
        "| solved | 3 | 2 |",
        "| errored (counted unsolved) | 1 | 1 |",
        "| pass@1 | 50.0% | 27.8% |",
        "| pass@2 | 66.7% | 55.6% |",
        "| mean tokens per solved run | 250 | 40 |",
        "| mean cost per solved run | $0.2000 | – |",
        "| total cost | $2.10 (5 of 6 runs) | – |",
        "| cost per solved run (total / solved) | $0.7000 | – |",
        "| task | m1 | m2 @ p2 |",
        "| A | 2/2 | 1/3 |",
        "| B | 1/2 | 0/2 |",
        "| C | 0/2 | 1/2 |",
    ]:
        assert line in md.splitlines(), line
    assert not list(tmp_path.glob(".*.tmp"))


def test_markdown_escapes_pipes() -> None:
    md = summary_markdown(summarize([result("a|b", 1, "solved", model="x|y")]))
    assert "| a\\|b | 1/1 |" in md.splitlines()
    assert "| metric | x\\|y |" in md.splitlines()


def test_render_report_escapes_markup() -> None:
    runs = [
        result("[bold]t1", 1, "solved", model="[red]m"),
        result("[bold]t1", 1, "failed", model="m2"),
        result("t2", 1, "solved", model="m2", cost=0.01),
    ]
    groups = group_by_config(runs)
    console = Console(record=True, file=io.StringIO(), width=200, color_system=None)
    render_report(
        console,
        {"[out]": summarize(runs)},
        compare(groups),
        warnings=["runs/[x]/result.json: not a valid result"],
    )
    text = console.export_text()
    assert "warning: runs/[x]/result.json: not a valid result" in text
    assert "[out]" in text
    assert "[red]m" in text
    assert "[bold]t1" in text
    assert "1 task(s) flip between [red]m, m2" in text
    assert "pass@1" in text and "$0.0100" in text
