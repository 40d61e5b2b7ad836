"""Qwen Code's own Python SDK (`qwen-code-sdk`) drives qwen-code through
`path_to_qwen_executable`, over the same stream-json protocol (it passes `--channel=SDK`,
`--approval-mode`, `--core-tools`, ... as it would to Qwen Code's `qwen`)."""

from __future__ import annotations

import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from qwen_code_sdk import is_sdk_result_message, query

from tests.fakeserver import FakeLLM, call, text, tool_turn


@pytest.fixture
def qwen(tmp_path: Path) -> str:
    path = tmp_path / "bin" / "qwen"
    path.parent.mkdir()
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m qwen_code "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


async def run(prompt: str, options: dict[str, Any]) -> list[Any]:
    messages = []
    async with query(prompt, options) as session:  # type: ignore[arg-type]
        async for message in session:
            messages.append(message)
            if is_sdk_result_message(message):
                break
    return messages


async def test_a_query_and_its_result(fake_llm: FakeLLM, qwen: str, tmp_path: Path) -> None:
    fake_llm.script(text("Hello from qwen-code."))
    messages = await run(
        "hello",
        {"cwd": str(tmp_path), "path_to_qwen_executable": qwen, "core_tools": ["read_file"]},
    )
    result = messages[-1]
    assert is_sdk_result_message(result)
    assert result["result"] == "Hello from qwen-code." and result["is_error"] is False
    assert fake_llm.chat_requests[0].body["tools"][0]["function"]["name"] == "read_file"


async def test_its_can_use_tool_callback_is_asked(
    fake_llm: FakeLLM, qwen: str, tmp_path: Path
) -> None:
    fake_llm.script(
        tool_turn(call("write_file", file_path="a.txt", content="a\n")),
        tool_turn(call("run_shell_command", command="touch ran")),
        text("done"),
    )
    asked: list[str] = []

    async def can_use_tool(name: str, tool_input: dict[str, Any], context: Any) -> Any:
        asked.append(name)
        if name == "write_file":
            return {"behavior": "allow", "updatedInput": tool_input}
        return {"behavior": "deny", "message": "no"}

    options = {"cwd": str(tmp_path), "path_to_qwen_executable": qwen, "can_use_tool": can_use_tool}
    messages = await run("go", options)
    assert asked == ["write_file", "run_shell_command"]
    assert (tmp_path / "a.txt").read_text() == "a\n" and not (tmp_path / "ran").exists()
    assert messages[-1]["result"] == "done"
