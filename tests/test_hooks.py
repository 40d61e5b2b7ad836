"""Hooks in real sessions: real hook scripts (shell and Python) at the agent's events.

qwen-code runs headless (a real process) against the scripted model; hooks come from the
user's settings file in QWEN_HOME, a project's `.qwen/settings.json`, Claude Code's
`.claude/settings.json`, or `--settings`. What a hook did is read from the files it
writes, from the requests the model server recorded, and from the JSON result.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.fakeserver import FakeLLM, call, text, tool_turn
from tests.helpers import bodies, run_qwen_code, user_message

PY = sys.executable


def hooks_block(event: str, command: str, matcher: str = "", **extra: Any) -> dict[str, Any]:
    hook = {"type": "command", "command": command, **extra}
    return {"hooks": {event: [{"matcher": matcher, "hooks": [hook]}]}}


def user_settings(tmp_path: Path, settings: dict[str, Any]) -> None:
    (tmp_path / "qwen-home" / "settings.json").write_text(json.dumps(settings))


def script(tmp_path: Path, name: str, body: str) -> str:
    """A Python hook script; returns the command that runs it."""
    path = tmp_path / "hooks" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(body)
    return f'"{PY}" "{path}"'


def report(result: Any) -> dict[str, Any]:
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def tool_outputs(fake: FakeLLM, index: int = -1) -> list[str]:
    return [m["content"] for m in bodies(fake)[index]["messages"] if m["role"] == "tool"]


BLOCK_RM = """
import json, sys
event = json.load(sys.stdin)
if event["tool_name"] == "run_shell_command" and event["tool_input"]["command"].startswith("rm"):
    print("rm is not allowed here; move files to trash/ instead", file=sys.stderr)
    sys.exit(2)
"""


def test_pre_tool_use_blocks_rm_even_in_yolo(tmp_path: Path, fake_llm: FakeLLM) -> None:
    (tmp_path / "keep.txt").write_text("precious\n")
    user_settings(tmp_path, hooks_block("PreToolUse", script(tmp_path, "rm.py", BLOCK_RM), "Bash"))
    fake_llm.script(tool_turn(call("run_shell_command", command="rm keep.txt")), text("ok"))
    result = run_qwen_code(tmp_path, "-p", "clean up", "--yolo", "-o", "json")
    assert (tmp_path / "keep.txt").exists()
    (output,) = tool_outputs(fake_llm)
    assert "rm is not allowed here; move files to trash/ instead" in output
    assert report(result)["permission_denials"][0]["tool_name"] == "run_shell_command"


REWRITE = """
import json, sys
event = json.load(sys.stdin)
command = event["tool_input"]["command"]
print(json.dumps({"hookSpecificOutput": {"hookEventName": "PreToolUse",
    "permissionDecision": "allow", "permissionDecisionReason": "rewritten",
    "updatedInput": {"command": command.replace("hello", "rewritten")}}}))
"""


def test_pre_tool_use_rewrites_and_allows(tmp_path: Path, fake_llm: FakeLLM) -> None:
    user_settings(tmp_path, hooks_block("PreToolUse", script(tmp_path, "rw.py", REWRITE), "Bash"))
    fake_llm.script(tool_turn(call("run_shell_command", command="echo hello")), text("ok"))
    result = run_qwen_code(tmp_path, "-p", "say hello", "-o", "json")  # default mode: would ask
    assert report(result)["permission_denials"] == []
    (output,) = tool_outputs(fake_llm)
    assert "rewritten" in output and "hello" not in output


def test_a_hook_cannot_allow_past_a_deny_rule(tmp_path: Path, fake_llm: FakeLLM) -> None:
    settings = hooks_block("PreToolUse", script(tmp_path, "rw.py", REWRITE), "Bash")
    settings["permissions"] = {"deny": ["Bash(echo *)"]}
    user_settings(tmp_path, settings)
    fake_llm.script(tool_turn(call("run_shell_command", command="echo hello")), text("ok"))
    result = run_qwen_code(tmp_path, "-p", "say hello", "-o", "json", "--yolo")
    assert [d["tool_name"] for d in report(result)["permission_denials"]] == ["run_shell_command"]


FORMAT = """
import json, sys, pathlib
event = json.load(sys.stdin)
path = pathlib.Path(event["cwd"]) / event["tool_input"]["file_path"]
path.write_text(path.read_text().replace("\\t", "    "))
print(json.dumps({"hookSpecificOutput": {"hookEventName": "PostToolUse",
    "additionalContext": "formatted " + path.name}}))
"""


def test_post_tool_use_formats_the_edited_file(tmp_path: Path, fake_llm: FakeLLM) -> None:
    user_settings(
        tmp_path, hooks_block("PostToolUse", script(tmp_path, "fmt.py", FORMAT), "Write|Edit")
    )
    write = call("write_file", file_path="a.py", content="def f():\n\treturn 1\n")
    fake_llm.script(tool_turn(write), text("ok"))
    run_qwen_code(tmp_path, "-p", "write a.py", "--yolo")
    assert (tmp_path / "a.py").read_text() == "def f():\n    return 1\n"
    (output,) = tool_outputs(fake_llm)
    assert "formatted a.py" in output


def test_user_prompt_submit_adds_context(tmp_path: Path, fake_llm: FakeLLM) -> None:
    user_settings(tmp_path, hooks_block("UserPromptSubmit", "echo 'Ticket: PROJ-42'"))
    fake_llm.script(text("ok"))
    run_qwen_code(tmp_path, "-p", "fix the bug")
    sent = user_message(fake_llm)
    assert sent.startswith("fix the bug") and "Ticket: PROJ-42" in sent


def test_user_prompt_submit_can_block(tmp_path: Path, fake_llm: FakeLLM) -> None:
    block = "echo 'no secrets in prompts' >&2; exit 2"
    user_settings(tmp_path, hooks_block("UserPromptSubmit", block))
    result = run_qwen_code(tmp_path, "-p", "my password is hunter2", "-o", "json")
    assert fake_llm.chat_requests == []
    assert "no secrets in prompts" in report(result)["error"]


STOP_ONCE = """
import json, sys
event = json.load(sys.stdin)
if not event["stop_hook_active"]:
    print(json.dumps({"decision": "block", "reason": "Run the tests before you stop."}))
"""


def test_stop_hook_makes_the_agent_go_on_once(tmp_path: Path, fake_llm: FakeLLM) -> None:
    user_settings(tmp_path, hooks_block("Stop", script(tmp_path, "stop.py", STOP_ONCE)))
    fake_llm.script(text("Done."), text("Tests pass. Done."))
    result = run_qwen_code(tmp_path, "-p", "fix it", "-o", "json")
    assert report(result)["result"] == "Tests pass. Done."
    assert user_message(fake_llm) == "Stop hook feedback: Run the tests before you stop."
    assert len(fake_llm.chat_requests) == 2


def test_a_hanging_hook_is_killed_at_its_timeout(tmp_path: Path, fake_llm: FakeLLM) -> None:
    user_settings(tmp_path, hooks_block("PreToolUse", "sleep 600", "", timeout=1))
    fake_llm.script(tool_turn(call("list_directory", path=".")), text("listed"))
    result = run_qwen_code(tmp_path, "-p", "list", "-o", "json", timeout=60)
    assert report(result)["result"] == "listed"
    assert "PreToolUse hook failed" in result.stderr or "timed out" in result.stderr


def test_an_untrusted_projects_hooks_do_not_run(tmp_path: Path, fake_llm: FakeLLM) -> None:
    """The attacker's repository: its hook would run on the first tool call."""
    marker = tmp_path / "pwned"
    project = tmp_path / "repo"
    (project / ".qwen").mkdir(parents=True)
    evil = hooks_block("PreToolUse", f"touch '{marker}'")
    evil.update(hooks_block("SessionStart", f"touch '{marker}'"))
    (project / ".qwen" / "settings.json").write_text(json.dumps(evil))
    fake_llm.script(tool_turn(call("list_directory", path=".")), text("ok"))
    result = run_qwen_code(project, "-p", "list", "--yolo")
    assert result.returncode == 0, result.stderr
    assert not marker.exists()


def test_a_trusted_projects_new_hook_needs_approval_headless(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    marker = tmp_path / "ran"
    project = tmp_path / "repo"
    (project / ".qwen").mkdir(parents=True)
    (project / ".qwen" / "settings.json").write_text(
        json.dumps(hooks_block("UserPromptSubmit", f"touch '{marker}'"))
    )
    folders = {str(project): "TRUST_FOLDER"}
    (tmp_path / "qwen-home" / "trustedFolders.json").write_text(json.dumps(folders))
    fake_llm.script(text("one"), text("two"))
    first = run_qwen_code(project, "-p", "x")
    assert not marker.exists() and "need your approval" in first.stderr
    run_qwen_code(project, "-p", "x", "--trust-workspace")
    assert marker.exists()


def test_a_claude_code_hooks_block_works_unchanged(tmp_path: Path, fake_llm: FakeLLM) -> None:
    log = tmp_path / "bash.log"
    project = tmp_path / "repo"
    (project / ".claude").mkdir(parents=True)
    claude = {
        "hooks": {
            "PreToolUse": [
                {
                    "matcher": "Bash",
                    "hooks": [
                        {
                            "type": "command",
                            "command": f"jq -r .tool_input.command >> '{log}' 2>/dev/null || "
                            f"cat >> '{log}'",
                        }
                    ],
                }
            ]
        }
    }
    (project / ".claude" / "settings.json").write_text(json.dumps(claude))
    user_settings(tmp_path, {"hooksConfig": {"readClaudeSettings": True}})
    fake_llm.script(tool_turn(call("run_shell_command", command="echo hi")), text("ok"))
    run_qwen_code(project, "-p", "x", "--yolo", "--trust-workspace")
    assert "echo hi" in log.read_text()


def test_session_start_context_and_settings_flag_hooks(tmp_path: Path, fake_llm: FakeLLM) -> None:
    settings = json.dumps(hooks_block("SessionStart", "echo 'Branch: main'", "startup"))
    fake_llm.script(text("ok"))
    run_qwen_code(tmp_path, "-p", "hello", "--settings", settings)
    assert "Branch: main" in user_message(fake_llm)


def test_subagent_start_and_stop(tmp_path: Path, fake_llm: FakeLLM) -> None:
    log = tmp_path / "agents.log"
    append = f"{{ cat; echo; }} >> '{log}'"
    settings = hooks_block("SubagentStart", append, "general-purpose")
    settings["hooks"].update(hooks_block("SubagentStop", append)["hooks"])
    user_settings(tmp_path, settings)
    spawn = call(
        "agent", description="look", prompt="Look around.", subagent_type="general-purpose"
    )
    fake_llm.script(tool_turn(spawn), text("Looked."), text("All done."))
    run_qwen_code(tmp_path, "-p", "delegate", "--yolo")
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert [e["hook_event_name"] for e in events] == ["SubagentStart", "SubagentStop"]
    assert events[0]["agent_type"] == "general-purpose"
    assert events[1]["last_assistant_message"] == "Looked."


def test_hook_input_fields(tmp_path: Path, fake_llm: FakeLLM) -> None:
    log = tmp_path / "input.json"
    user_settings(tmp_path, hooks_block("PreToolUse", f"cat > '{log}'", "read_file"))
    (tmp_path / "a.txt").write_text("a\n")
    fake_llm.script(tool_turn(call("read_file", file_path="a.txt")), text("ok"))
    result = run_qwen_code(tmp_path, "-p", "read", "-o", "json")
    event = json.loads(log.read_text())
    assert event["hook_event_name"] == "PreToolUse"
    assert event["session_id"] == report(result)["session_id"]
    assert event["tool_name"] == "read_file" and event["tool_input"] == {"file_path": "a.txt"}
    assert event["cwd"] == str(tmp_path.resolve()) or event["cwd"] == str(tmp_path)
    assert event["transcript_path"].endswith(".jsonl")
    assert event["permission_mode"] == "default"


async def test_an_interactive_session_asks_once_for_a_projects_hooks(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    from qwen_code.agent.approval import ApprovalAnswer
    from tests.helpers import RecordingApprover, session_for

    project = tmp_path / "repo"
    (project / ".qwen").mkdir(parents=True)
    (project / ".qwen" / "settings.json").write_text(
        json.dumps(hooks_block("PreToolUse", "echo checked", "Bash"))
    )
    (tmp_path / "qwen-home" / "trustedFolders.json").write_text(
        json.dumps({str(project): "TRUST_FOLDER"})
    )
    approver = RecordingApprover(ApprovalAnswer(approved=True))
    session = await session_for(project, approver)  # the REPL's approver asks the user
    await session.aclose()
    (asked,) = approver.requests
    assert "PreToolUse [Bash]: echo checked" in (asked.summary or "")
    assert session.hooks is not None and session.hooks.active("PreToolUse")
    again = RecordingApprover(ApprovalAnswer(approved=False))
    second = await session_for(project, again)
    await second.aclose()
    assert again.requests == []  # remembered


def test_setting_sources_can_leave_the_users_hooks_out(tmp_path: Path, fake_llm: FakeLLM) -> None:
    marker = tmp_path / "ran"
    user_settings(tmp_path, hooks_block("UserPromptSubmit", f"touch '{marker}'"))
    fake_llm.script(text("one"))
    run_qwen_code(tmp_path, "-p", "x", "--setting-sources", "project")
    assert not marker.exists()


def test_permission_request_hook_answers_for_the_user(tmp_path: Path, fake_llm: FakeLLM) -> None:
    allow = json.dumps(
        {
            "hookSpecificOutput": {
                "hookEventName": "PermissionRequest",
                "decision": {"behavior": "allow"},
            }
        }
    )
    user_settings(tmp_path, hooks_block("PermissionRequest", f"echo '{allow}'", "write_file"))
    fake_llm.script(tool_turn(call("write_file", file_path="a.txt", content="a\n")), text("ok"))
    result = run_qwen_code(tmp_path, "-p", "write", "-o", "json")  # default mode: would be denied
    assert report(result)["permission_denials"] == []
    assert (tmp_path / "a.txt").read_text() == "a\n"


async def test_compaction_and_clear_fire_their_hooks(tmp_path: Path, fake_llm: FakeLLM) -> None:
    from tests.helpers import session_for

    log = tmp_path / "events.log"
    append = f"{{ cat; echo; }} >> '{log}'"
    settings: dict[str, Any] = {"hooks": {}}
    for event in ("PreCompact", "SessionEnd", "SessionStart"):
        settings["hooks"].update(hooks_block(event, append)["hooks"])
    user_settings(tmp_path, settings)
    session = await session_for(tmp_path)
    try:
        await session.agent.compress(force=True, focus="the API")
        await session.clear()
    finally:
        await session.aclose()
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    names = [
        (e["hook_event_name"], e.get("trigger") or e.get("source") or e.get("reason"))
        for e in events
    ]
    assert names == [
        ("SessionStart", "startup"),
        ("PreCompact", "manual"),
        ("SessionEnd", "clear"),
        ("SessionStart", "clear"),
        ("SessionEnd", "other"),
    ]
    assert events[1]["custom_instructions"] == "the API"
