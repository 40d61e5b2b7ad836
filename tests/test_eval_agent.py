"""The eval's agent runs: what it is given (settings, environment, command line) and how
its stream-json output is read back, including a run killed before its result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwen_code.eval.agent_run import (
    agent_argv,
    agent_environment,
    prepare_home,
    read_stream,
)
from qwen_code.eval.model import RunSpec, Task


def spec(**user: object) -> RunSpec:
    task = Task(id="t", repo="/r", prompt="fix it", test="true", timeout=60, max_turns=7)
    return RunSpec(run_id="t__m__default__1", task=task, model="m", user_settings=dict(user))


def test_a_task_repository_is_never_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user may trust every folder of theirs; a task's repository is a stranger's."""
    monkeypatch.setenv("QWEN_CODE_TRUST_WORKSPACE", "1")
    monkeypatch.setenv("QWEN_SANDBOX", "off")
    run = spec(security={"folderTrust": {"enabled": False}}, model={"name": "mine"})
    extra = prepare_home(run, tmp_path / "home", hidden=["/secret"])
    written = json.loads((tmp_path / "home" / "settings.json").read_text())
    assert written["security"]["folderTrust"]["enabled"] is True
    assert written["model"] == {"name": "mine"}  # the rest of the user's settings stay
    sandbox = json.loads(extra.read_text())["tools"]["sandbox"]
    assert sandbox == {"mode": "workspace-write", "network": "none", "hiddenPaths": ["/secret"]}
    env = agent_environment(tmp_path / "home")
    assert "QWEN_CODE_TRUST_WORKSPACE" not in env and "QWEN_SANDBOX" not in env
    argv = agent_argv(run, extra)
    assert argv[argv.index("--max-turns") + 1] == "7"
    assert argv[argv.index("--max-wall-time") + 1] == "60s"
    assert "--yolo" in argv and argv[-2:] == ["-m", "m"]


def test_the_stream_is_read_back(tmp_path: Path) -> None:
    usage = {"input_tokens": 100, "output_tokens": 10, "cache_read_input_tokens": 40}
    assistant = {"type": "assistant", "session_id": "s1", "message": {"usage": usage}}
    lines = [json.dumps({"type": "system", "session_id": "s1"}), json.dumps(assistant)] * 1
    killed = tmp_path / "killed.jsonl"
    killed.write_text("\n".join([*lines, json.dumps(assistant), "{not json"]))
    outcome = read_stream(killed)  # no result message: the sum of what was reported
    assert (outcome.turns, outcome.input_tokens, outcome.output_tokens) == (2, 200, 20)
    assert (outcome.cached_tokens, outcome.session_id) == (80, "s1")

    result = {
        "type": "result",
        "subtype": "error_max_turns",
        "is_error": True,
        "num_turns": 7,
        "total_cost_usd": 0.25,
        "usage": {"input_tokens": 900, "output_tokens": 90, "cache_read_input_tokens": 0},
    }
    whole = tmp_path / "whole.jsonl"
    whole.write_text("\n".join([*lines, json.dumps(result)]))
    outcome = read_stream(whole)
    assert (outcome.subtype, outcome.turns, outcome.cost_usd) == ("error_max_turns", 7, 0.25)
    assert (outcome.input_tokens, outcome.output_tokens, outcome.error) == (
        900,
        90,
        "error_max_turns",
    )
    assert read_stream(tmp_path / "missing.jsonl").turns == 0
