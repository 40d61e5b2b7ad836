"""Custom slash commands: discovery, file formats, expansion, approval of `!{…}`, headless.

Real files in a git repo and $QWEN_HOME, real shell commands through the shell tool, and
`qwen-code -p` as a subprocess against the scripted model server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_code.agent.approval import (
    ApprovalAnswer,
    Approver,
    HeadlessApprover,
    Permissions,
    parse_rules,
)
from qwen_code.agent.tool_runner import ToolRunner
from qwen_code.config import ApprovalMode, qwen_home
from qwen_code.custom_commands import (
    CommandFileError,
    CommandProblem,
    CustomCommand,
    discover,
    expand,
    expand_template,
    find_command,
    find_injections,
    parse_front_matter,
    split_invocation,
    tool_runner_shell,
)
from qwen_code.tools.base import ToolContext
from qwen_code.tools.registry import builtin_registry
from qwen_code.tools.workspace import Workspace
from qwen_code.ui.headless import compose_prompt
from tests.fakeserver import FakeLLM, text
from tests.helpers import RecordingApprover, commands_dir, run_qwen_code, user_message, write


def user_dir() -> Path:
    return qwen_home() / "commands"


def make_runner(
    root: Path,
    mode: ApprovalMode = "yolo",
    *,
    rules: list[str] | None = None,
    approver: Approver | None = None,
) -> ToolRunner:
    ctx = ToolContext(workspace=Workspace(root=root), scratch_dir=root.parent / "scratch")
    return ToolRunner(
        registry=builtin_registry(),
        ctx=ctx,
        approver=approver or HeadlessApprover(mode),
        mode=mode,
        permissions=Permissions(allow=parse_rules(rules or [])),
    )


async def run_template(
    root: Path, prompt: str, args: str = "", runner: ToolRunner | None = None
) -> tuple[str, list[str]]:
    runner = runner or make_runner(root)
    result = await expand_template(
        prompt, args, workspace=runner.ctx.workspace, shell=tool_runner_shell(runner)
    )
    return result.text, result.notes


# --- discovery ---------------------------------------------------------------------------


def test_discovers_both_formats_in_both_locations_with_namespaces(project: Path) -> None:
    write(
        commands_dir(project) / "git" / "commit.md",
        "---\ndescription: Commit the staged changes\n---\nWrite a commit message.\n",
    )
    write(
        commands_dir(project) / "review.toml",
        'description = "Review code"\nprompt = """\nReview {{args}} carefully.\n"""\n',
    )
    write(user_dir() / "plain.md", "Just a body, no front matter.\n")
    write(user_dir() / "ops" / "deploy" / "Prod.toml", 'prompt = "Deploy to prod"\n')
    sub = project / "src" / "deep"
    sub.mkdir(parents=True)

    found = discover(sub, qwen_home())  # the project is found from a sub-directory

    assert found.problems == []
    assert sorted(found.commands) == ["git:commit", "ops:deploy:prod", "plain", "review"]
    commit = found.commands["git:commit"]
    assert (commit.scope, commit.description, commit.prompt) == (
        "project",
        "Commit the staged changes",
        "Write a commit message.",
    )
    review = found.commands["review"]
    assert review.description == "Review code"
    assert review.prompt.strip() == "Review {{args}} carefully."
    plain = found.commands["plain"]
    assert plain.scope == "user"
    assert plain.help.startswith("Custom command from ")
    assert plain.help.endswith("plain.md")
    assert found.commands["ops:deploy:prod"].prompt == "Deploy to prod"


def test_project_wins_over_user_on_a_name_clash(project: Path) -> None:
    write(user_dir() / "fix.md", "USER version")
    write(user_dir() / "only-user.md", "user only")
    write(commands_dir(project) / "fix.toml", 'prompt = "PROJECT version"')

    found = discover(project, qwen_home())

    assert found.commands["fix"].prompt == "PROJECT version"
    assert found.commands["fix"].scope == "project"
    assert found.commands["only-user"].scope == "user"
    assert isinstance(find_command("FIX", project, qwen_home()), CustomCommand)
    assert find_command("nope", project, qwen_home()) is None


def test_outside_a_git_repo_the_cwd_is_the_project(tmp_path: Path) -> None:
    cwd = tmp_path / "loose"
    write(commands_dir(cwd) / "hi.md", "hello")
    assert discover(cwd, qwen_home()).commands["hi"].scope == "project"


def test_broken_files_are_reported_and_skipped(project: Path) -> None:
    folder = commands_dir(project)
    write(folder / "good.md", "---\ndescription: fine\n---\nok")
    write(folder / "bad-toml.toml", 'prompt = "unterminated\n')
    write(folder / "no-prompt.toml", 'description = "nothing to say"\n')
    write(folder / "wrong-type.toml", "prompt = 3\n")
    write(folder / "unclosed.md", "---\ndescription: never closed\nbody\n")
    write(folder / "bad-line.md", "---\ndescription: ok\nthis is not yaml\n---\nbody")
    write(folder / "empty.md", "---\ndescription: only metadata\n---\n\n")
    write(folder / "shell.md", "Status: !{git status\n")
    write(folder / "two words.md", "hi")
    (folder / "binary.md").write_bytes(b"\x00\x01\x02prompt")
    write(folder / "twin.md", "markdown twin")
    write(folder / "twin.toml", 'prompt = "toml twin"')

    found = discover(project, qwen_home())

    assert sorted(found.commands) == ["good", "twin"]
    assert found.commands["twin"].prompt == "markdown twin"
    reasons = {p.path.name: (p.name, p.reason) for p in found.problems}
    assert set(reasons) == {
        "bad-toml.toml",
        "no-prompt.toml",
        "wrong-type.toml",
        "unclosed.md",
        "bad-line.md",
        "empty.md",
        "shell.md",
        "two words.md",
        "binary.md",
        "twin.toml",
    }
    assert reasons["bad-toml.toml"][0] == "bad-toml"
    assert "invalid TOML" in reasons["bad-toml.toml"][1]
    assert "no `prompt`" in reasons["no-prompt.toml"][1]
    assert "must be a string" in reasons["wrong-type.toml"][1]
    assert "not closed" in reasons["unclosed.md"][1]
    assert "line 3" in reasons["bad-line.md"][1]
    assert "prompt is empty" in reasons["empty.md"][1]
    assert "!{" in reasons["shell.md"][1]
    assert "not closed" in reasons["shell.md"][1]
    assert "spaces" in reasons["two words.md"][1]
    assert "not a text file" in reasons["binary.md"][1]
    assert "twin.md" in reasons["twin.toml"][1]
    shown = str(next(p for p in found.problems if p.name == "bad-toml"))
    assert shown.startswith("/bad-toml (") and "bad-toml.toml" in shown and "skipped" in shown
    problem = find_command("bad-toml", project, qwen_home())
    assert isinstance(problem, CommandProblem)


def test_front_matter_values() -> None:
    meta, body = parse_front_matter(
        "---\n"
        "# a comment\n"
        'description: "Quoted: with \\"escapes\\""\n'
        "argument-hint: '[it''s optional]'\n"
        "plain: words here # trailing comment\n"
        "folded: >\n"
        "  first line\n"
        "  second line\n"
        "literal: |\n"
        "  keep\n"
        "    indented\n"
        "continued: starts here\n"
        "  and goes on\n"
        "tools:\n"
        "  - read_file\n"
        "  - 'grep_search'\n"
        "---\n"
        "The body.\n"
    )
    assert meta == {
        "description": 'Quoted: with "escapes"',
        "argument-hint": "[it's optional]",
        "plain": "words here",
        "folded": "first line second line\n",
        "literal": "keep\n  indented\n",
        "continued": "starts here and goes on",
        "tools": ["read_file", "grep_search"],
    }
    assert body == "The body.\n"
    assert parse_front_matter("no front matter\n---\n") == ({}, "no front matter\n---\n")
    with pytest.raises(CommandFileError, match="double quote"):
        parse_front_matter('---\ndescription: "open\n---\nbody')


def test_split_invocation_and_find_injections() -> None:
    assert split_invocation("/git:commit fix  typo ") == ("git:commit", "fix  typo")
    assert split_invocation("/Review") == ("review", "")
    assert split_invocation("/review\n\nline one\nline two") == ("review", "line one\nline two")
    assert split_invocation("/usr/bin/env is a path") is None
    assert split_invocation("no slash") is None
    found = find_injections("a @{x.txt} b !{echo {a,b} {{args}}} c")
    assert [(i.kind, i.source) for i in found] == [
        ("file", "x.txt"),
        ("shell", "echo {a,b} {{args}}"),
    ]


# --- expansion -----------------------------------------------------------------------------


async def test_args_substitution_and_appending(project: Path) -> None:
    text_, notes = await run_template(project, "Fix {{args}} now; really {{args}}.", "the bug")
    assert (text_, notes) == ("Fix the bug now; really the bug.", [])
    appended, _ = await run_template(project, "Review the code.\n", "  focus on tests  ")
    assert appended == "Review the code.\n\nfocus on tests"
    bare, _ = await run_template(project, "Review the code.", "")
    assert bare == "Review the code."
    empty_args, _ = await run_template(project, "Fix {{args}}.", "")
    assert empty_args == "Fix ."


async def test_file_injection(project: Path, tmp_path: Path) -> None:
    write(project / "notes.txt", "line one\nline two\n")
    write(project / "docs" / "a.md", "alpha\n")
    write(project / "docs" / "b.md", "beta\n")
    outside = write(tmp_path / "outside.txt", "secret\n")

    text_, notes = await run_template(project, "Notes:\n@{notes.txt}\nEnd.")
    assert text_ == "Notes:\nline one\nline two\n\nEnd."
    assert notes == []

    chosen, _ = await run_template(project, "Read @{{{args}}}", "notes.txt")
    assert chosen == "Read line one\nline two\n"  # args inside @{} name the file; not appended

    listing, _ = await run_template(project, "@{docs}")
    assert "--- docs/a.md ---\nalpha" in listing
    assert "--- docs/b.md ---\nbeta" in listing

    runner = make_runner(project, "default")
    missing, notes = await run_template(
        project, f"A @{{missing.txt}} B @{{{outside}}} C", runner=runner
    )
    assert "secret" not in missing
    assert "[@{missing.txt}: no such file or directory]" in missing
    assert f"[@{{{outside}}}: outside the workspace, not read]" in missing
    assert len(notes) == 2


async def test_file_injection_is_capped(project: Path) -> None:
    write(project / "big.txt", "x" * (300 * 1024))
    text_, notes = await run_template(project, "@{big.txt}")
    assert text_.startswith("x" * 256 * 1024 + "\n[truncated")
    assert "[truncated: the first 262,144 of 307,200 bytes of big.txt]" in text_
    assert "only the first 262,144" in notes[0]


async def test_shell_injection_runs_in_the_workspace(project: Path) -> None:
    write(project / "marker.txt", "here")
    text_, notes = await run_template(project, "Files: !{ls} / status: !{echo ok}.")
    assert text_ == "Files: marker.txt / status: ok."
    assert notes == []


async def test_args_inside_shell_are_escaped(project: Path) -> None:
    nasty = 'it\'s $HOME; touch pwned `id` "q"'
    text_, notes = await run_template(project, "Echo: !{echo {{args}}}\nRaw: {{args}}", nasty)
    assert text_ == f"Echo: {nasty}\nRaw: {nasty}"
    assert notes == []
    assert not (project / "pwned").exists()


async def test_failed_command_is_noted(project: Path) -> None:
    text_, notes = await run_template(project, "Result: !{echo half; exit 3}")
    assert text_ == "Result: half\n[Shell command `echo half; exit 3` exited with code 3]"
    assert notes == ["!{echo half; exit 3} exited with code 3"]
    empty, notes = await run_template(project, "Result: !{ }")
    assert "was not run: the command is empty" in empty
    assert len(notes) == 1


async def test_injected_content_is_not_expanded_again(project: Path) -> None:
    write(project / "trap.txt", "!{touch pwned} and {{args}}")
    text_, _ = await run_template(project, "@{trap.txt}\n!{printf '%s' '@{trap.txt}'}", "ARG")
    assert text_ == "!{touch pwned} and {{args}}\n@{trap.txt}\n\nARG"
    assert not (project / "pwned").exists()


async def test_expand_a_discovered_command(project: Path) -> None:
    write(project / "README.md", "# Demo\n")
    write(
        commands_dir(project) / "sum.md",
        "---\ndescription: Summarise\n---\nSummarise @{README.md} for {{args}}.",
    )
    command = discover(project, qwen_home()).commands["sum"]
    runner = make_runner(project)
    result = await expand(
        command, "managers", workspace=runner.ctx.workspace, shell=tool_runner_shell(runner)
    )
    assert result.text == "Summarise # Demo\n for managers."


# --- approval of !{…} ----------------------------------------------------------------------


async def test_headless_default_mode_denies_shell_with_a_note(project: Path) -> None:
    runner = make_runner(project, "default")
    text_, notes = await run_template(project, "Diff: !{touch made}", runner=runner)
    assert not (project / "made").exists()
    assert text_.startswith("Diff: [Shell command `touch made` was not run: it needs approval")
    assert "--yolo" in text_
    assert "'Bash(touch made)'" in text_
    assert notes[0].startswith("!{touch made} was not run")


async def test_plan_mode_refuses_shell(project: Path) -> None:
    runner = make_runner(project, "plan")
    text_, notes = await run_template(project, "!{touch made}", runner=runner)
    assert "Plan mode allows only read-only tools" in text_
    assert len(notes) == 1
    assert not (project / "made").exists()


async def test_allow_rules_let_a_command_run(project: Path) -> None:
    runner = make_runner(project, "default", rules=["run_shell_command(echo)"])
    text_, notes = await run_template(project, "!{echo allowed} !{touch made}", runner=runner)
    assert text_.startswith("allowed [Shell command `touch made` was not run")
    assert [n.split(" ")[0] for n in notes] == ["!{touch"]
    assert not (project / "made").exists()


async def test_the_session_approver_is_asked(project: Path) -> None:
    approver = RecordingApprover(ApprovalAnswer(approved=True, remember="session"))
    runner = make_runner(project, "default", approver=approver)
    text_, notes = await run_template(project, "!{echo {{args}}}", "asked", runner=runner)
    assert (text_, notes) == ("asked", [])
    [request] = approver.requests
    assert request.call.name == "run_shell_command"
    assert request.call.arguments == {"command": "echo asked"}
    assert request.kind == "execute"
    assert request.suggested_rule == "Bash(echo *)"
    # "always, this session" added the rule: the next echo is not asked about
    await run_template(project, "!{echo again}", runner=runner)
    assert len(approver.requests) == 1

    refusing = RecordingApprover(ApprovalAnswer(approved=False, message="Not today."))
    runner = make_runner(project, "default", approver=refusing)
    text_, notes = await run_template(project, "!{touch made}", runner=runner)
    assert text_ == "[Shell command `touch made` was not run: Not today.]"
    assert not (project / "made").exists()


# --- headless --------------------------------------------------------------------------------


@pytest.fixture
def shell_command(project: Path) -> Path:
    write(project / "notes.txt", "remember the milk\n")
    write(
        commands_dir(project) / "git" / "say.md",
        "---\ndescription: Say something\n---\n"
        "Notes: @{notes.txt}\nShell: !{echo {{args}}}\nArgs: {{args}}",
    )
    return project


def test_headless_yolo_expands_and_runs_the_shell(shell_command: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("Done."))
    result = run_qwen_code(shell_command, "-p", "/git:say it's; touch pwned", "--yolo")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Done.\n"
    assert user_message(fake_llm) == (
        "Notes: remember the milk\n\nShell: it's; touch pwned\nArgs: it's; touch pwned"
    )
    assert not (shell_command / "pwned").exists()


def test_headless_default_mode_denies_the_shell(shell_command: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("Could not run it."))
    result = run_qwen_code(shell_command, "-p", "/git:say hi")
    assert result.returncode == 0, result.stderr
    message = user_message(fake_llm)
    assert message.startswith("Notes: remember the milk\n\nShell: [Shell command `echo hi`")
    assert "was not run: it needs approval in 'default' mode" in message
    assert message.endswith("Args: hi")
    assert "qwen-code: /git:say: !{echo hi} was not run" in result.stderr


def test_headless_allowed_tools_rule_lets_it_run(shell_command: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("ok"))
    result = run_qwen_code(
        shell_command, "-p", "/git:say hi", "--allowed-tools", "run_shell_command(echo)"
    )
    assert result.returncode == 0, result.stderr
    assert "Shell: hi\n" in user_message(fake_llm)
    assert "was not run" not in result.stderr


def test_headless_unknown_slash_stays_plain_text(project: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("plain"))
    result = run_qwen_code(project, "-p", "/nonesuch please")
    assert result.returncode == 0, result.stderr
    assert user_message(fake_llm) == "/nonesuch please"


def test_headless_piped_input_becomes_the_arguments(project: Path, fake_llm: FakeLLM) -> None:
    write(commands_dir(project) / "review.toml", 'prompt = "Review this diff:\\n{{args}}"\n')
    fake_llm.script(text("LGTM"))
    result = run_qwen_code(project, "-p", "/review", stdin="+added line\n")
    assert result.returncode == 0, result.stderr
    assert user_message(fake_llm) == "Review this diff:\n+added line"


def test_headless_broken_command_is_reported(project: Path, fake_llm: FakeLLM) -> None:
    write(commands_dir(project) / "bad.toml", "prompt = \n")
    fake_llm.script(text("ok"))
    result = run_qwen_code(project, "-p", "/bad arg")
    assert result.returncode == 0, result.stderr
    assert "custom command /bad" in result.stderr
    assert "invalid TOML" in result.stderr
    assert user_message(fake_llm) == "/bad arg"


def test_compose_prompt_keeps_the_order_for_other_prompts(project: Path) -> None:
    write(commands_dir(project) / "review.md", "Review")
    assert compose_prompt("/review", "diff\n", cwd=project, home=qwen_home()) == "/review\n\ndiff"
    assert compose_prompt("/other", "diff\n", cwd=project, home=qwen_home()) == "diff\n\n/other"
    assert compose_prompt("review", "diff\n", cwd=project, home=qwen_home()) == "diff\n\nreview"
