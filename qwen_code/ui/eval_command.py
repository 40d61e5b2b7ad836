"""The front end of `qwen-code eval`: checks the command line, loads the tasks, runs the
eval with live progress on stderr, writes and prints the summary; `eval report`."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from qwen_code.environment import Environment
from qwen_code.errors import ConfigError, ExitCode, InputError

_SANDBOXES = ("workspace-write", "off")
_BACKENDS = ("local", "ray")


@dataclass(slots=True, kw_only=True)
class RunArgs:
    tasks: Path
    parallel: int = 1
    models: list[str] = field(default_factory=list)
    prompts: list[Path] = field(default_factory=list)
    runs: int = 1
    out: Path | None = None
    repos: Path | None = None
    only: list[str] = field(default_factory=list)
    sandbox: str = "workspace-write"
    keep_workspaces: bool = False
    backend: str = "local"
    ray_address: str | None = None


def _check(args: RunArgs, env: Environment) -> None:
    if args.sandbox not in _SANDBOXES:
        raise InputError(f"--sandbox: {args.sandbox!r} is not one of {', '.join(_SANDBOXES)}.")
    if args.backend not in _BACKENDS:
        raise InputError(f"--backend: {args.backend!r} is not one of {', '.join(_BACKENDS)}.")
    if args.parallel < 1 or args.runs < 1:
        raise InputError("--parallel and --runs take a number of at least 1.")
    for prompts in args.prompts:
        if not (env.cwd / prompts).is_dir():
            raise InputError(f"--prompts {prompts}: no such directory.")
    if args.sandbox != "off":
        from qwen_code.sandbox.manager import Sandbox

        reason = Sandbox.unavailable_reason()
        if reason is not None:
            raise ConfigError(
                f"The eval runs every agent and test in the sandbox, but {reason}.",
                hint="Install bubblewrap, or pass --sandbox off to run them unsandboxed.",
            )


def _load(args: RunArgs, env: Environment) -> list:  # type: ignore[type-arg]
    from qwen_code.eval.tasks import load_tasks

    path = env.cwd / args.tasks
    if not path.is_file():
        raise InputError(f"{args.tasks}: no such task file.")
    repos = env.cwd / args.repos if args.repos else None
    tasks = load_tasks(path, repos_dir=repos)
    if args.only:
        unknown = sorted(set(args.only) - {t.id for t in tasks})
        if unknown:
            raise InputError(f"--task: no task {', '.join(unknown)} in {args.tasks}.")
        tasks = [t for t in tasks if t.id in args.only]
    if not tasks:
        raise InputError(f"{args.tasks} holds no task.")
    return tasks


def _options(args: RunArgs, env: Environment):  # type: ignore[no-untyped-def]
    from qwen_code.eval.runner import EvalOptions
    from qwen_code.settings_files import read_settings_file

    out = env.cwd / (args.out or Path("eval-runs") / args.tasks.stem)
    user_file = env.home / "settings.json"
    hidden = [str((env.cwd / args.tasks).resolve().parent)]
    if args.repos:
        hidden.append(str((env.cwd / args.repos).resolve()))
    return EvalOptions(
        out=out,
        models=[*args.models] or [None],
        prompts=[env.cwd / p for p in args.prompts] or [None],
        runs=args.runs,
        parallel=args.parallel,
        sandbox=args.sandbox,  # type: ignore[arg-type]
        keep_workspaces=args.keep_workspaces,
        backend=args.backend,  # type: ignore[arg-type]
        ray_address=args.ray_address,
        hidden=hidden,
        user_settings=read_settings_file(user_file) if user_file.is_file() else {},
    )


def run_command(env: Environment, args: RunArgs) -> int:
    """`qwen-code eval run`: exit 0 once every run finished (whatever the verdicts), 130
    when interrupted (run it again to resume)."""
    from qwen_code.eval.commands import Stopped
    from qwen_code.eval.runner import plan, run_eval, write_plan
    from qwen_code.ui.eval_progress import EvalProgress

    _check(args, env)
    tasks = _load(args, env)
    options = _options(args, env)
    specs = plan(tasks, options)
    write_plan(options, env.cwd / args.tasks, specs)
    print(f"eval: {len(specs)} runs of {len(tasks)} tasks -> {options.out}", file=env.stderr)
    progress = EvalProgress(env.stderr, live=env.stderr_isatty)
    stop = threading.Event()
    interrupted = False
    try:
        run_eval(specs, options, progress, stop)
    except (KeyboardInterrupt, Stopped):
        interrupted = True
    finally:
        progress.close()
    _summarize(env, options.out)
    if interrupted:
        print(
            "eval: interrupted; finished runs are kept. Run the same command again to resume.",
            file=env.stderr,
        )
        return int(ExitCode.INTERRUPTED)
    return 0


def _summarize(env: Environment, out: Path) -> None:
    from qwen_code.eval.report import load_results, summarize, write_summary
    from qwen_code.ui.eval_report import render_summary

    warnings: list[str] = []
    summary = summarize(load_results(out, warnings, texts=False))
    for warning in warnings:
        print(f"eval: {warning}", file=env.stderr)
    write_summary(out, summary)
    render_summary(env.stdout, summary, str(out))


def report_command(env: Environment, dirs: list[Path]) -> int:
    """`qwen-code eval report DIR...`: each directory's summary; the flips between the
    directories, or between the configs of a single one."""
    from rich.console import Console

    from qwen_code.eval.report import compare, group_by_config, load_results, summarize
    from qwen_code.ui.eval_report import render_report

    groups, summaries, warnings = {}, {}, []
    for directory in dirs:
        path = env.cwd / directory
        if not (path / "runs").is_dir():
            raise InputError(f"{directory}: not an eval results directory (no runs/).")
        groups[str(directory)] = load_results(path, warnings, texts=False)
        summaries[str(directory)] = summarize(groups[str(directory)])
    if len(groups) == 1:
        groups = group_by_config(next(iter(groups.values())))
    comparison = compare(groups) if len(groups) > 1 else None
    console = Console(file=env.stdout, highlight=False)
    render_report(console, summaries, comparison, warnings)
    return 0
