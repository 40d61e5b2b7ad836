"""The eval's data at its edges: a task, one run of it (what a worker needs), and the
result a run leaves in `OUT/runs/<run_id>/result.json`."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_TIMEOUT_S = 1800.0
DEFAULT_TEST_TIMEOUT_S = 600.0
DEFAULT_MAX_TURNS = 100

Status = Literal["solved", "failed", "errored"]
"""solved: the test command passed; failed: it ran and did not; errored: the run could not
be judged (the workspace, setup or agent broke, the test timed out)."""


class SweBenchCheck(BaseModel):
    """SWE-bench's verdict rule: every listed test must pass after the test patch."""

    model_config = ConfigDict(extra="forbid")

    fail_to_pass: list[str] = Field(default_factory=list)
    pass_to_pass: list[str] = Field(default_factory=list)


class Task(BaseModel):
    """One task, as a task file gives it (paths already made absolute)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    repo: str
    """A local directory, a git bundle, a tarball, or a git URL."""
    commit: str | None = None
    """What to check out (a git repository, bundle or URL); None: HEAD, or the files as
    they are for a plain directory or tarball."""
    setup: str | None = None
    """Run in the workspace before the agent (sandboxed, the task's network)."""
    prompt: str
    test: str
    """Run after the agent stops and the hidden tests are in place: exit 0 = solved."""
    timeout: float = DEFAULT_TIMEOUT_S
    """Seconds for the agent."""
    test_timeout: float = DEFAULT_TEST_TIMEOUT_S
    max_turns: int = DEFAULT_MAX_TURNS
    hidden_tests: str | None = None
    """A directory whose files are copied over the workspace after the agent stops."""
    test_patch: str | None = None
    """A unified diff applied (git apply) after the agent stops (SWE-bench's test_patch);
    the files it touches are first reset to the base commit."""
    network: Literal["none", "all"] | list[str] = "none"
    """For setup, the agent's commands and the test: none, all, or allowed host names."""
    swebench: SweBenchCheck | None = None
    """Set for SWE-bench instances: the verdict parses the test output."""
    cpus: float = 1.0
    """Ray: CPUs the run reserves on a worker (the agent mostly waits on the model)."""
    memory_mb: int | None = None
    """Ray: memory the run reserves on a worker."""

    def hidden_sources(self) -> list[str]:
        """Paths the agent's commands must not read (the hidden tests)."""
        return [self.hidden_tests] if self.hidden_tests else []


class RunSpec(BaseModel):
    """Everything one run needs, picklable (a Ray task's argument)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    task: Task
    model: str | None = None
    """`-m` for the agent; None: the user's configured model."""
    prompts: str | None = None
    """A prompt-template directory, copied into the run's qwen-code home; None: shipped."""
    prompts_label: str = "default"
    sample: int = 1
    """Which of the `--runs K` repetitions (1-based)."""
    sandbox: Literal["workspace-write", "off"] = "workspace-write"
    hidden_paths: list[str] = Field(default_factory=list)
    """Hidden from every sandboxed command: the output and cache directories, the task
    files, the other runs' workspaces."""
    user_settings: dict[str, Any] = Field(default_factory=dict)
    """The user's own settings.json, given to the agent (its model and provider)."""
    keep_workspace: bool = False


def model_label(model: str | None) -> str:
    return model or "default"


def run_id(task_id: str, model: str | None, prompts_label: str, sample: int) -> str:
    """A file-name-safe id, unique per (task, model, prompts, sample)."""
    parts = [task_id, model_label(model), prompts_label, str(sample)]
    return "__".join(re.sub(r"[^A-Za-z0-9._-]+", "-", p).strip("-") or "x" for p in parts)


class Timings(BaseModel):
    workspace_s: float = 0.0
    setup_s: float = 0.0
    agent_s: float = 0.0
    hidden_s: float = 0.0
    test_s: float = 0.0


class RunResult(BaseModel):
    """`result.json` of a finished run."""

    run_id: str
    task: str
    model: str
    prompts: str
    sample: int
    status: Status
    solved: bool
    error: str | None = None
    """Why the run errored, in a sentence."""
    test_exit_code: int | None = None
    test_output_tail: str = ""
    agent_exit_code: int | None = None
    agent_subtype: str | None = None
    """The headless result's subtype (success, error_max_turns, ...)."""
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = None
    wall_s: float = 0.0
    timings: Timings = Field(default_factory=Timings)
    trajectory: str | None = None
    """The agent's session file, relative to the run directory."""
    diff: str = ""
    """The agent's final change against the base commit (before the hidden tests)."""
    tests_failed: list[str] = Field(default_factory=list)
    """SWE-bench: the listed tests that did not pass."""

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens
