"""`/agents` in the REPL: the list (built-in, project and personal agents, files that could
not be used and why, this session's subagents), and `/agents create`, which has the
scripted model write an agent, shows it and writes it only on a yes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prompt_toolkit.input import PipeInput

from qwen_code.config import qwen_home
from qwen_code.subagents.definitions import parse_agent
from qwen_code.subagents.runner import SubagentTask
from qwen_code.ui import commands
from qwen_code.ui.commands_agents import kebab_name, parse_reply, split_scope
from qwen_code.ui.repl import Repl
from tests.fakeserver import FakeLLM, HTTPError, error_body, text
from tests.helpers import output, write

REVIEWER = """---
name: code-reviewer
description: |
  Reviews a change for bugs and risky patterns. Use after editing code.
  A second line that the list leaves out.
tools: Read, Grep, Glob
model: fast
---
You review code. Report problems by severity.
"""

NOTES = """---
name: note-taker
description: Keeps notes of decisions in NOTES.md.
---
You keep notes.
"""

DRAFT: dict[str, Any] = {
    "name": "Security Auditor",
    "description": "Audits code for [security] problems. Use before a release.",
    "tools": ["read_file", "grep_search", "Glob", "web_browser"],
    "system_prompt": "You are a security auditor.\n\n1. Read the code.\n2. Report [HIGH] issues.",
}


def reply(draft: dict[str, Any]) -> str:
    """How models answer in practice: a fenced JSON object, then a remark."""
    return f"Here it is:\n```json\n{json.dumps(draft, indent=2)}\n```\nHope this helps!"


def project_agents(project: Path) -> Path:
    return project / ".qwen" / "agents"


async def test_list_shows_builtin_project_personal_and_broken(
    repl: tuple[Repl, PipeInput], project: Path
) -> None:
    r, _ = repl
    write(project_agents(project) / "code-reviewer.md", REVIEWER)
    write(project_agents(project) / "broken.md", "just text, no front matter\n")
    write(qwen_home() / "agents" / "note-taker.md", NOTES)
    await commands.dispatch(r, "/agents")
    shown = output(r)
    assert "general-purpose" in shown and "built-in" in shown
    assert "code-reviewer" in shown and "project" in shown
    assert "Reviews a change for bugs and risky patterns." in shown
    assert "A second line" not in shown  # the description's first line only
    assert "read_file, grep_search, glob" in shown  # Claude Code's names, as ours
    assert "model: fast" in shown
    assert "note-taker" in shown and "personal" in shown
    assert "tools: all tools" in shown
    assert "broken.md" in shown and "no front matter" in shown
    # The session's catalog now has the files written after it started.
    agents = r.session.subagents
    assert agents is not None
    assert {"code-reviewer", "note-taker"} <= set(agents.catalog.names())
    await commands.dispatch(r, "/agents list")
    assert "code-reviewer" in output(r)


async def test_list_shows_this_sessions_subagents(repl: tuple[Repl, PipeInput]) -> None:
    r, _ = repl
    agents = r.session.subagents
    assert agents is not None
    done = SubagentTask("explorer", "map the [api] layer", "call_1", background=True)
    done.status, done.ended = "completed", done.started + 75
    agents.tasks.append(done)
    agents.tasks.append(SubagentTask("general-purpose", "find the bug", "call_2", False))
    agents.tasks.append(
        SubagentTask("general-purpose", "old inline job", "call_3", False, status="completed")
    )
    await commands.dispatch(r, "/agents")
    shown = output(r)
    assert "1. explorer" in shown and "map the [api] layer" in shown and "completed" in shown
    assert "1 min 15 s" in shown
    assert "2. general-purpose" in shown and "find the bug" in shown and "running" in shown
    assert "3. general-purpose" in shown and "old inline job" in shown


async def test_show_expands_what_a_subagent_did(
    repl: tuple[Repl, PipeInput], tmp_path: Path
) -> None:
    r, _ = repl
    agents = r.session.subagents
    assert agents is not None
    transcript = tmp_path / "explorer-call_1.jsonl"
    records = [
        {"type": "session", "id": "x"},
        {"type": "message", "message": {"role": "user", "content": "Where is [A]?"}},
        {
            "type": "message",
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "grep_search", "arguments": '{"pattern": "A ="}'},
                    }
                ],
            },
        },
        {"type": "message", "message": {"role": "tool", "tool_call_id": "c1", "content": "a.py:1"}},
        {"type": "message", "message": {"role": "assistant", "content": "A is in a.py:1"}},
    ]
    transcript.write_text("\n".join(json.dumps(x) for x in records) + "\n{torn")
    task = SubagentTask("explorer", "find A", "call_1", False, status="completed")
    task.transcript = transcript
    agents.tasks.append(task)
    await commands.dispatch(r, "/agents show 1")
    shown = output(r)
    assert "Task: Where is [A]?" in shown
    assert "● grep_search" in shown and "⎿ a.py:1" in shown
    assert "A is in a.py:1" in shown
    await commands.dispatch(r, "/agents show 7")
    assert "Usage: /agents show N" in output(r)


async def test_create_writes_the_agent_after_a_yes(
    repl: tuple[Repl, PipeInput], project: Path, fake_llm: FakeLLM
) -> None:
    r, pipe = repl
    fake_llm.script(text(reply(DRAFT)))
    pipe.send_text("y")
    await commands.dispatch(r, "/agents create audit our code for security problems")
    shown = output(r)
    request = fake_llm.chat_requests[-1].body
    assert request is not None
    assert not request.get("tools")  # one request, no tools
    asked = request["messages"][-1]["content"]
    assert "audit our code for security problems" in asked
    assert "read_file" in asked and "ask_user_question" not in asked
    path = project_agents(project) / "security-auditor.md"
    assert path.is_file()
    agent = parse_agent(path, "project")
    assert agent.name == "security-auditor"
    assert agent.description == DRAFT["description"]
    assert agent.tools == ("read_file", "grep_search", "glob")
    assert agent.system_prompt == DRAFT["system_prompt"]
    # The file was shown before the question, as text: brackets and all.
    assert "[HIGH] issues" in shown and "[security]" in shown
    assert "web_browser" in shown  # the tool it does not have is named as left out
    assert "Wrote" in shown
    assert not list(project_agents(project).glob(".*.tmp"))
    # The session knows the agent, and the model sees it from the next request on.
    agents = r.session.subagents
    assert agents is not None and agents.catalog.get("security-auditor") is not None
    fake_llm.script(text("ok"))
    await r.send("hello")
    body = fake_llm.chat_requests[-1].body
    assert body is not None
    described = [t["function"]["description"] for t in body["tools"]]
    assert any("security-auditor" in d for d in described)
    # The request counted in /stats like any other.
    await commands.dispatch(r, "/stats")
    assert "Model requests: 2" in output(r)


async def test_create_for_the_user(repl: tuple[Repl, PipeInput], fake_llm: FakeLLM) -> None:
    r, pipe = repl
    draft = {**DRAFT, "name": "doc-writer", "tools": None}
    fake_llm.script(text(json.dumps(draft)))
    pipe.send_text("y")
    await commands.dispatch(r, "/agents create --user writes documentation")
    agent = parse_agent(qwen_home() / "agents" / "doc-writer.md", "user")
    assert agent.tools is None  # all tools


async def test_create_writes_nothing_after_a_no(
    repl: tuple[Repl, PipeInput], project: Path, fake_llm: FakeLLM
) -> None:
    r, pipe = repl
    fake_llm.script(text(reply(DRAFT)))
    pipe.send_text("n")
    await commands.dispatch(r, "/agents create audit our code")
    assert "Nothing was written." in output(r)
    assert not (project_agents(project) / "security-auditor.md").exists()


async def test_an_existing_file_is_replaced_only_when_the_user_says_so(
    repl: tuple[Repl, PipeInput], project: Path, fake_llm: FakeLLM
) -> None:
    r, pipe = repl
    old = write(project_agents(project) / "security-auditor.md", NOTES)
    fake_llm.script(text(reply(DRAFT)))
    pipe.send_text("n")
    await commands.dispatch(r, "/agents create audit our code")
    shown = output(r)
    assert "security-auditor.md already exists" in shown
    assert old.read_text() == NOTES
    fake_llm.script(text(reply(DRAFT)))
    pipe.send_text("y")
    await commands.dispatch(r, "/agents create audit our code")
    assert parse_agent(old, "project").name == "security-auditor"


async def test_a_garbled_reply_is_reported_not_written(
    repl: tuple[Repl, PipeInput], project: Path, fake_llm: FakeLLM
) -> None:
    r, _ = repl
    fake_llm.script(
        text("Sure! An agent that [checks] things would be great."),
        text(json.dumps({"name": "x-checker", "description": "Checks."})),
    )
    await commands.dispatch(r, "/agents create checks things")
    shown = output(r)
    assert "not a usable agent" in shown and "no JSON object" in shown
    assert "[checks]" in shown  # the reply's beginning, as text
    await commands.dispatch(r, "/agents create checks things")
    shown = output(r)
    assert "not a usable agent" in shown and "system_prompt" in shown
    assert "Traceback" not in shown
    assert not project_agents(project).exists()


async def test_a_model_error_is_reported(repl: tuple[Repl, PipeInput], fake_llm: FakeLLM) -> None:
    r, _ = repl
    fake_llm.script(HTTPError(400, error_body("bad request", 400)))
    await commands.dispatch(r, "/agents create anything")
    assert "Could not ask the model for the agent" in output(r)


async def test_usage(repl: tuple[Repl, PipeInput], fake_llm: FakeLLM) -> None:
    r, _ = repl
    await commands.dispatch(r, "/agents create --user")
    await commands.dispatch(r, "/agents frobnicate")
    assert output(r).count("Usage: /agents") == 2
    assert not fake_llm.chat_requests


# --- the pieces ----------------------------------------------------------------------------


def test_parse_reply_is_robust() -> None:
    offered = ["read_file", "grep_search", "run_shell_command", "mcp__docs__search"]
    body = {
        "name": "Test_Runner!",
        "description": "Runs tests.",
        "tools": "Bash, Read, mcp__docs",
        "system_prompt": "You run tests.",
    }
    raw = "<think>{not json}</think>\n" + json.dumps(body) + "\nThat's all {really}."
    draft = parse_reply(raw, offered)
    assert draft.name == "test-runner"
    assert draft.tools == ("run_shell_command", "read_file", "mcp__docs")
    assert parse_reply(json.dumps({**body, "tools": "*"}), offered).tools is None
    # A literal newline inside a string (invalid JSON, common in replies) is accepted.
    loose = '{"name": "a", "description": "d", "system_prompt": "line one\nline two"}'
    assert parse_reply(loose, offered).system_prompt == "line one\nline two"


def test_parse_reply_refuses_what_it_cannot_use() -> None:
    import pytest

    with pytest.raises(ValueError, match="no tool this session has"):
        parse_reply(json.dumps({**DRAFT, "tools": ["teleport"]}), ["read_file"])
    with pytest.raises(ValueError, match="name"):
        parse_reply(json.dumps({**DRAFT, "name": "!!!"}), ["read_file"])
    with pytest.raises(ValueError, match="description"):
        parse_reply(json.dumps({**DRAFT, "description": " "}), ["read_file"])


def test_names_and_scope() -> None:
    assert kebab_name("  Code  Reviewer ") == "code-reviewer"
    assert split_scope("--user review code") == ("user", "review code")
    assert split_scope("--project  review code") == ("project", "review code")
    assert split_scope("review --user code") == ("project", "review --user code")
