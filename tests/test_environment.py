"""The Environment: what a front end needs from the process, read once and passed down.

A command line driven with a constructed Environment (StringIO streams, its own working
directory and home) writes only to those streams and keeps its state in that home.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from qwen_code import __version__
from qwen_code.cli import main
from qwen_code.environment import Environment
from tests.fakeserver import FakeLLM, text
from tests.helpers import TTYStringIO, user_message


def make_env(tmp_path: Path, stdin: str = "", *, stdin_isatty: bool = False) -> Environment:
    cwd, home = tmp_path / "project", tmp_path / "elsewhere-home"
    cwd.mkdir(exist_ok=True)
    home.mkdir(exist_ok=True)
    return Environment(
        stdin=TTYStringIO() if stdin_isatty else io.StringIO(stdin),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        stdin_isatty=stdin_isatty,
        stdout_isatty=False,
        stderr_isatty=False,
        cwd=cwd,
        home=home,
    )


def out(env: Environment) -> str:
    return env.stdout.getvalue()  # type: ignore[attr-defined]


def err(env: Environment) -> str:
    return env.stderr.getvalue()  # type: ignore[attr-defined]


def test_detect_reads_the_streams_cwd_and_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin, stdout, stderr = TTYStringIO(), io.StringIO(), TTYStringIO()
    monkeypatch.setattr(sys, "stdin", stdin)
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QWEN_HOME", str(tmp_path / "home"))
    env = Environment.detect()
    assert (env.stdin, env.stdout, env.stderr) == (stdin, stdout, stderr)
    assert (env.stdin_isatty, env.stdout_isatty, env.stderr_isatty) == (True, False, True)
    assert env.cwd == tmp_path
    assert env.home == tmp_path / "home"
    assert Environment.detect(environ={}).home == Path.home() / ".qwen"


def test_detect_reads_a_closed_stream_as_an_empty_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    env = Environment.detect()
    assert env.stdin.read() == ""
    assert env.stdin_isatty is False


def test_headless_run_uses_only_the_environment(
    tmp_path: Path, fake_llm: FakeLLM, capsys: pytest.CaptureFixture[str]
) -> None:
    env = make_env(tmp_path, "piped context\n")
    fake_llm.script(text("Done."))
    code = main(["-p", "review this", "-o", "json"], env=env)
    assert code == 0, err(env)
    assert json.loads(out(env))["result"] == "Done."
    assert user_message(fake_llm) == "piped context\n\nreview this"
    assert capsys.readouterr() == ("", "")
    saved = list((env.home / "projects").rglob("*.jsonl"))
    assert saved, "the session is kept in the environment's home"
    assert all(env.home in path.parents for path in saved)


def test_sessions_list_reads_the_environment_home(
    tmp_path: Path, fake_llm: FakeLLM, capsys: pytest.CaptureFixture[str]
) -> None:
    env = make_env(tmp_path)
    fake_llm.script(text("Done."))
    assert main(["-p", "first prompt"], env=env) == 0
    listing = make_env(tmp_path)
    assert main(["sessions", "list"], env=listing) == 0
    assert "first prompt" in out(listing)
    assert capsys.readouterr() == ("", "")


def test_errors_go_to_the_environment_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_prompt = make_env(tmp_path)
    assert main([], env=no_prompt) == 42
    assert "No prompt given" in err(no_prompt)
    bad_flag = make_env(tmp_path)
    assert main(["-p", "x", "-o", "yaml"], env=bad_flag) == 42
    assert "yaml" in err(bad_flag)
    piped = make_env(tmp_path)
    assert main(["-i", "hello"], env=piped) == 42
    assert "needs a terminal" in err(piped)
    assert capsys.readouterr() == ("", "")


def test_version_among_other_flags_prints_to_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = make_env(tmp_path)
    assert main(["--debug", "--version"], env=env) == 0
    assert out(env) == f"qwen-code {__version__}\n"
    assert capsys.readouterr() == ("", "")
