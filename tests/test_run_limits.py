"""`--max-budget-usd`, `--max-wall-time`, `--max-tool-calls`: a headless run stops with exit 55."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from qwen_code.errors import InputError
from qwen_code.ui.run_limits import parse_wall_time
from tests.fakeserver import FakeLLM, Turn, call, text, tool_turn
from tests.helpers import run_qwen_code

# qwen3-coder-plus (the tests' model, priced by the built-in table for a local server):
# $1 per 1M input tokens, $5 per 1M output tokens up to 32k input: $0.025 per request.
USAGE = {"prompt_tokens": 20_000, "completion_tokens": 1_000}


def report_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_budget_stops_before_the_request_that_would_exceed_it(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    (tmp_path / "a.py").write_text("A = 1\n")
    read = call("read_file", file_path="a.py")
    fake_llm.script(
        tool_turn(read, usage=USAGE), tool_turn(read, usage=USAGE), text("done", usage=USAGE)
    )
    result = run_qwen_code(tmp_path, "-p", "x", "-o", "json", "--max-budget-usd", "0.04")
    assert result.returncode == 55, result.stderr
    report = report_of(result)
    assert report["subtype"] == "error_max_budget_usd"
    assert report["is_error"] is True
    assert report["total_cost_usd"] == pytest.approx(0.05)
    assert "--max-budget-usd $0.0400" in report["error"]
    assert [c["name"] for c in report["tool_calls"]] == ["read_file"]  # the second never ran
    assert len(fake_llm.chat_requests) == 2
    assert "Traceback" not in result.stderr


def test_a_run_inside_its_budget_completes(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("done", usage=USAGE))
    result = run_qwen_code(tmp_path, "-p", "x", "--max-budget-usd", "0.01")
    assert (result.returncode, result.stdout) == (0, "done\n")  # over it, but finished


def test_budget_with_an_unknown_price_is_refused(tmp_path: Path, fake_llm: FakeLLM) -> None:
    result = run_qwen_code(tmp_path, "-p", "x", "-m", "my-local-model", "--max-budget-usd", "1")
    assert result.returncode == 42
    assert "price of 'my-local-model' is not known" in result.stderr
    assert "modelPricing" in result.stderr
    assert "Traceback" not in result.stderr
    assert fake_llm.chat_requests == []


def test_budget_must_be_positive(tmp_path: Path, fake_llm: FakeLLM) -> None:
    result = run_qwen_code(tmp_path, "-p", "x", "--max-budget-usd", "0")
    assert result.returncode == 42
    assert "--max-budget-usd" in result.stderr


def test_max_tool_calls_stops_with_exit_55(tmp_path: Path, fake_llm: FakeLLM) -> None:
    (tmp_path / "a.py").write_text("A = 1\n")
    read = call("read_file", file_path="a.py")
    fake_llm.script(tool_turn(read), tool_turn(read), text("done"))
    result = run_qwen_code(tmp_path, "-p", "x", "-o", "json", "--max-tool-calls", "1")
    assert result.returncode == 55, result.stderr
    report = report_of(result)
    assert report["subtype"] == "error_max_tool_calls"
    assert "--max-tool-calls 1" in report["error"]
    assert len(report["tool_calls"]) == 1
    assert fake_llm.remaining == 1


def test_max_tool_calls_allows_a_run_that_stays_within(tmp_path: Path, fake_llm: FakeLLM) -> None:
    (tmp_path / "a.py").write_text("A = 1\n")
    fake_llm.script(tool_turn(call("read_file", file_path="a.py")), text("done"))
    result = run_qwen_code(tmp_path, "-p", "x", "--max-tool-calls", "1")
    assert (result.returncode, result.stdout) == (0, "done\n")


def test_max_wall_time_stops_a_reply_that_never_ends(tmp_path: Path, fake_llm: FakeLLM) -> None:
    # only the limit can end this run (different words: no loop for the detector to catch)
    words = " ".join(f"word{i}" for i in range(100_000))
    fake_llm.script(Turn(text=words, forever=True, chunk_delay_s=0.01))
    result = run_qwen_code(tmp_path, "-p", "x", "-o", "json", "--max-wall-time", "1s")
    assert result.returncode == 55, result.stderr
    report = report_of(result)
    assert report["subtype"] == "error_max_wall_time"
    assert "--max-wall-time (1s)" in report["error"]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("30s", 30), ("5m", 300), ("1h", 3600), ("1.5h", 5400), (" 2M ", 120)],
)
def test_wall_time_values(text: str, seconds: float) -> None:
    assert parse_wall_time(text) == seconds


@pytest.mark.parametrize(("text", "message"), [("0.5", "under one second"), ("soon", "not a")])
def test_bad_wall_time_values(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_wall_time(text)


def test_bad_wall_time_is_a_clear_error(tmp_path: Path, fake_llm: FakeLLM) -> None:
    result = run_qwen_code(tmp_path, "-p", "x", "--max-wall-time", "10 minutes")
    assert result.returncode == 42
    assert "--max-wall-time: '10 minutes' is not a duration" in result.stderr
    assert fake_llm.chat_requests == []


@pytest.mark.parametrize(
    "flag", [["--max-tool-calls", "3"], ["--max-wall-time", "5m"], ["--json-schema", "{}"]]
)
def test_limits_are_refused_in_an_interactive_session(tmp_path: Path, flag: list[str]) -> None:
    from qwen_code.cli import main
    from qwen_code.environment import Environment
    from tests.helpers import TTYStringIO

    err = io.StringIO()
    env = Environment(
        stdin=TTYStringIO(),
        stdout=TTYStringIO(),
        stderr=err,
        stdin_isatty=True,
        stdout_isatty=True,
        stderr_isatty=False,
        cwd=tmp_path,
        home=tmp_path / "home",
    )
    assert main(["-i", "hello", *flag], env=env) == 42
    assert f"{flag[0]} applies to headless runs" in err.getvalue()
