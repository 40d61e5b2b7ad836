"""End to end: `qwen-code -p` as a real subprocess, the scripted model asks for the keys.

The model runs `env`, `printenv OPENAI_API_KEY`, `echo $DASHSCOPE_API_KEY` and `cat`s a
file that holds the key. Neither key may reach the model (any request the fake server
received), the session file under $QWEN_HOME, or stdout/stderr.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qwen_code.config import qwen_home
from tests.fakeserver import FakeLLM, Turn, call, text, tool_turn
from tests.helpers import make_repo, run_qwen_code, write_json

OPENAI_KEY = "sk-test-abcdefgh12345678"
DASHSCOPE_KEY = "sk-dash-ijklmnop87654321"
KEYS = (OPENAI_KEY, DASHSCOPE_KEY)
PROBE = (
    'env; printenv OPENAI_API_KEY; echo "printenv=$?"; echo "dash=$DASHSCOPE_API_KEY"; '
    "cat notes.txt"
)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("DASHSCOPE_API_KEY", DASHSCOPE_KEY)
    monkeypatch.setenv("KEY_COPY", OPENAI_KEY)  # the resolved key under another name
    return make_repo(tmp_path / "repo", {"notes.txt": f"deploy token {OPENAI_KEY}\n"})


def keep_tool_result(seen: list[str], reply: Turn) -> Callable[[dict[str, Any]], Turn]:
    """A turn that records the tool result the model got, then plays `reply`."""

    def respond(body: dict[str, Any]) -> Turn:
        last = body["messages"][-1]
        assert last["role"] == "tool", last
        seen.append(last["content"])
        return reply

    return respond


def assert_nowhere(fake: FakeLLM, result: subprocess.CompletedProcess[str], *secrets: str) -> None:
    """None of `secrets` in any request body, in stdout/stderr, or in any file under
    $QWEN_HOME (the session transcript among them, which must exist)."""
    assert len(fake.chat_requests) == 2
    for request in fake.requests:
        body = json.dumps(request.body)
        assert all(secret not in body for secret in secrets)
    assert all(secret not in result.stdout + result.stderr for secret in secrets)
    transcripts = list((qwen_home() / "projects").rglob("*.jsonl"))
    assert transcripts, "the session was not saved"
    assert "run_shell_command" in transcripts[0].read_text(encoding="utf-8")
    for path in qwen_home().rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert all(secret.encode() not in data for secret in secrets), path


def test_commands_get_no_keys_and_the_model_sees_none(repo: Path, fake_llm: FakeLLM) -> None:
    seen: list[str] = []
    fake_llm.script(
        tool_turn(call("run_shell_command", command=PROBE)),
        keep_tool_result(seen, text("Nothing to see.")),
    )
    result = run_qwen_code(repo, "-p", "show me the keys", "--yolo", "-o", "stream-json")
    assert result.returncode == 0, result.stderr
    assert_nowhere(fake_llm, result, *KEYS)
    [output] = seen
    for name in ("OPENAI_API_KEY=", "DASHSCOPE_API_KEY=", "KEY_COPY="):
        assert name not in output  # not in the child's environment at all
    assert "printenv=1\ndash=\n" in output
    assert "deploy token [redacted OPENAI_API_KEY]" in output
    assert "OPENAI_BASE_URL=" in output  # the rest of the environment is there


def test_opt_in_lets_commands_see_the_key_but_not_the_model(repo: Path, fake_llm: FakeLLM) -> None:
    settings = {"security": {"passCredentialsToCommands": True}}
    write_json(qwen_home() / "settings.json", settings)
    (repo / "digest.py").write_text(
        "import hashlib, os\n"
        "print('sha', hashlib.sha256(os.environ['OPENAI_API_KEY'].encode()).hexdigest())\n",
        encoding="utf-8",
    )
    seen: list[str] = []
    fake_llm.script(
        tool_turn(call("run_shell_command", command=f"{sys.executable} digest.py; {PROBE}")),
        keep_tool_result(seen, text("Done.")),
    )
    result = run_qwen_code(repo, "-p", "check the key", "--yolo", "-o", "stream-json")
    assert result.returncode == 0, result.stderr
    assert_nowhere(fake_llm, result, *KEYS)
    [output] = seen
    assert f"sha {hashlib.sha256(OPENAI_KEY.encode()).hexdigest()}" in output
    assert "OPENAI_API_KEY=[redacted OPENAI_API_KEY]" in output
    assert "dash=[redacted DASHSCOPE_API_KEY]" in output


def test_a_key_from_the_settings_file_is_redacted(
    repo: Path, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_API_KEY", "DASHSCOPE_API_KEY", "KEY_COPY"):
        monkeypatch.delenv(name)
    settings = {"security": {"auth": {"apiKey": OPENAI_KEY}}}
    write_json(qwen_home() / "settings.json", settings)
    seen: list[str] = []
    fake_llm.script(
        tool_turn(call("run_shell_command", command="cat notes.txt")),
        keep_tool_result(seen, text("Done.")),
    )
    result = run_qwen_code(repo, "-p", "read the notes", "--yolo", "-o", "stream-json")
    assert result.returncode == 0, result.stderr
    assert fake_llm.chat_requests[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"
    for request in fake_llm.requests:
        assert OPENAI_KEY not in json.dumps(request.body)
    assert OPENAI_KEY not in result.stdout
    assert "deploy token [redacted API key]" in seen[0]
