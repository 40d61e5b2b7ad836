"""Context files at start-up, through a real `python -m qwen_code -p` process: a symlinked
AGENTS.md never puts an outside file into the first request, an @import fan-out loads small,
and SIGINT / SIGTERM end a run that is still starting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakeserver import FakeLLM, text
from tests.helpers import fan_out, make_repo, run_qwen_code, write_json

HUNG = 120
"""Seconds after which a run counts as hung (only stops a broken test)."""


def system_prompt(fake: FakeLLM) -> str:
    (first, *_) = fake.chat_requests
    assert first.body is not None
    message = first.body["messages"][0]
    assert message["role"] == "system"
    return str(message["content"])


def test_symlinked_agents_md_stays_out_of_the_first_request(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("aws_secret_access_key = TOP-SECRET-VALUE\n", encoding="utf-8")
    repo = make_repo(tmp_path / "repo")
    (repo / "AGENTS.md").symlink_to(secret)
    (repo / "QWEN.md").write_text("Use tabs.\n", encoding="utf-8")
    fake_llm.script(text("Done."))
    result = run_qwen_code(repo, "-p", "hello", "-o", "json")
    assert result.returncode == 0, result.stderr
    prompt = system_prompt(fake_llm)
    assert "Use tabs." in prompt
    assert "TOP-SECRET-VALUE" not in prompt
    assert "TOP-SECRET-VALUE" not in json.dumps([r.body for r in fake_llm.requests])
    assert (
        f"qwen-code: {repo / 'AGENTS.md'} was not loaded: it leads to {secret.resolve()}, "
        "outside the project and the qwen-code home.\n"
    ) in result.stderr


def test_import_fan_out_starts_and_stays_small(tmp_path: Path, fake_llm: FakeLLM) -> None:
    repo = make_repo(tmp_path / "repo")
    fan_out(repo)
    fake_llm.script(text("Done."))
    result = run_qwen_code(repo, "-p", "hello", "-o", "json")
    assert result.returncode == 0, result.stderr
    prompt = system_prompt(fake_llm)
    assert prompt.count("File 5.") == 1
    assert len(prompt) < 60_000  # the template and tools, plus ~7 KB of context


def test_refused_context_file_name_is_reported(tmp_path: Path, fake_llm: FakeLLM) -> None:
    home = Path(os.environ["QWEN_HOME"])
    settings = {"context": {"fileName": ["../outside.md", "QWEN.md"]}}
    write_json(home / "settings.json", settings)
    (tmp_path / "outside.md").write_text("OUTSIDE-TEXT", encoding="utf-8")
    repo = make_repo(tmp_path / "repo")
    fake_llm.script(text("Done."))
    result = run_qwen_code(repo, "-p", "hello", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert "OUTSIDE-TEXT" not in system_prompt(fake_llm)
    assert "qwen-code: the context file name '../outside.md' (setting context.fileName)" in (
        result.stderr
    )


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_end_a_run_that_is_starting(
    tmp_path: Path,
    fake_llm: FakeLLM,
    monkeypatch: pytest.MonkeyPatch,
    sig: signal.Signals,
    code: int,
) -> None:
    """Start-up waits for the server's model list (no model configured): the signal ends
    the run there, with the interrupted exit code, and no request is made."""
    repo = make_repo(tmp_path / "repo")
    monkeypatch.delenv("OPENAI_MODEL")
    fake_llm.models_delay_s = HUNG
    proc = subprocess.Popen(
        [sys.executable, "-m", "qwen_code", "-p", "hello", "-o", "json"],
        cwd=repo,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        fake_llm.wait_for_requests(1, timeout=HUNG)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=HUNG)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, err
    assert fake_llm.chat_requests == []
