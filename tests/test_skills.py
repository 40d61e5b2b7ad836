"""Skills: SKILL.md folders found in the project and the user's home, listed to the model by
name and description, loaded by the `skill` tool, run as `/<skill-name>`, and granting
their `allowed-tools` only where trusted."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_code.config import qwen_home
from qwen_code.skills import discover_skills, parse_skill
from tests.fakeserver import FakeLLM, call, text, tool_turn
from tests.helpers import bodies, make_repo, output, repl_in, run_qwen_code, user_message, write

REVIEW = """---
name: code-review
description: Review a change for bugs and style. Use when asked to review code.
---
# Code review
SECRET-BODY-MARKER: read the diff, then list problems by severity.
"""


def skill(folder: Path, content: str, **files: str) -> Path:
    path = write(folder / "SKILL.md", content)
    for name, body in files.items():
        write(folder / name.replace("__", "/"), body)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"app.py": "print('hi')\n"})


def tool_result(fake: FakeLLM) -> str:
    return [m["content"] for m in bodies(fake)[-1]["messages"] if m["role"] == "tool"][-1]


# --- parsing and discovery ----------------------------------------------------------------


def test_parse_skill_reads_front_matter(tmp_path: Path) -> None:
    path = skill(
        tmp_path / "deploy",
        "---\ndescription: |\n  Deploy the service.\n  Two lines.\n"
        "allowed-tools: Bash(make *), Read\ndisable-model-invocation: true\n---\nSteps\n",
    )
    parsed = parse_skill(path, "user")
    assert parsed.name == "deploy"  # from the folder when the front matter has none
    assert parsed.description.startswith("Deploy the service.")
    assert parsed.allowed_tools == ("Bash(make *)", "Read")
    assert not parsed.model_invocable and parsed.user_invocable
    assert parsed.body() == "Steps"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("no front matter\n", "no front matter"),
        ("---\nname: x\n---\nbody\n", "description is missing"),
        ("---\nname: [unclosed\ndescription: d\n---\n", "not valid YAML"),
        ("---\nname: bad name/x\ndescription: d\n---\n", "may hold only"),
    ],
)
def test_bad_skills_are_reported_not_loaded(tmp_path: Path, content: str, problem: str) -> None:
    skill(tmp_path / "proj" / ".qwen" / "skills" / "broken", content)
    catalog = discover_skills(tmp_path / "proj", tmp_path / "home", project_trusted=True)
    assert catalog.skills == {}
    assert len(catalog.problems) == 1 and problem in catalog.problems[0]


def test_project_claude_and_personal_skills_are_found(tmp_path: Path) -> None:
    home, proj = tmp_path / "home", tmp_path / "proj"
    skill(home / "skills" / "mine", "---\nname: mine\ndescription: personal\n---\nx\n")
    skill(proj / ".claude" / "skills" / "cc", "---\nname: cc\ndescription: from claude\n---\nx\n")
    skill(proj / ".qwen" / "skills" / "mine", "---\nname: mine\ndescription: project\n---\nx\n")
    catalog = discover_skills(proj, home, project_trusted=False)
    assert {n: s.description for n, s in catalog.skills.items()} == {
        "mine": "project",
        "cc": "from claude",
    }


# --- in a session ---------------------------------------------------------------------------


def test_the_model_sees_names_and_loads_a_skill_on_demand(repo: Path, fake_llm: FakeLLM) -> None:
    skill(repo / ".qwen" / "skills" / "code-review", REVIEW, scripts__check="echo ok\n")
    fake_llm.script(tool_turn(call("skill", skill="code-review", args="app.py")), text("done"))
    result = run_qwen_code(repo, "-p", "review app.py")
    assert result.returncode == 0, result.stderr
    first = bodies(fake_llm)[0]
    system = first["messages"][0]["content"]
    assert "code-review: Review a change for bugs and style." in system
    assert "SECRET-BODY-MARKER" not in system
    assert "skill" in [t["function"]["name"] for t in first["tools"]]
    loaded = tool_result(fake_llm)
    assert "SECRET-BODY-MARKER" in loaded and "ARGUMENTS: app.py" in loaded
    assert f"Base directory for this skill: {repo / '.qwen' / 'skills' / 'code-review'}" in loaded
    assert "- scripts/check" in loaded


def test_no_skills_no_skill_tool(repo: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("done"))
    run_qwen_code(repo, "-p", "hi")
    first = bodies(fake_llm)[0]
    assert "skill" not in [t["function"]["name"] for t in first["tools"]]
    assert "# Skills" not in first["messages"][0]["content"]


GRANTING = """---
name: echoer
description: Echo things.
allowed-tools: run_shell_command(echo *)
---
Run echo.
"""


def test_a_personal_skill_grants_its_allowed_tools(repo: Path, fake_llm: FakeLLM) -> None:
    skill(qwen_home() / "skills" / "echoer", GRANTING)
    fake_llm.script(
        tool_turn(call("skill", skill="echoer")),
        tool_turn(call("run_shell_command", command="echo granted")),
        text("done"),
    )
    result = run_qwen_code(repo, "-p", "go")
    assert result.returncode == 0, result.stderr
    assert "granted" in tool_result(fake_llm) and "approval" not in tool_result(fake_llm)


def test_an_untrusted_projects_skill_grants_nothing(repo: Path, fake_llm: FakeLLM) -> None:
    skill(repo / ".qwen" / "skills" / "echoer", GRANTING)
    fake_llm.script(
        tool_turn(call("skill", skill="echoer")),
        tool_turn(call("run_shell_command", command="echo granted")),
        text("done"),
    )
    run_qwen_code(repo, "-p", "go")
    messages = [m["content"] for m in bodies(fake_llm)[-1]["messages"] if m["role"] == "tool"]
    assert "not granted because the folder is not trusted" in messages[0]
    assert "needs approval" in messages[1]


# --- in the REPL ---------------------------------------------------------------------------


async def test_skills_list_and_slash_invocation(project: Path, fake_llm: FakeLLM) -> None:
    skill(project / ".qwen" / "skills" / "code-review", REVIEW)
    fake_llm.script(text("reviewed"))
    async with repl_in(project) as (repl, _pipe):
        await repl.handle("/skills")
        listed = output(repl)
        assert "code-review" in listed and "Review a change" in listed
        await repl.handle("/code-review app.py please")
    sent = user_message(fake_llm)
    assert "SECRET-BODY-MARKER" in sent and "ARGUMENTS: app.py please" in sent
