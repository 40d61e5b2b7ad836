"""The real Claude Code CLI (`claude -p`) does a tool-using task through `qwen-code proxy`.

Claude Code is a Node program from npm. `scripts/install-claude-code` installs it (CI runs it
and sets `QWEN_CODE_CLAUDE_CLI` and `QWEN_CODE_REQUIRE_CLAUDE=1`, so there the test cannot
skip); otherwise it is used when it is on PATH, or where `../shared/bench/install_peers.sh` put
it (`$BENCH_PEERS`, default `~/.cache/qwen-code-bench/peers`). Without it the test is skipped,
saying how to install it: pytest itself downloads nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakeserver import FakeLLM, Turn, call, text, tool_turn
from tests.test_proxy import start_proxy

REQUIRE_ENV = "QWEN_CODE_REQUIRE_CLAUDE"


def claude_code() -> str | None:
    given = os.environ.get("QWEN_CODE_CLAUDE_CLI")
    if given:
        return given
    found = shutil.which("claude")
    if found:
        return found
    peers = Path(os.environ.get("BENCH_PEERS", Path.home() / ".cache/qwen-code-bench/peers"))
    binary = peers / "node_modules/@anthropic-ai/claude-code-linux-x64/claude"
    return str(binary) if binary.is_file() else None


def test_claude_code_edits_a_file_through_the_proxy(tmp_path: Path, fake_llm: FakeLLM) -> None:
    cli = claude_code()
    if cli is None:
        reason = "the Claude Code CLI is not installed (scripts/install-claude-code installs it)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_ENV}=1")
        pytest.skip(reason)
    work = tmp_path / "work"
    work.mkdir()
    (work / "greeting.txt").write_text("hello\n")
    target = work / "greeting.txt"

    def route(body: dict[str, Any]) -> Turn:
        """Claude Code's tools by their names; requests without tools (titles) get text."""
        if not body.get("tools"):
            return text("Greeting edit")
        done = sum(1 for m in body["messages"] if m["role"] == "tool")
        if done == 0:
            return tool_turn(call("Read", file_path=str(target)))
        if done == 1:
            edit = call(
                "Edit", file_path=str(target), old_string="hello", new_string="hello, world"
            )
            return tool_turn(edit)
        return text("Changed the greeting to hello, world.")

    fake_llm.script(*([route] * 20))
    proxy = start_proxy()
    try:
        env = {
            **os.environ,
            "ANTHROPIC_BASE_URL": proxy.url,
            "ANTHROPIC_API_KEY": "sk-ant-unused-0000000000000000",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "HOME": str(tmp_path / "home"),
        }
        result = subprocess.run(
            [
                cli,
                "-p",
                "Change the greeting in greeting.txt to 'hello, world'.",
                "--model",
                "qwen3-coder-plus",
                "--output-format",
                "text",
                "--permission-mode",
                "acceptEdits",
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
    finally:
        proxy.server.stop()
    assert result.returncode == 0, result.stderr + proxy.log.getvalue()
    assert target.read_text() == "hello, world\n"
    assert "hello, world" in result.stdout
    assert " 200" in proxy.log.getvalue()
