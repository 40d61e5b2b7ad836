"""`--backend ray`: each run is a Ray task on a cluster (`--ray-address`, `RAY_ADDRESS`;
neither: a local Ray instance).

The head prepares each repository's template once and ships it as a git bundle through
Ray's object store (put once, shared by every run of it), with the run's hidden test files
and prompt templates; a worker needs only qwen-code, bubblewrap and its model endpoint.
It creates the workspace from the bundle in a temporary directory, does the run, and
returns the result with the run's files, which the head writes to its output directory as
each run finishes (`ray.wait`), so an interrupted eval resumes as a local one does.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qwen_code.errors import ConfigError
from qwen_code.eval import repos
from qwen_code.eval.commands import Stopped
from qwen_code.eval.model import RunResult, RunSpec
from qwen_code.eval.options import EvalOptions, Progress, internal_error
from qwen_code.eval.run import run_one

MODEL_VARIABLES = (
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_MODEL",
    "QWEN_MODEL",
    "DASHSCOPE_API_KEY",
    "DASHSCOPE_REGION",
)
"""What the agent reads for its model: given to the workers as the head has them (the
user pointed the eval at this cluster)."""

Files = dict[str, bytes]


def directory_files(path: Path) -> Files:
    """A directory's files by relative path (hidden tests, prompt templates)."""
    return {
        str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()
    }


def write_files(files: Files, dest: Path) -> Path:
    for name, data in files.items():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    dest.mkdir(parents=True, exist_ok=True)
    return dest


def remote_run(
    spec_json: dict[str, Any], bundle: bytes, base: str, hidden: Files, prompts: Files
) -> tuple[dict[str, Any], Files]:
    """The worker's side of one run (a Ray task): everything in a temporary directory."""
    spec = RunSpec.model_validate(spec_json)
    with tempfile.TemporaryDirectory(prefix="qwen-eval-ray-") as tmp:
        root = Path(tmp)
        task = spec.task
        if task.hidden_tests:
            task = task.model_copy(
                update={"hidden_tests": str(write_files(hidden, root / "hidden"))}
            )
        spec = spec.model_copy(update={"task": task})
        if spec.prompts:
            spec = spec.model_copy(update={"prompts": str(write_files(prompts, root / "prompts"))})
        spec = spec.model_copy(update={"hidden_paths": [*spec.hidden_paths, str(root)]})

        def make_workspace(dest: Path) -> str:
            repos.create_workspace_from_bundle(bundle, dest)
            return base

        run_dir = root / "run"
        result = run_one(
            spec,
            run_dir=run_dir,
            work_root=root / "work",
            make_workspace=make_workspace,
            stop=threading.Event(),
        )
        return result.model_dump(), directory_files(run_dir)


def run_on_ray(
    specs: list[RunSpec],
    options: EvalOptions,
    progress: Progress,
    done: Callable[[RunResult, Files], None],
    stop: threading.Event,
) -> None:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--backend ray needs Ray.", hint="pip install 'qwen-code[ray]'") from exc
    started_here = not ray.is_initialized()
    if started_here:
        env_vars = {k: os.environ[k] for k in MODEL_VARIABLES if k in os.environ}
        address = options.ray_address or os.environ.get("RAY_ADDRESS") or None
        ray.init(
            address=address,
            num_cpus=None if address else options.parallel,  # a local instance: --parallel
            runtime_env={"env_vars": env_vars} if env_vars else None,
            include_dashboard=False,
            log_to_driver=False,
        )
    try:
        _submit_and_collect(ray, specs, options, progress, done, stop)
    finally:
        if started_here:
            ray.shutdown()


def _submit_and_collect(
    ray: Any,
    specs: list[RunSpec],
    options: EvalOptions,
    progress: Progress,
    done: Callable[[RunResult, Files], None],
    stop: threading.Event,
) -> None:
    shipper = _Shipper(ray, options.out / ".cache")
    task_fn = ray.remote(max_retries=0)(remote_run)
    refs: dict[Any, RunSpec] = {}
    for spec in specs:
        try:
            bundle, base = shipper.template(spec)
        except (repos.EvalRepoError, OSError) as exc:
            done(internal_error(spec, exc, "the workspace could not be created"), {})
            continue
        resources: dict[str, Any] = {"num_cpus": spec.task.cpus}
        if spec.task.memory_mb:
            resources["memory"] = spec.task.memory_mb * 1024 * 1024
        ref = task_fn.options(name=spec.run_id, **resources).remote(
            spec.model_dump(),
            bundle,
            base,
            shipper.files(spec.task.hidden_tests),
            shipper.files(spec.prompts),
        )
        refs[ref] = spec
        progress.started(spec)
    try:
        _collect(ray, refs, done, stop)
    except BaseException:
        for ref in refs:
            with contextlib.suppress(Exception):
                ray.cancel(ref)
        raise


class _Shipper:
    """What runs share, put in the object store once: each repository's template (a git
    bundle) and each directory of hidden tests or prompt templates."""

    def __init__(self, ray: Any, cache: Path) -> None:
        self.ray, self.cache = ray, cache
        self._templates: dict[tuple[str, str | None], tuple[Any, str]] = {}
        self._directories: dict[str, Any] = {}

    def template(self, spec: RunSpec) -> tuple[Any, str]:
        key = (spec.task.repo, spec.task.commit)
        if key not in self._templates:
            template = repos.prepare_template(key[0], key[1], self.cache)
            self._templates[key] = (self.ray.put(repos.bundle_bytes(template.path)), template.base)
        return self._templates[key]

    def files(self, path: str | None) -> Any:
        if path is None:
            return {}
        if path not in self._directories:
            self._directories[path] = self.ray.put(directory_files(Path(path)))
        return self._directories[path]


def _collect(
    ray: Any,
    refs: dict[Any, RunSpec],
    done: Callable[[RunResult, Files], None],
    stop: threading.Event,
) -> None:
    """Write each run's result as it arrives; `refs` shrinks to what is still running."""
    while refs:
        if stop.is_set():
            raise Stopped
        # every run that finished within the half second (not one per call: with
        # thousands in flight, one ray.wait per result would cost O(n^2))
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0.5)
        for ref in ready:
            spec = refs.pop(ref)
            try:
                result_json, files = ray.get(ref)
                done(RunResult.model_validate(result_json), files)
            except Exception as exc:  # the worker died, Ray failed: this run errored
                done(internal_error(spec, exc), {})
