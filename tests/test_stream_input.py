"""`--input-format stream-json` line by line, and the Claude Code flags the SDKs pass.

The conversation is written to a real `qwen-code` process's stdin as JSON lines (then
stdin closes) and its stdout is read back; the model is the scripted server.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

from PIL import Image

from qwen_code.cli_compat import translate
from tests.fakeserver import FakeLLM, call, text, tool_turn
from tests.helpers import bodies, run_qwen_code, user_message

STREAM = ("--input-format", "stream-json", "--output-format", "stream-json")


def user(content: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "user", "message": {"role": "user", "content": content}, **extra}


def control(request_id: str, subtype: str, **body: Any) -> dict[str, Any]:
    return {
        "type": "control_request",
        "request_id": request_id,
        "request": {"subtype": subtype, **body},
    }


def converse(cwd: Path, lines: list[Any], *args: str) -> tuple[int, list[dict[str, Any]], str]:
    """Run with these stdin lines; (exit code, stdout messages, stderr)."""
    stdin = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    result = run_qwen_code(cwd, *STREAM, *args, stdin=stdin)
    messages = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result.returncode, messages, result.stderr


def responses(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        m["response"]["request_id"]: m["response"]
        for m in messages
        if m["type"] == "control_response"
    }


def results(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == "result"]


def test_each_user_message_gets_a_turn_and_a_result(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("one"), text("two"))
    code, messages, stderr = converse(
        tmp_path, [user("first"), user([{"type": "text", "text": "second"}])]
    )
    assert code == 0, stderr
    assert [r["result"] for r in results(messages)] == ["one", "two"]
    assert [m["subtype"] for m in messages if m["type"] == "system"] == ["init", "init"]
    assert user_message(fake_llm) == "second"
    assert "Traceback" not in stderr


def test_initialize_and_unsupported_requests(tmp_path: Path, fake_llm: FakeLLM) -> None:
    code, messages, stderr = converse(
        tmp_path,
        [
            control("r1", "initialize", hooks=None),
            control("r2", "stop_task", task_id="t"),
            control(
                "r3",
                "initialize",
                hooks={"BeforeLunch": [{"matcher": "Bash", "hookCallbackIds": ["h"]}]},
            ),
            control("r4", "set_permission_mode", mode="sideways"),
            control("r5", "set_permission_mode", mode="bypassPermissions"),
            control("r6", "interrupt"),
            {"type": "control_request", "request_id": "r7"},
        ],
    )
    assert code == 0, stderr
    answers = responses(messages)
    assert answers["r1"]["subtype"] == "success"
    assert answers["r1"]["response"]["models"][0]["value"] == "qwen3-coder-plus"
    assert answers["r2"] == {
        "subtype": "error",
        "request_id": "r2",
        "error": "qwen-code does not support the control request 'stop_task'",
    }
    assert "no hook event 'BeforeLunch'" in answers["r3"]["error"]
    assert "'sideways' is not a mode" in answers["r4"]["error"]
    assert answers["r5"]["subtype"] == answers["r6"]["subtype"] == "success"
    assert answers["r7"]["subtype"] == "error"
    assert fake_llm.chat_requests == []


def test_bad_lines_are_reported_and_skipped(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("still here"))
    code, messages, stderr = converse(
        tmp_path,
        ["{not json", user(42), {"type": "mystery"}, user([{"type": "audio"}]), user("hello")],
    )
    assert code == 0
    assert [r["result"] for r in results(messages)] == ["still here"]
    assert "not JSON" in stderr and "'mystery'" in stderr and "'audio'" in stderr
    assert "Traceback" not in stderr


def test_an_image_block_reaches_the_model(tmp_path: Path, fake_llm: FakeLLM) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    fake_llm.script(text("A red rectangle."))
    block = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    images = json.dumps({"model": {"generationConfig": {"modalities": {"image": True}}}})
    code, messages, stderr = converse(
        tmp_path, [user([{"type": "text", "text": "what is this?"}, block])], "--settings", images
    )
    assert code == 0, stderr
    content = bodies(fake_llm)[0]["messages"][-1]["content"]
    assert any(part.get("type") == "image_url" for part in content)
    assert results(messages)[0]["result"] == "A red rectangle."


def test_approvals_over_stdio_end_with_stdin(tmp_path: Path, fake_llm: FakeLLM) -> None:
    """Nobody is left to answer once stdin closes: the call is refused, the turn ends."""
    fake_llm.script(tool_turn(call("run_shell_command", command="touch ran")), text("ok"))
    _, messages, _ = converse(tmp_path, [user("run it")], "--permission-prompt-tool", "stdio")
    assert [m for m in messages if m["type"] == "control_request"] == []
    denial = results(messages)[0]["permission_denials"][0]
    assert denial["tool_name"] == "run_shell_command"
    assert not (tmp_path / "ran").exists()
    assert results(messages)[0]["result"] == "ok"


def test_a_prompt_flag_is_the_first_message(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("from -p"), text("from stdin"))
    _, messages, _ = converse(tmp_path, [user("second")], "-p", "first")
    assert [r["result"] for r in results(messages)] == ["from -p", "from stdin"]


def test_stream_input_needs_stream_output(tmp_path: Path) -> None:
    result = run_qwen_code(tmp_path, "--input-format", "stream-json", "-p", "x", stdin="")
    assert result.returncode != 0
    assert "needs --output-format stream-json" in result.stderr


# --- Claude Code's flags ------------------------------------------------------------------


def test_claude_flags_are_translated(tmp_path: Path) -> None:
    (tmp_path / "p.md").write_text("You are terse.")
    args = [
        "--verbose",
        "--permission-mode",
        "acceptEdits",
        "--system-prompt-file",
        "p.md",
        "--include-hook-events",
        "--permission-mode=bypassPermissions",
        "--",
        "--verbose",
    ]
    assert translate(args, tmp_path) == [
        "--approval-mode",
        "auto-edit",
        "--system-prompt",
        "You are terse.",
        "--approval-mode",
        "yolo",
        "--",
        "--verbose",
    ]


def test_unsupported_claude_flags_are_named(tmp_path: Path) -> None:
    result = run_qwen_code(tmp_path, "-p", "x", "--max-thinking-tokens", "100")
    assert result.returncode == 42  # bad input
    assert (
        "--max-thinking-tokens is a Claude Code option qwen-code does not support" in result.stderr
    )


def test_permission_mode_and_disallowed_tools(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        tool_turn(
            call("write_file", file_path="a.txt", content="a\n"),
            call("run_shell_command", command="touch ran"),
        ),
        text("done"),
    )
    result = run_qwen_code(
        tmp_path,
        "-p",
        "go",
        "-o",
        "json",
        "--permission-mode",
        "bypassPermissions",
        "--disallowedTools",
        "Bash(touch *),WebFetch",
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.txt").exists() and not (tmp_path / "ran").exists()
    report = json.loads(result.stdout)
    assert [d["tool_name"] for d in report["permission_denials"]] == ["run_shell_command"]


def test_tools_flag_keeps_only_the_named_tools(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("ok"))
    result = run_qwen_code(tmp_path, "-p", "x", "--tools", "Read,Grep", "-o", "stream-json")
    init = json.loads(result.stdout.splitlines()[0])
    assert sorted(init["tools"]) == ["grep_search", "read_file"]
    sent = sorted(t["function"]["name"] for t in bodies(fake_llm)[0]["tools"])
    assert sent == ["grep_search", "read_file"]


def test_setting_sources_leave_out_the_user_file(tmp_path: Path, fake_llm: FakeLLM) -> None:
    home = tmp_path / "qwen-home"
    (home / "settings.json").write_text(json.dumps({"permissions": {"allow": ["write_file"]}}))
    write = tool_turn(call("write_file", file_path="a.txt", content="a\n"))
    fake_llm.script(write, text("refused"), write, text("written"))
    refused = run_qwen_code(tmp_path, "-p", "x", "--setting-sources", "project,local")
    assert refused.returncode == 0 and not (tmp_path / "a.txt").exists()
    allowed = run_qwen_code(tmp_path, "-p", "x", "--setting-sources", "user")
    assert allowed.returncode == 0 and (tmp_path / "a.txt").exists()
    bad = run_qwen_code(tmp_path, "-p", "x", "--setting-sources", "team")
    assert "'team' is not user, project or local" in bad.stderr


def test_settings_flag_layer_is_applied(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(tool_turn(call("write_file", file_path="a.txt", content="a\n")), text("done"))
    settings = json.dumps({"permissions": {"allow": ["write_file"]}})
    result = run_qwen_code(tmp_path, "-p", "x", "--settings", settings)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.txt").exists()
    bad = run_qwen_code(tmp_path, "-p", "x", "--settings", "{nope")
    assert bad.returncode != 0 and "--settings: not valid JSON" in bad.stderr


def test_session_id_and_fork(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("one"), text("two"))
    sid = "6f1c1a52-7d3c-4f0e-9a59-4f0c5c1b2a10"
    first = run_qwen_code(tmp_path, "-p", "x", "-o", "json", "--session-id", sid)
    assert json.loads(first.stdout)["session_id"] == sid
    again = run_qwen_code(tmp_path, "-p", "x", "--session-id", sid)
    assert again.returncode != 0 and "already exists" in again.stderr
    forked = run_qwen_code(tmp_path, "-p", "y", "-o", "json", "--resume", sid, "--fork-session")
    report = json.loads(forked.stdout)
    assert report["session_id"] != sid
    history = [m.get("content") for m in bodies(fake_llm)[1]["messages"][1:]]
    assert history == ["x", "one", "y"]
    listed = run_qwen_code(tmp_path, "sessions", "list")
    assert sid[:8] in listed.stdout and report["session_id"][:8] in listed.stdout
    bad = run_qwen_code(tmp_path, "-p", "x", "--session-id", "nope")
    assert "--session-id: 'nope' is not a UUID" in bad.stderr


def test_mcp_config_as_json_text_and_strict(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("ok"), text("ok"))
    (tmp_path / ".mcp.json").write_text(json.dumps({"mcpServers": {"repo": {"command": "nope"}}}))
    given = json.dumps({"mcpServers": {"mine": {"command": "definitely-not-a-command-xyz"}}})
    result = run_qwen_code(
        tmp_path, "-p", "x", "-o", "stream-json", "--mcp-config", given, "--strict-mcp-config"
    )
    init = json.loads(result.stdout.splitlines()[0])
    assert [s["name"] for s in init["mcp_servers"]] == ["mine"]


def test_agents_from_initialize_join_the_subagents(tmp_path: Path, fake_llm: FakeLLM) -> None:
    agent = {
        "description": "Reviews diffs for bugs.",
        "prompt": "You review code.",
        "tools": ["Read"],
    }
    fake_llm.script(text("ok"))
    code, messages, stderr = converse(
        tmp_path,
        [
            control("r1", "initialize", hooks=None, agents={"reviewer": agent}),
            control("r2", "initialize", hooks=None, agents={"broken": {"prompt": 3}}),
            user("hi"),
        ],
    )
    assert code == 0, stderr
    answers = responses(messages)
    assert "reviewer" in [a["name"] for a in answers["r1"]["response"]["agents"]]
    assert "agent 'broken'" in answers["r2"]["error"]
    (agent_tool,) = [t for t in bodies(fake_llm)[0]["tools"] if t["function"]["name"] == "agent"]
    assert "reviewer" in agent_tool["function"]["description"]
