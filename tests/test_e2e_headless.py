"""End to end: `qwen-code -p` as a real subprocess fixes a failing test in a git repo.

The scripted model reads the file, edits it, runs the tests through the shell tool and
answers; the recorded requests show each tool result went back to the model.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakeserver import FakeLLM, Turn, call, text, tool_turn
from tests.helpers import alive, make_repo, run_qwen_code

FINAL = "Fixed `add`: it subtracted. The test passes now."


CALC = {
    "calc.py": "def add(a, b):\n    return a - b\n",
    "test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
}


def calc_repo(root: Path) -> Path:
    """A committed git repository whose one test fails: `add` subtracts."""
    return make_repo(root, CALC, commit=True)


def run_tests(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_calc.py"],
        cwd=repo,
        capture_output=True,
        text=True,
    )


def expect_last_tool_result(containing: str, reply: Turn) -> Callable[[dict[str, Any]], Turn]:
    """A turn that is played only if the previous tool result reached the model."""

    def respond(body: dict[str, Any]) -> Turn:
        last = body["messages"][-1]
        assert last["role"] == "tool", last
        assert containing in last["content"], last["content"]
        return reply

    return respond


def script_fix(fake: FakeLLM) -> None:
    pytest_cmd = f"{sys.executable} -m pytest -q -p no:cacheprovider test_calc.py"
    fake.script(
        tool_turn(call("read_file", file_path="calc.py"), text="Let me look at calc.py."),
        expect_last_tool_result(
            "return a - b",
            tool_turn(call("edit", file_path="calc.py", old_string="a - b", new_string="a + b")),
        ),
        expect_last_tool_result(
            "Successfully modified", tool_turn(call("run_shell_command", command=pytest_cmd))
        ),
        expect_last_tool_result("1 passed", text(FINAL)),
    )


def assert_fixed(repo: Path, fake: FakeLLM) -> None:
    assert run_tests(repo).returncode == 0
    assert fake.errors == []
    assert fake.unscripted == 0
    requests = fake.chat_requests
    assert len(requests) == 4
    first = requests[0].body
    assert first is not None
    assert first["messages"][0]["role"] == "system"
    assert first["messages"][-1] == {"role": "user", "content": "fix the failing test"}
    assert {t["function"]["name"] for t in first["tools"]} >= {
        "read_file",
        "edit",
        "run_shell_command",
    }
    for earlier, later in itertools.pairwise(requests):
        assert earlier.body and later.body
        n = len(earlier.body["messages"])
        assert later.body["messages"][:n] == earlier.body["messages"]  # prefix-stable
        assert later.body["tools"] == earlier.body["tools"]


def test_text_output(tmp_path: Path, fake_llm: FakeLLM) -> None:
    repo = calc_repo(tmp_path / "repo")
    assert run_tests(repo).returncode != 0
    script_fix(fake_llm)
    result = run_qwen_code(repo, "-p", "fix the failing test", "--yolo")
    assert result.returncode == 0, result.stderr
    assert result.stdout == FINAL + "\n"
    assert_fixed(repo, fake_llm)


def test_json_output(tmp_path: Path, fake_llm: FakeLLM) -> None:
    repo = calc_repo(tmp_path / "repo")
    script_fix(fake_llm)
    result = run_qwen_code(repo, "fix the failing test", "--yolo", "-o", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["type"] == "result"
    assert report["subtype"] == "success"
    assert report["is_error"] is False
    assert report["result"] == FINAL
    assert report["num_turns"] == 4
    assert [c["name"] for c in report["tool_calls"]] == ["read_file", "edit", "run_shell_command"]
    assert all(c["is_error"] is False for c in report["tool_calls"])
    assert report["permission_denials"] == []
    assert report["usage"]["input_tokens"] > 0
    assert report["session_id"]
    assert report["duration_ms"] >= report["duration_api_ms"] >= 0
    assert_fixed(repo, fake_llm)


def test_stream_json_output(tmp_path: Path, fake_llm: FakeLLM) -> None:
    repo = calc_repo(tmp_path / "repo")
    script_fix(fake_llm)
    result = run_qwen_code(repo, "-p", "fix the failing test", "-y", "-o", "stream-json")
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [(m["type"], m.get("subtype")) for m in messages]
    assert kinds[0] == ("system", "init")
    assert kinds[-1] == ("result", "success")
    assert kinds[1:-1] == [("assistant", None), ("user", None)] * 3 + [("assistant", None)]
    init = messages[0]
    assert init["permission_mode"] == "yolo"
    assert "edit" in init["tools"]
    session = init["session_id"]
    assert all(m["session_id"] == session for m in messages)
    first = messages[1]["message"]["content"]
    assert first[0] == {"type": "text", "text": "Let me look at calc.py."}
    assert first[1]["type"] == "tool_use"
    assert first[1]["name"] == "read_file"
    assert first[1]["input"] == {"file_path": "calc.py"}
    tool_result = messages[2]["message"]["content"][0]
    assert tool_result["type"] == "tool_result"
    assert tool_result["tool_use_id"] == first[1]["id"]
    assert "return a - b" in tool_result["content"]
    assert messages[-1]["result"] == FINAL
    assert_fixed(repo, fake_llm)


def test_piped_stdin_goes_before_the_prompt(tmp_path: Path, fake_llm: FakeLLM) -> None:
    repo = calc_repo(tmp_path / "repo")
    fake_llm.script(text("Looks fine."))
    result = run_qwen_code(repo, "-p", "review this", stdin="diff --git a/x b/x\n+hello\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Looks fine.\n"
    body = fake_llm.chat_requests[0].body
    assert body is not None
    assert body["messages"][-1]["content"] == "diff --git a/x b/x\n+hello\n\nreview this"


def test_headless_default_mode_denies_shell_and_reports_it(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    repo = calc_repo(tmp_path / "repo")
    fake_llm.script(
        tool_turn(call("run_shell_command", command="touch pwned")),
        expect_last_tool_result("needs approval", text("I could not run the tests.")),
    )
    result = run_qwen_code(repo, "-p", "run the tests", "-o", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["permission_denials"] == [
        {
            "tool_name": "run_shell_command",
            "tool_use_id": report["tool_calls"][0]["id"],
            "tool_input": {"command": "touch pwned"},
        }
    ]
    assert not (repo / "pwned").exists()
    assert "denied" in result.stderr


def test_max_session_turns_exits_53(tmp_path: Path, fake_llm: FakeLLM) -> None:
    repo = calc_repo(tmp_path / "repo")
    fake_llm.script(
        tool_turn(call("read_file", file_path="calc.py")),
        tool_turn(call("read_file", file_path="test_calc.py")),
    )
    result = run_qwen_code(repo, "-p", "look around", "--max-session-turns", "1", "-o", "json")
    assert result.returncode == 53
    report = json.loads(result.stdout)
    assert report["subtype"] == "error_max_turns"
    assert report["is_error"] is True
    assert len(fake_llm.chat_requests) == 1


def test_no_credentials_says_what_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL"):
        monkeypatch.delenv(name)
    result = run_qwen_code(calc_repo(tmp_path / "repo"), "-p", "hi")
    assert result.returncode == 41
    assert "DASHSCOPE_API_KEY" in result.stderr
    assert "OPENAI_BASE_URL" in result.stderr
    assert result.stdout == ""


def test_auth_error_names_the_variable(tmp_path: Path, fake_llm: FakeLLM) -> None:
    from tests.fakeserver import HTTPError, error_body

    fake_llm.script(HTTPError(401, error_body("Incorrect API key provided", 401)))
    result = run_qwen_code(calc_repo(tmp_path / "repo"), "-p", "hi")
    assert result.returncode == 41
    assert "OPENAI_API_KEY" in result.stderr


def test_no_prompt_is_bad_input(tmp_path: Path) -> None:
    result = run_qwen_code(calc_repo(tmp_path / "repo"))
    assert result.returncode == 42
    assert "No prompt" in result.stderr


def test_bad_flag_values_are_bad_input(tmp_path: Path) -> None:
    repo = calc_repo(tmp_path / "repo")
    assert run_qwen_code(repo, "-p", "x", "-o", "yaml").returncode == 42
    assert run_qwen_code(repo, "-p", "x", "--approval-mode", "never").returncode == 42
    assert run_qwen_code(repo, "-p", "x", "--yolo", "--approval-mode", "plan").returncode == 42


def test_version_and_help(tmp_path: Path) -> None:
    repo = calc_repo(tmp_path / "repo")
    version = run_qwen_code(repo, "--version")
    assert version.returncode == 0
    assert version.stdout.startswith("qwen-code ")
    help_text = run_qwen_code(repo, "--help")
    assert help_text.returncode == 0
    for flag in ("--model", "--approval-mode", "--output-format", "--max-session-turns"):
        assert flag in help_text.stdout


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_kills_the_running_command_and_exits(
    tmp_path: Path, fake_llm: FakeLLM, sig: signal.Signals, code: int
) -> None:
    repo = calc_repo(tmp_path / "repo")
    pid_file = tmp_path / "sleep.pid"
    fake_llm.script(
        tool_turn(call("run_shell_command", command=f"echo $$ > {pid_file}; exec sleep 60"))
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qwen_code",
            "-p",
            "wait",
            "--yolo",
            "--sandbox",
            "off",
            "-o",
            "json",
        ],
        cwd=repo,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    sleeper = int(pid_file.read_text())
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == code
    report = json.loads(out)
    assert report["subtype"] == "error_interrupted"
    assert not alive(sleeper)
