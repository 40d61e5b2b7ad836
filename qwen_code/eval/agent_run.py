"""One headless agent run in a workspace: `qwen-code -p TASK --yolo --output-format
stream-json`, in its own qwen-code home (the user's settings, the run's prompt templates,
its own session store), its commands in the sandbox; what it reported, read back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_code.atomic import atomic_write
from qwen_code.eval.commands import wait
from qwen_code.eval.model import RunSpec
from qwen_code.trust import OPT_IN_ENV

GRACE_S = 60.0
"""How long past its --max-wall-time the agent gets to finish before it is killed."""


@dataclass(slots=True)
class AgentOutcome:
    exit_code: int | None
    """None: killed at its deadline."""
    seconds: float
    subtype: str | None = None
    error: str | None = None
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = None
    session_id: str | None = None
    final_text: str = ""
    notes: list[str] = field(default_factory=list)


def agent_settings(spec: RunSpec, hidden: list[str]) -> dict[str, Any]:
    """The settings the eval puts above the user's: the sandbox, and nothing that asks."""
    sandbox: dict[str, Any] = {"mode": spec.sandbox}
    if spec.sandbox != "off":
        sandbox.update(network=spec.task.network, hiddenPaths=hidden)
    return {"tools": {"sandbox": sandbox}}


def prepare_home(spec: RunSpec, home: Path, hidden: list[str]) -> Path:
    """The run's qwen-code home: the user's settings.json, the prompt templates under
    test, and the eval's settings file (returned)."""
    home.mkdir(parents=True, exist_ok=True)
    atomic_write(home / "settings.json", json.dumps(user_settings(spec)).encode())
    if spec.prompts:
        shutil.copytree(spec.prompts, home / "prompts", dirs_exist_ok=True)
    extra = home / "eval-settings.json"
    atomic_write(extra, json.dumps(agent_settings(spec, hidden)).encode())
    return extra


def user_settings(spec: RunSpec) -> dict[str, Any]:
    """The user's settings, with folder trust forced on: a task's repository is a
    stranger's, whatever the user decided for their own folders."""
    settings = json.loads(json.dumps(spec.user_settings))
    security = settings.setdefault("security", {})
    if not isinstance(security, dict):
        security = settings["security"] = {}
    folder = security.setdefault("folderTrust", {})
    if not isinstance(folder, dict):
        folder = security["folderTrust"] = {}
    folder["enabled"] = True
    return settings


def agent_environment(home: Path) -> dict[str, str]:
    """The eval's environment for the agent, less what would trust or sandbox it
    differently than the eval says."""
    env = {**os.environ, "QWEN_HOME": str(home), "NO_COLOR": "1"}
    for name in ("QWEN_SANDBOX", OPT_IN_ENV):
        env.pop(name, None)
    return env


def agent_argv(spec: RunSpec, settings_file: Path) -> list[str]:
    argv = [sys.executable, "-m", "qwen_code", "-p", spec.task.prompt, "--yolo"]
    argv += ["--output-format", "stream-json", "--max-turns", str(spec.task.max_turns)]
    argv += ["--max-wall-time", f"{spec.task.timeout:g}s", "--settings", str(settings_file)]
    if spec.model:
        argv += ["-m", spec.model]
    return argv


def run_agent(
    spec: RunSpec,
    *,
    workspace: Path,
    home: Path,
    run_dir: Path,
    hidden: list[str],
    stop: threading.Event,
) -> AgentOutcome:
    """Run the agent to its end (or its deadline); its stderr to `run_dir/agent-stderr.txt`,
    its session to `run_dir/trajectory.jsonl` (its stream-json output stays as
    `agent.jsonl` only when there is no session file)."""
    settings_file = prepare_home(spec, home, hidden)
    env = agent_environment(home)
    stream, errors = run_dir / "agent.jsonl", run_dir / "agent-stderr.txt"
    with stream.open("wb") as out, errors.open("wb") as err:
        proc = subprocess.Popen(
            agent_argv(spec, settings_file),
            cwd=workspace,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        finished = wait(proc, spec.task.timeout + GRACE_S, stop)
    outcome = read_stream(stream)
    outcome.exit_code, outcome.seconds = finished.exit_code, finished.seconds
    if finished.timed_out:
        outcome.notes.append(f"the agent was killed after {finished.seconds:.0f} s")
    if keep_session(home, outcome.session_id, run_dir / "trajectory.jsonl"):
        stream.unlink()  # the session file holds all of it, and more: half the disk
    return outcome


def read_stream(path: Path) -> AgentOutcome:
    """What a stream-json run reported: the result message's totals, or (killed before
    it) the sum of its assistant messages' usage."""
    outcome = AgentOutcome(exit_code=None, seconds=0.0)
    result: dict[str, Any] | None = None
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return outcome
    for line in lines:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        outcome.session_id = message.get("session_id") or outcome.session_id
        if message.get("type") == "assistant":
            outcome.turns += 1
            _add_usage(outcome, (message.get("message") or {}).get("usage") or {})
        elif message.get("type") == "result":
            result = message
    if result is not None:
        _from_result(outcome, result)
    return outcome


def _add_usage(outcome: AgentOutcome, usage: dict[str, Any]) -> None:
    outcome.input_tokens += int(usage.get("input_tokens") or 0)
    outcome.output_tokens += int(usage.get("output_tokens") or 0)
    outcome.cached_tokens += int(usage.get("cache_read_input_tokens") or 0)


def _from_result(outcome: AgentOutcome, result: dict[str, Any]) -> None:
    outcome.subtype = result.get("subtype")
    outcome.turns = int(result.get("num_turns") or outcome.turns)
    outcome.cost_usd = result.get("total_cost_usd")
    outcome.final_text = str(result.get("result") or "")
    if result.get("is_error"):
        outcome.error = str(result.get("error") or result.get("result") or outcome.subtype)
    usage = result.get("usage")
    if isinstance(usage, dict):
        outcome.input_tokens = outcome.output_tokens = outcome.cached_tokens = 0
        _add_usage(outcome, usage)


def keep_session(home: Path, session_id: str | None, dest: Path) -> bool:
    """Copy the run's session file (its full transcript) out of the run's home."""
    sessions = sorted(home.glob("projects/*/sessions/*.jsonl"))
    chosen = [s for s in sessions if session_id and s.stem == session_id] or sessions[-1:]
    if chosen:
        shutil.copyfile(chosen[0], dest)
    return bool(chosen)
