"""`qwen-code eval run TASKS` (many sandboxed agent runs, validated by their tests) and
`qwen-code eval report DIR...` (summaries, comparisons).

Only typer is imported here at module level; the eval itself is imported inside the
commands, so `--help` stays fast. `register(app)` adds the group to the main app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qwen_code.cli_help import HelpGroup
from qwen_code.environment import from_context

ModelsOpt = Annotated[
    list[str] | None,
    typer.Option("--model", "-m", help="A model to evaluate (repeat to compare several)."),
]
PromptsOpt = Annotated[
    list[Path] | None,
    typer.Option("--prompts", help="A prompt-template directory (repeat to compare several)."),
]


def eval_run(
    ctx: typer.Context,
    tasks: Annotated[
        Path,
        typer.Argument(metavar="TASKS", help="Task file: JSONL, YAML, or SWE-bench JSONL."),
    ],
    parallel: Annotated[int, typer.Option("--parallel", "-j", help="Runs at once.")] = 1,
    model: ModelsOpt = None,
    prompts: PromptsOpt = None,
    runs: Annotated[int, typer.Option("--runs", "-k", help="Runs per task and config.")] = 1,
    out: Annotated[
        Path | None, typer.Option("--out", help="Results directory (again: resume).")
    ] = None,
    repos: Annotated[
        Path | None, typer.Option("--repos", help="SWE-bench: where the repositories are.")
    ] = None,
    task: Annotated[
        list[str] | None, typer.Option("--task", help="Only this task id (repeatable).")
    ] = None,
    sandbox: Annotated[
        str, typer.Option("--sandbox", help="workspace-write (default) or off.")
    ] = "workspace-write",
    keep_workspaces: Annotated[
        bool, typer.Option("--keep-workspaces", help="Keep each run's workspace.")
    ] = False,
    backend: Annotated[str, typer.Option("--backend", help="local (default) or ray.")] = "local",
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="Ray cluster (default: $RAY_ADDRESS).")
    ] = None,
) -> int:
    """Run the agent on every task (x models x prompt sets x runs), each in a fresh
    sandboxed workspace, and check each by running the task's tests (docs/eval.md)."""
    from qwen_code.ui.eval_command import RunArgs, run_command

    args = RunArgs(
        tasks=tasks,
        parallel=parallel,
        models=list(model or []),
        prompts=list(prompts or []),
        runs=runs,
        out=out,
        repos=repos,
        only=list(task or []),
        sandbox=sandbox,
        keep_workspaces=keep_workspaces,
        backend=backend,
        ray_address=ray_address,
    )
    return run_command(from_context(ctx), args)


def eval_report(
    ctx: typer.Context,
    dirs: Annotated[list[Path], typer.Argument(help="Results directories of `eval run`.")],
) -> int:
    """Print pass@1, pass@k, tokens and cost per model and prompt set; with several
    directories or configs, the tasks that flip between them."""
    from qwen_code.ui.eval_command import report_command

    return report_command(from_context(ctx), dirs)


def register(app: typer.Typer) -> None:
    """Add `eval` (run, report) to `app`."""
    eval_app = typer.Typer(
        cls=HelpGroup,
        no_args_is_help=True,
        rich_markup_mode=None,
        help="Run the agent on task sets in sandboxed workspaces; compare models and prompts.",
    )
    eval_app.command("run")(eval_run)
    eval_app.command("report")(eval_report)
    app.add_typer(eval_app, name="eval")
