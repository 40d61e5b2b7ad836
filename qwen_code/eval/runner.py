"""The eval as a whole: the runs a task set, models, prompt sets and `--runs K` make, which
of them an earlier, interrupted eval already finished (kept), and running the rest in a
pool of `--parallel N` (local threads, each driving the run's processes) or on Ray."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from pathlib import Path

from pydantic import ValidationError

from qwen_code.atomic import atomic_write
from qwen_code.eval import repos
from qwen_code.eval.commands import Stopped
from qwen_code.eval.model import RunResult, RunSpec, Task, run_id
from qwen_code.eval.options import EvalOptions, Progress, internal_error
from qwen_code.eval.run import run_one

RESULT = "result.json"


def prompts_label(path: Path | None, all_paths: Iterable[Path | None]) -> str:
    """A prompt set's name in results: its directory's name (with its parent's when two
    sets share a name); "default" for the shipped templates."""
    if path is None:
        return "default"
    names = [p.name for p in all_paths if p is not None]
    return path.name if names.count(path.name) == 1 else f"{path.parent.name}-{path.name}"


def plan(tasks: list[Task], options: EvalOptions) -> list[RunSpec]:
    """Every run, task-major (so a partial eval covers whole tasks first)."""
    hidden = [str(options.out.resolve()), *options.hidden]
    specs = []
    for task in tasks:
        for model in options.models:
            for prompts in options.prompts:
                label = prompts_label(prompts, options.prompts)
                for sample in range(1, options.runs + 1):
                    specs.append(
                        RunSpec(
                            run_id=run_id(task.id, model, label, sample),
                            task=task,
                            model=model,
                            prompts=str(prompts.resolve()) if prompts else None,
                            prompts_label=label,
                            sample=sample,
                            sandbox=options.sandbox,
                            hidden_paths=[*hidden, *_sources(task)],
                            user_settings=options.user_settings,
                            keep_workspace=options.keep_workspaces,
                        )
                    )
    return specs


def _sources(task: Task) -> list[str]:
    """What a run must not read of its task: the hidden tests, and the repository itself
    when it is local (its history may hold the fix)."""
    local = [] if repos.is_url(task.repo) else [task.repo]
    return [*local, *task.hidden_sources()]


def kept_result(run_dir: Path) -> RunResult | None:
    """The result of a run an earlier eval finished, if it did."""
    try:
        return RunResult.model_validate_json((run_dir / RESULT).read_bytes())
    except (OSError, ValidationError, ValueError):
        return None


def write_result(run_dir: Path, result: RunResult) -> None:
    """Written last and atomically: its presence marks the run finished."""
    atomic_write(run_dir / RESULT, result.model_dump_json(indent=2).encode())


def run_eval(
    specs: list[RunSpec], options: EvalOptions, progress: Progress, stop: threading.Event
) -> int:
    """Run what is not finished yet; returns how many runs finished now. Results go to
    their files as they arrive and are not kept here (20,000 runs' diffs would be).
    Raises `Stopped` once the runs in flight were stopped when `stop` is set."""
    runs_dir = options.out / "runs"
    kept: dict[str, RunResult] = {}
    todo: list[RunSpec] = []
    for spec in specs:
        found = kept_result(runs_dir / spec.run_id)
        if found is not None:
            kept[spec.run_id] = found
        else:
            shutil.rmtree(runs_dir / spec.run_id, ignore_errors=True)  # interrupted: again
            todo.append(spec)
    progress.planned(todo, list(kept.values()))
    finished = 0

    def done(result: RunResult, files: dict[str, bytes] | None = None) -> None:
        run_dir = runs_dir / result.run_id
        for name, data in (files or {}).items():
            atomic_write(run_dir / name, data)
        write_result(run_dir, result)
        nonlocal finished
        finished += 1
        progress.finished(result)

    if options.backend == "ray":
        from qwen_code.eval.ray_backend import run_on_ray

        run_on_ray(todo, options, progress, done, stop)
    else:
        _run_local(todo, options, progress, done, stop)
    return finished


def _run_local(
    specs: list[RunSpec],
    options: EvalOptions,
    progress: Progress,
    done: Callable[[RunResult], None],
    stop: threading.Event,
) -> None:
    cache = options.out / ".cache"
    work_root = Path(tempfile.mkdtemp(prefix="qwen-eval-"))

    def one(spec: RunSpec) -> RunResult:
        progress.started(spec)

        def make_workspace(dest: Path) -> str:
            template = repos.prepare_template(spec.task.repo, spec.task.commit, cache)
            repos.create_workspace(template.path, dest)
            return template.base

        try:
            return run_one(
                spec,
                run_dir=options.out / "runs" / spec.run_id,
                work_root=work_root,
                make_workspace=make_workspace,
                stop=stop,
            )
        except Stopped:
            raise
        except Exception as exc:  # a bug must cost one run, not the eval
            return internal_error(spec, exc)

    pool = ThreadPoolExecutor(max_workers=max(1, options.parallel), thread_name_prefix="eval")
    try:
        pending: set[Future[RunResult]] = {pool.submit(one, spec) for spec in specs}
        while pending:
            finished, pending = wait_futures(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in finished:
                with contextlib.suppress(Stopped):
                    done(future.result())
        if stop.is_set():
            raise Stopped
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(work_root, ignore_errors=True)


def write_plan(options: EvalOptions, tasks_file: Path, specs: list[RunSpec]) -> None:
    """`eval.json`: what this output directory holds, for `eval report` and for people."""
    from qwen_code import __version__

    body = {
        "tasks_file": str(tasks_file),
        "models": [m or "default" for m in options.models],
        "prompts": [str(p) if p else "default" for p in options.prompts],
        "runs": options.runs,
        "planned": len(specs),
        "sandbox": options.sandbox,
        "backend": options.backend,
        "qwen_code_version": __version__,
    }
    options.out.mkdir(parents=True, exist_ok=True)
    atomic_write(options.out / "eval.json", json.dumps(body, indent=2).encode())
