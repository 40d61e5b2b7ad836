"""One run, start to verdict: a fresh workspace, the task's setup, the agent, its diff,
the hidden tests, the test command. Every command the task or the agent runs is in the
sandbox; the run's files go to its run directory; nothing here prints."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from qwen_code.errors import ExitCode
from qwen_code.eval import repos, tasks
from qwen_code.eval.agent_run import AgentOutcome, run_agent
from qwen_code.eval.commands import Finished, run_shell, tail, task_sandbox
from qwen_code.eval.model import RunResult, RunSpec, Timings, model_label

MakeWorkspace = Callable[[Path], str]
"""Creates the workspace at the given path; returns its base commit."""

_NO_RUN_EXITS = frozenset({ExitCode.AUTH, ExitCode.CONFIG, ExitCode.INPUT})
"""Agent exit codes that mean it never worked on the task: the run errored."""


class RunError(Exception):
    """The run cannot be judged (one sentence)."""


def run_one(
    spec: RunSpec,
    *,
    run_dir: Path,
    work_root: Path,
    make_workspace: MakeWorkspace,
    stop: threading.Event,
) -> RunResult:
    """Do the run; raises `commands.Stopped` when `stop` is set (nothing is recorded)."""
    started = time.monotonic()
    run_dir.mkdir(parents=True, exist_ok=True)
    own = work_root / spec.run_id
    shutil.rmtree(own, ignore_errors=True)
    result = RunResult(
        run_id=spec.run_id,
        task=spec.task.id,
        model=model_label(spec.model),
        prompts=spec.prompts_label,
        sample=spec.sample,
        status="errored",
        solved=False,
    )
    run = _Run(spec, result, own, run_dir, [*spec.hidden_paths, str(work_root)], stop)
    try:
        run.phases(make_workspace)
    except RunError as exc:
        result.status, result.error = "errored", str(exc)
    finally:
        run.sandbox.close()
        if not spec.keep_workspace:
            shutil.rmtree(own, ignore_errors=True)
    result.wall_s = round(time.monotonic() - started, 3)
    return result


class _Run:
    """One run's places (its workspace, scratch space and run directory) and phases."""

    def __init__(
        self,
        spec: RunSpec,
        result: RunResult,
        own: Path,
        run_dir: Path,
        hidden: list[str],
        stop: threading.Event,
    ) -> None:
        self.spec, self.task, self.result = spec, spec.task, result
        self.own, self.run_dir, self.hidden, self.stop = own, run_dir, hidden, stop
        self.workspace, self.scratch = own / "workspace", own / "scratch"
        self.sandbox = task_sandbox(spec.sandbox, spec.task.network, hidden)

    def phases(self, make_workspace: MakeWorkspace) -> None:
        timings = self.result.timings
        self.scratch.mkdir(parents=True)
        with _timed(timings, "workspace_s"):
            try:
                base = make_workspace(self.workspace)
            except (repos.EvalRepoError, OSError) as exc:
                raise RunError(f"the workspace could not be created: {exc}") from exc
        if self.task.setup:
            with _timed(timings, "setup_s"):
                self.setup(self.task.setup)
        with _timed(timings, "agent_s"):
            agent = run_agent(
                self.spec,
                workspace=self.workspace,
                home=self.own / "home",
                run_dir=self.run_dir,
                hidden=self.hidden,
                stop=self.stop,
            )
        _record_agent(self.result, agent, self.run_dir)
        self.result.diff = repos.final_diff(self.workspace, base)
        (self.run_dir / "diff.patch").write_text(self.result.diff, encoding="utf-8")
        with _timed(timings, "hidden_s"):
            _hidden_tests(self.spec, self.workspace, base)
        with _timed(timings, "test_s"):
            finished = self.shell(self.task.test, "test-output.txt")
        _verdict(self.spec, self.result, finished, self.run_dir)

    def setup(self, command: str) -> None:
        finished = self.shell(command, "setup-output.txt")
        if finished.timed_out:
            raise RunError(f"setup timed out after {self.task.test_timeout:g} s")
        if finished.exit_code != 0:
            why = tail(self.run_dir / "setup-output.txt", 300).strip()
            raise RunError(f"setup failed (exit {finished.exit_code}): {why}")

    def shell(self, command: str, log_name: str) -> Finished:
        """`command` in the workspace, sandboxed, its output to `log_name`."""
        with (self.run_dir / log_name).open("wb") as out:
            try:
                return run_shell(
                    self.sandbox,
                    command,
                    workspace=self.workspace,
                    scratch=self.scratch,
                    output=out,
                    deadline_s=self.task.test_timeout,
                    stop=self.stop,
                )
            except OSError as exc:
                raise RunError(f"could not run {command!r}: {exc}") from exc


class _timed:
    """Adds the block's seconds to a field of `Timings`."""

    def __init__(self, timings: Timings, name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.started = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        spent = round(time.monotonic() - self.started, 3)
        setattr(self.timings, self.name, getattr(self.timings, self.name) + spent)


def _record_agent(result: RunResult, agent: AgentOutcome, run_dir: Path) -> None:
    result.agent_exit_code, result.agent_subtype = agent.exit_code, agent.subtype
    result.turns, result.cost_usd = agent.turns, agent.cost_usd
    result.input_tokens, result.output_tokens = agent.input_tokens, agent.output_tokens
    result.cached_tokens = agent.cached_tokens
    if (run_dir / "trajectory.jsonl").is_file():
        result.trajectory = "trajectory.jsonl"
    never_ran = agent.exit_code in _NO_RUN_EXITS or (
        agent.exit_code not in (None, 0) and agent.turns == 0 and agent.subtype is None
    )
    if never_ran:
        why = agent.error or tail(run_dir / "agent-stderr.txt", 400).strip() or "no output"
        raise RunError(f"the agent could not run (exit {agent.exit_code}): {why}")


def _hidden_tests(spec: RunSpec, workspace: Path, base: str) -> None:
    try:
        if spec.task.hidden_tests:
            repos.apply_hidden_tests(workspace, Path(spec.task.hidden_tests))
        if spec.task.test_patch:
            repos.apply_test_patch(workspace, spec.task.test_patch, base)
    except (repos.EvalRepoError, OSError) as exc:
        raise RunError(f"the hidden tests could not be applied: {exc}") from exc


def _verdict(spec: RunSpec, result: RunResult, finished: Finished, run_dir: Path) -> None:
    output = run_dir / "test-output.txt"
    result.test_exit_code = finished.exit_code
    result.test_output_tail = tail(output)
    if finished.timed_out:
        raise RunError(f"the test command timed out after {spec.task.test_timeout:g} s")
    if spec.task.swebench is not None:
        text = output.read_text(encoding="utf-8", errors="replace")
        solved, missing = tasks.swebench_verdict(spec.task.swebench, text)
        result.tests_failed = missing
    else:
        solved = finished.exit_code == 0
    result.solved = solved
    result.status = "solved" if solved else "failed"
