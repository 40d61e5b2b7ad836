"""`qwen-code eval run` end to end: real agent subprocesses against the scripted model,
real git workspaces, the real sandbox, real test commands; resume after a kill; reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from qwen_code.cli import main
from qwen_code.environment import Environment
from tests.eval_helpers import build_tasks, scripted_model
from tests.fakeserver import FakeLLM
from tests.helpers import captured_env
from tests.sandbox_helpers import needs_sandbox

pytestmark = needs_sandbox


def cli_env(tmp_path: Path) -> Environment:
    return captured_env(tmp_path, Path(os.environ["QWEN_HOME"]))


def results(out: Path) -> dict[str, dict[str, Any]]:
    return {
        p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob("runs/*/result.json"))
    }


def test_an_eval_judges_each_run_by_its_tests(tmp_path: Path, fake_llm: FakeLLM) -> None:
    outside = tmp_path / "outside.txt"
    tasks = build_tasks(tmp_path / "set", outside=outside)
    hidden = tmp_path / "set" / "hidden-mul" / "test_mul.py"
    fake_llm.script(*[scripted_model(outside, peek=hidden)] * 80)
    env = cli_env(tmp_path)
    out = tmp_path / "out"
    args = ["eval", "run", str(tasks), "--parallel", "3", "--runs", "2", "--out", str(out)]
    assert main(args, env=env) == 0, env.stderr.getvalue()  # type: ignore[attr-defined]

    found = results(out)
    assert len(found) == 6
    verdicts = {(r["task"], r["sample"]): r["status"] for r in found.values()}
    assert verdicts == {
        ("add", 1): "solved",
        ("add", 2): "solved",
        ("greet", 1): "failed",
        ("greet", 2): "failed",
        ("mul", 1): "failed",  # the visible test passes; the hidden one catches `return 6`
        ("mul", 2): "failed",
    }
    for run in found.values():
        assert run["turns"] >= 1 and run["input_tokens"] > 0, run
        assert run["trajectory"] == "trajectory.jsonl"
    adds = [r for r in found.values() if r["task"] == "add"]
    for run in adds:  # each run edited calc.py in its own workspace, once
        assert run["diff"].count("+    return a + b") == 1, run["diff"]
        assert "a + b" in (out / "runs" / run["run_id"] / "diff.patch").read_text()
    mul = next(r for r in found.values() if r["task"] == "mul")
    assert "15" in mul["test_output_tail"]
    assert not outside.exists()  # the sandbox kept the greet run's command inside
    tool_output = [
        m["content"]
        for r in fake_llm.chat_requests
        for m in r.body["messages"]
        if m["role"] == "tool"
    ]
    assert not any("mul(3, 5)" in str(c) for c in tool_output)  # hidden tests stayed hidden
    assert any("No such file or directory" in str(c) for c in tool_output)

    summary = json.loads((out / "summary.json").read_text())
    (config,) = summary["configs"]
    assert (config["solved"], config["failed"], config["errored"]) == (2, 4, 0)
    assert config["pass_at_1"] == pytest.approx(1 / 3)
    assert "pass@1" in env.stdout.getvalue()  # type: ignore[attr-defined]
    assert "summary.md" in {p.name for p in out.iterdir()}

    report = cli_env(tmp_path)
    assert main(["eval", "report", str(out)], env=report) == 0
    assert "33.3%" in report.stdout.getvalue()  # type: ignore[attr-defined]


def test_a_killed_eval_resumes(tmp_path: Path, fake_llm: FakeLLM) -> None:
    """SIGINT mid-way: finished runs are kept, the one in flight runs again, nothing twice."""
    tasks = build_tasks(tmp_path / "set")
    route = scripted_model()
    slow = {"n": 0}

    def slow_route(body: dict[str, Any]) -> Any:
        slow["n"] += 1
        if "greet" in json.dumps(body["messages"][:2]) and slow["n"] < 40:
            time.sleep(30)  # the greet run hangs here until the eval is interrupted
        return route(body)

    fake_llm.script(*[slow_route] * 80)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "qwen_code", "eval", "run", str(tasks), "--out", str(out)]
    proc = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out / "runs" / "add__default__default__1" / "result.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    time.sleep(1.0)  # the greet run is now waiting on the model
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"Run the same command again to resume" in err
    first = results(out)
    assert list(first) == ["add__default__default__1"]

    slow["n"] = 100  # no more hanging
    again = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stderr
    assert "1 runs kept from before, 2 to run" in again.stderr
    second = results(out)
    assert sorted(second) == [
        "add__default__default__1",
        "greet__default__default__1",
        "mul__default__default__1",
    ]
    assert second["add__default__default__1"] == first["add__default__default__1"]


def test_the_ray_backend_runs_the_same_eval(tmp_path: Path, fake_llm: FakeLLM) -> None:
    """Each run a Ray task on a local Ray instance (2 CPUs); the template travels as a git
    bundle through the object store, the hidden tests with it; results land in OUT."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'qwen-code[ray]')")
    outside = tmp_path / "outside.txt"
    tasks = build_tasks(tmp_path / "set", outside=outside)
    fake_llm.script(*[scripted_model(outside)] * 40)
    env = cli_env(tmp_path)
    out = tmp_path / "out"
    args = ["eval", "run", str(tasks), "--backend", "ray", "--parallel", "2", "--out", str(out)]
    assert main(args, env=env) == 0, env.stderr.getvalue()  # type: ignore[attr-defined]
    found = results(out)
    assert {r["task"]: r["status"] for r in found.values()} == {
        "add": "solved",
        "greet": "failed",
        "mul": "failed",
    }
    for run in found.values():
        files = {p.name for p in (out / "runs" / run["run_id"]).iterdir()}
        assert {"result.json", "diff.patch", "test-output.txt", "trajectory.jsonl"} <= files
    assert not outside.exists()


SUB_BUG = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a + b\n"
SUB_FIXED = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"
TEST_CALC = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
TEST_PATCH = "\n".join(
    [
        "diff --git a/test_calc.py b/test_calc.py",
        "--- a/test_calc.py",
        "+++ b/test_calc.py",
        "@@ -1,5 +1,9 @@",
        "-from calc import add",
        "+from calc import add, sub",
        " ",
        " ",
        " def test_add():",
        "     assert add(2, 3) == 5",
        "+",
        "+",
        "+def test_sub():",
        "+    assert sub(5, 3) == 2",
        "",
    ]
)


def swebench_mirror(repos: Path) -> str:
    """`repos/acme__calc`: the bug at the base commit, the fix in a later commit (which
    the workspace must not contain). Returns the base commit."""
    from tests.helpers import git, make_repo

    repo = make_repo(
        repos / "acme__calc",
        {
            "calc.py": SUB_BUG,
            "test_calc.py": TEST_CALC,
        },
        commit=True,
    )
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "calc.py").write_text(SUB_FIXED)
    git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qam", "the fix")
    return base


def test_a_swebench_instance_from_a_local_mirror(
    tmp_path: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    repos = tmp_path / "repos"
    repos.mkdir()
    base = swebench_mirror(repos)
    instance = {
        "instance_id": "acme__calc-1",
        "repo": "acme/calc",
        "base_commit": base,
        "problem_statement": "sub() adds instead of subtracting.",
        "test_patch": TEST_PATCH,
        "FAIL_TO_PASS": json.dumps(["test_calc.py::test_sub"]),
        "PASS_TO_PASS": json.dumps(["test_calc.py::test_add"]),
    }
    tasks = tmp_path / "swe.jsonl"
    tasks.write_text(json.dumps(instance) + "\n")
    steps = [
        {"name": "run_shell_command", "arguments": {"command": "git log --all --oneline | wc -l"}},
        {
            "name": "edit",
            "arguments": {
                "file_path": "calc.py",
                "old_string": "def sub(a, b):\n    return a + b",
                "new_string": "def sub(a, b):\n    return a - b",
            },
        },
    ]
    from tests.fakeserver import call, text, tool_turn

    def route(body: dict[str, Any]) -> Any:
        done = sum(1 for m in body["messages"] if m["role"] == "tool")
        if done < len(steps):
            return tool_turn(call(steps[done]["name"], **steps[done]["arguments"]))
        return text("Fixed sub.")

    fake_llm.script(*[route] * 10)
    env = cli_env(tmp_path)
    out = tmp_path / "out"
    args = ["eval", "run", str(tasks), "--repos", str(repos), "--out", str(out)]
    assert main(args, env=env) == 0, env.stderr.getvalue()  # type: ignore[attr-defined]
    (run,) = results(out).values()
    assert run["status"] == "solved", run
    assert run["tests_failed"] == []
    history = [m for r in fake_llm.chat_requests for m in r.body["messages"] if m["role"] == "tool"]
    assert history[0]["content"].strip().endswith("1")  # one commit: the fix is not there


def test_no_sandbox_no_eval_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without bubblewrap the eval refuses to run the agent unsandboxed by itself."""
    from qwen_code.errors import ExitCode
    from qwen_code.sandbox import bwrap

    monkeypatch.setattr(bwrap, "unavailable_reason", lambda: "bubblewrap is not installed")
    tasks = build_tasks(tmp_path / "set")
    env = cli_env(tmp_path)
    assert main(["eval", "run", str(tasks)], env=env) == int(ExitCode.CONFIG)
    err = env.stderr.getvalue()  # type: ignore[attr-defined]
    assert "bubblewrap is not installed" in err and "--sandbox off" in err
    assert not (tmp_path / "eval-runs").exists()


def test_bad_command_lines_say_what_is_wrong(tmp_path: Path) -> None:
    tasks = build_tasks(tmp_path / "set")
    cases = [
        (["eval", "run", "missing.jsonl"], "missing.jsonl: no such task file"),
        (["eval", "run", str(tasks), "--task", "nope"], "no task nope"),
        (["eval", "run", str(tasks), "--backend", "slurm"], "--backend: 'slurm'"),
        (["eval", "run", str(tasks), "--parallel", "0"], "at least 1"),
        (["eval", "report", str(tmp_path)], "not an eval results directory"),
    ]
    for argv, message in cases:
        env = cli_env(tmp_path)
        assert main(argv, env=env) != 0, argv
        assert message in env.stderr.getvalue(), (argv, env.stderr.getvalue())  # type: ignore[attr-defined]
