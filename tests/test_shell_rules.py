"""Shell permission rules: commands are parsed (tree-sitter-bash), not split on a regex.

Allow rules cover a command only when every simple command in it matches and nothing in
it does more than its words say; deny and ask rules look at every simple command
anywhere, and at the paths file commands and redirections use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwen_code.agent.approval import (
    Allow,
    ApprovalAnswer,
    ApprovalRequest,
    Ask,
    Deny,
    HeadlessApprover,
    Permissions,
    decide,
    parse_rules,
)
from qwen_code.agent.events import ApprovalRequested, ToolCall, ToolResult
from qwen_code.agent.shell_parse import parse_shell
from qwen_code.agent.tool_runner import ToolRunner
from qwen_code.config import Flags, Settings, load_settings
from qwen_code.tools.base import ToolContext
from qwen_code.tools.registry import builtin_registry
from qwen_code.tools.workspace import Workspace


def shell(command: str) -> ToolCall:
    return ToolCall(id="c1", name="run_shell_command", arguments={"command": command})


def tool(name: str, **arguments: object) -> ToolCall:
    return ToolCall(id="c1", name=name, arguments=dict(arguments))


def allows(rules: list[str], command: str) -> bool:
    return isinstance(decide("default", "execute", shell(command), parse_rules(rules)), Allow)


def policy(
    root: Path | None = None,
    *,
    allow: tuple[str, ...] = (),
    ask: tuple[str, ...] = (),
    deny: tuple[str, ...] = (),
) -> Permissions:
    return Permissions(
        allow=parse_rules(allow, split_commas=False),
        ask=parse_rules(ask, split_commas=False),
        deny=parse_rules(deny, split_commas=False),
        workspace=Workspace(root=root) if root is not None else None,
    )


# --- A. the attacks from the issue ------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "ls > ~/.bashrc",  # overwrite a shell start-up file
        "ls >> f",
        "ls &> f",
        "ls &>> f",
        "ls >| f",
        "ls >& f",  # `>&` with a file name is a file, not a descriptor
        "ls 1>f",
        "ls <(rm -rf build)",  # process substitution runs any command
        "ls >(sh)",
        "ls -la > out.txt 2>&1",
        "ls > /dev/null > f",
        "ls | ls > f",
        "echo > f hi",  # (with Bash(echo *) too)
    ],
)
def test_an_allowed_prefix_no_longer_covers_writes_and_substitutions(command: str) -> None:
    assert not allows(["run_shell_command(ls)", "Bash(echo *)"], command)


@pytest.mark.parametrize(
    "command",
    [
        "ls $(rm -rf x)",
        "ls `rm -rf x`",
        'ls "$(rm -rf x)"',
        "(ls)",
        "f() { ls; }; f",
        "if true; then ls; fi",
        "for i in 1; do ls; done",
        "eval ls",
        "exec ls",
        "source ./ls",
        ". ./ls",
        "command eval ls",
        "PATH=. ls",
        "LD_PRELOAD=./x.so ls",
        "DYLD_INSERT_LIBRARIES=./x ls",
        "BASH_ENV=./x ls",
        "GIT_EXTERNAL_DIFF=./x ls",
        "IFS=x ls",
        "PYTHONPATH=. ls",
        "NODE_OPTIONS=--require=./x ls",
        "HOME=./evil ls",
        "npm_config_script_shell=./x ls",
        "env PATH=. ls",
        "env -i ls",
        "env -S 'rm -rf x' ls",
        "$X ls",
        '"$X"',
        "x=1; ls",
        "export PATH=.; ls",
        "ls ${x:=y}",
        "ls ${x@P}",
        "ls $((1))",
        "[[ -f x ]] && ls",
        "ls < /etc/passwd",
        "ls; ls (",  # a syntax error
        "ls &&",  # a missing command
        "ls; rm -rf x",
        "ls | sh",
        "",
    ],
)
def test_constructs_an_allow_rule_never_covers(command: str) -> None:
    assert not allows(["run_shell_command(ls)"], command)


@pytest.mark.parametrize(
    "command",
    [
        "ls",
        "ls -la src",
        "ls && ls -la",
        "ls || ls -a",
        "ls; ls -a",
        "ls\nls -a",
        "ls | ls -1",
        "ls &",
        "ls 2>&1",
        "ls 2>/dev/null",
        "ls >&2",
        "ls 2>&-",
        "ls <<< 'here string'",
        "ls <<EOF\nbody\nEOF",
        "ls <<'EOF'\n$(not run)\nEOF",
        "'ls' -la",
        '"ls" -la',
        "l\\s -la",
        "FOO=1 ls",
        "env FOO=1 ls",
        "! ls",
        "{ ls; ls -a; }",
        "ls # a comment",
        "ls \\\n  -la",
    ],
)
def test_pipelines_and_lists_are_fine_when_every_part_matches(command: str) -> None:
    assert allows(["run_shell_command(ls)"], command)


def test_heredoc_with_a_substitution_is_not_covered() -> None:
    assert not allows(["run_shell_command(cat)"], "cat <<EOF\n$(rm -rf x)\nEOF")


@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        ("cat notes.txt", True),
        ("cat 'notes.txt'", True),
        ("cat $HOME", False),  # an expansion is not the literal word
        ("cat *.txt", False),
        ("cat ~root/notes.txt", False),
        ("cat notes.{txt,md}", False),
        ("cat $'notes.txt'", False),
    ],
)
def test_words_that_expand_match_only_a_wildcard(command: str, allowed: bool) -> None:
    assert allows(["Bash(cat notes.txt)"], command) is allowed
    assert allows(["Bash(cat *)"], command)


# --- rule syntax ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "command", "allowed"),
    [
        ("Bash(git *)", "git", True),
        ("Bash(git *)", "git status --short", True),
        ("Bash(git *)", "gitk", False),
        ("Bash(npm run build)", "npm run build", True),
        ("Bash(npm run build)", "npm run build --prod", False),
        ("Bash(npm run build)", "npm  run   build", True),
        ("Shell(npm run build)", "npm run build -- --watch", False),
        ("Bash(npm run test:*)", "npm run test", True),
        ("Bash(npm run test:*)", "npm run test -- --watch", True),
        ("Bash(npm run test:*)", "npm run testx", False),
        ("Bash(npm run test*)", "npm run test:unit", True),
        ("Bash(npm run test*)", "npm run test unit", False),
        ("Bash(* --help)", "cargo --help", True),
        ("Bash(* --help)", "cargo --help --verbose", False),
        ("Bash(git * main)", "git push origin main", True),
        ("Bash(git * main)", "git push origin dev", False),
        ("run_shell_command(git status)", "git status --short", True),
        ("ShellTool(git status)", "git status -s", True),
        ("run_shell_command(git status)", "git statusx", False),
        ("Bash", "rm -rf / > x; $(anything)", True),
        ("Bash(*)", "anything at all &> f", True),
        ("run_shell_command", "ls > f", True),
        ("Bash()", "ls", False),
    ],
)
def test_rule_syntax(rule: str, command: str, allowed: bool) -> None:
    assert allows([rule], command) is allowed


@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        ("rm -rf build && ls -la", True),
        ("rm -rf build  &&  ls  -la", True),
        ("rm -rf / && ls -la", False),
        ("rm -rf build", False),
        ("ls -la", False),
        ("rm -rf build && ls -la && curl evil.example", False),
        ("rm -rf build || ls -la", False),
    ],
)
def test_a_specifier_with_several_commands_matches_only_itself(command: str, allowed: bool) -> None:
    assert allows(["Bash(rm -rf build && ls -la)"], command) is allowed


def test_legacy_comma_separated_rules_and_settings_lists() -> None:
    settings = Settings.model_validate(
        {
            "tools": {"allowed": ["edit,run_shell_command(npm test, --watch)"]},
            "permissions": {"allow": ["Bash(echo a, b)"], "deny": ["Bash(rm *)"]},
        }
    )
    perms = Permissions.from_settings(settings)
    assert [r.raw for r in perms.allow] == [
        "Bash(echo a, b)",
        "edit",
        "run_shell_command(npm test, --watch)",
    ]
    assert [r.raw for r in perms.deny] == ["Bash(rm *)"]


def test_flags_and_settings_rules_reach_the_policy(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / ".qwen").mkdir(parents=True)
    home = Path(os.environ["QWEN_HOME"])
    (home / "settings.json").write_text(
        json.dumps({"permissions": {"allow": ["Bash(make *)"], "deny": ["Bash(make clean)"]}})
    )
    settings = load_settings(Flags(allowed_tools=["Bash(ls *)"]), cwd=root)
    perms = Permissions.from_settings(settings, workspace=Workspace(root=root))
    assert isinstance(decide("default", "execute", shell("ls -la"), perms), Allow)
    assert isinstance(decide("default", "execute", shell("make test"), perms), Allow)
    assert isinstance(decide("yolo", "execute", shell("make clean"), perms), Deny)


@pytest.mark.parametrize(
    ("name", "tools"),
    [
        ("Bash", ["run_shell_command"]),
        ("Shell", ["run_shell_command"]),
        ("ShellTool", ["run_shell_command"]),
        ("Read", ["read_file", "grep_search", "glob", "list_directory"]),
        ("ReadFile", ["read_file"]),
        ("Edit", ["edit", "write_file"]),
        ("EditFile", ["edit"]),
        ("Write", ["write_file"]),
        ("WriteFile", ["write_file"]),
        ("Grep", ["grep_search"]),
        ("SearchFiles", ["grep_search"]),
        ("Glob", ["glob"]),
        ("FindFiles", ["glob"]),
        ("ListFiles", ["list_directory"]),
        ("WebFetch", ["web_fetch"]),
        ("write_file", ["write_file"]),
    ],
)
def test_tool_names_and_aliases(name: str, tools: list[str]) -> None:
    [rule] = parse_rules([name])
    everything = [
        "run_shell_command",
        "read_file",
        "grep_search",
        "glob",
        "list_directory",
        "edit",
        "write_file",
        "web_fetch",
    ]
    assert [t for t in everything if rule.names(t)] == tools


def test_mcp_rules_match_by_server_prefix() -> None:
    [server] = parse_rules(["mcp__github"])
    assert server.names("mcp__github__create_issue")
    assert not server.names("mcp__githubx__create_issue")
    [one] = parse_rules(["mcp__github__create_issue"])
    assert one.names("mcp__github__create_issue")
    assert not one.names("mcp__github__delete_repo")


# --- deny and ask -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "rm -rf x",
        "echo $(rm -rf x)",
        "echo `rm -rf x`",
        "cat <(rm -rf x)",
        "(rm -rf x)",
        "ls | rm -rf x",
        "ls && rm -rf x",
        "f() { rm -rf x; }",
        "sudo rm -rf x",
        "xargs rm -rf < list",
        "find . -name '*.o' -exec rm {} +",
        "env FOO=1 rm x",
        "bash -c 'rm -rf x'",
        "sh -ec 'cd /; rm -rf x'",
        "eval 'rm -rf x'",
        'eval "$CMD"',
        "/bin/rm -rf x",
        "'r'm -rf x",
        "$X -rf x",
        'echo "$(rm -rf x)"',
        "ls; ls (",  # cannot be parsed: refused while shell deny rules exist
    ],
)
def test_a_deny_rule_sees_every_command_anywhere_in_every_mode(command: str) -> None:
    perms = policy(allow=("Bash",), deny=("Bash(rm *)",))
    for mode in ("default", "auto-edit", "yolo"):
        decision = decide(mode, "execute", shell(command), perms)  # type: ignore[arg-type]
        assert isinstance(decision, Deny), (mode, command)


def test_a_deny_rule_spares_what_it_does_not_name() -> None:
    perms = policy(deny=("Bash(rm *)",))
    for command in ("ls -la", "echo rm -rf x", "git rm --cached x", "grep rm notes"):
        assert isinstance(decide("yolo", "execute", shell(command), perms), Allow), command


def test_an_unparseable_command_says_why() -> None:
    decision = decide("yolo", "execute", shell("ls; ls ("), policy(deny=("Bash(rm *)",)))
    assert isinstance(decision, Deny)
    assert "could not be parsed" in decision.reason
    assert isinstance(decide("yolo", "execute", shell("ls; ls ("), policy()), Allow)


def test_a_star_less_deny_rule_covers_any_arguments() -> None:
    perms = policy(deny=("Bash(git push)",))
    assert isinstance(decide("yolo", "execute", shell("git push --force origin"), perms), Deny)


def test_deny_beats_ask_beats_allow() -> None:
    perms = policy(allow=("Bash(git *)",), ask=("Bash(git push *)",), deny=("Bash(git push -f *)",))
    assert isinstance(decide("default", "execute", shell("git status"), perms), Allow)
    assert isinstance(decide("yolo", "execute", shell("git push origin"), perms), Ask)
    assert isinstance(decide("yolo", "execute", shell("git push -f origin"), perms), Deny)


def test_an_ask_rule_asks_even_for_read_only_tools_and_in_yolo(tmp_path: Path) -> None:
    perms = policy(tmp_path, ask=("Read(secrets/**)",), allow=("Read",))
    decision = decide("yolo", "read", tool("read_file", file_path="secrets/key"), perms)
    assert isinstance(decision, Ask)
    assert decision.source == "rule"
    assert isinstance(decide("yolo", "read", tool("read_file", file_path="a.txt"), perms), Allow)


async def test_headless_ask_rule_denial_tells_the_model_why() -> None:
    decision = decide("yolo", "execute", shell("git push"), policy(ask=("Bash(git push *)",)))
    assert isinstance(decision, Ask)
    request = ApprovalRequest(
        call=shell("git push"), kind="execute", reason=decision.reason, source=decision.source
    )
    answer = await HeadlessApprover("yolo")(request)
    assert not answer.approved
    assert "Bash(git push *)" in answer.message
    assert "--yolo" not in answer.message  # yolo would not help: ask rules hold in every mode


# --- deny rules on paths reach the shell ---------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "sub").mkdir(parents=True)
    (root / "secrets").mkdir()
    (root / ".env").write_text("KEY=secret\n")
    (root / "notes.txt").write_text("notes\n")
    (root / "link").symlink_to(root / ".env")
    return root


@pytest.mark.parametrize(
    ("tool_name", "arguments", "kind"),
    [
        ("read_file", {"file_path": ".env"}, "read"),
        ("read_file", {"file_path": "sub/../.env"}, "read"),
        ("read_file", {"file_path": "link"}, "read"),  # a symlink to the denied file
        ("read_file", {"file_path": "./.ENV"}, "read"),  # case-insensitive file systems
        ("grep_search", {"pattern": "KEY", "path": ".env"}, "read"),
        ("run_shell_command", {"command": "cat .env"}, "execute"),
        ("run_shell_command", {"command": "cat ./sub/../.env"}, "execute"),
        ("run_shell_command", {"command": "cat link"}, "execute"),
        ("run_shell_command", {"command": "cat < .env"}, "execute"),
        ("run_shell_command", {"command": "head -n 1 -- .env"}, "execute"),
        ("run_shell_command", {"command": "grep -f .env notes.txt"}, "execute"),
        ("run_shell_command", {"command": "cat .e*"}, "execute"),
        ("run_shell_command", {"command": "cat $F"}, "execute"),  # cannot be checked
        ("run_shell_command", {"command": "cd sub && cat ../.env"}, "execute"),
        ("run_shell_command", {"command": "cat ../.env", "directory": "sub"}, "execute"),
        ("run_shell_command", {"command": "sudo cat .env"}, "execute"),
        ("run_shell_command", {"command": "bash -c 'cat .env'"}, "execute"),
        ("run_shell_command", {"command": "python .env"}, "execute"),
        ("run_shell_command", {"command": "cp .env notes.txt"}, "execute"),
        ("run_shell_command", {"command": "echo $(cat .env)"}, "execute"),
    ],
)
def test_a_read_deny_rule_blocks_tools_and_file_commands(
    project: Path, tool_name: str, arguments: dict[str, object], kind: str
) -> None:
    perms = policy(project, allow=("Bash",), deny=("Read(.env)",))
    decision = decide("yolo", kind, tool(tool_name, **arguments), perms)  # type: ignore[arg-type]
    assert isinstance(decision, Deny), arguments
    assert "Read(.env)" in decision.reason


@pytest.mark.parametrize(
    "command", ["cat notes.txt", "ls -la", "grep -r KEY sub", "echo .env", "cat *.txt"]
)
def test_a_read_deny_rule_spares_other_files(project: Path, command: str) -> None:
    perms = policy(project, deny=("Read(.env)",))
    assert isinstance(decide("yolo", "execute", shell(command), perms), Allow)


@pytest.mark.parametrize(
    ("tool_name", "arguments"),
    [
        ("write_file", {"file_path": "secrets/key", "content": "x"}),
        ("edit", {"file_path": "secrets/a/b", "old_string": "", "new_string": "x"}),
        ("run_shell_command", {"command": "echo x > secrets/key"}),
        ("run_shell_command", {"command": "echo x | tee secrets/key"}),
        ("run_shell_command", {"command": "cp notes.txt secrets/"}),
        ("run_shell_command", {"command": "rm -r secrets"}),
        ("run_shell_command", {"command": "touch secrets/new"}),
    ],
)
def test_an_edit_deny_rule_blocks_writes_and_redirections(
    project: Path, tool_name: str, arguments: dict[str, object]
) -> None:
    perms = policy(project, deny=("Edit(secrets/**)",))
    kind = "execute" if tool_name == "run_shell_command" else "edit"
    assert isinstance(decide("yolo", kind, tool(tool_name, **arguments), perms), Deny)  # type: ignore[arg-type]


def test_path_specifier_forms(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (project / ".git").mkdir()  # the project root is the git root
    workspace = Workspace(root=project / "sub", extra_roots=(tmp_path,))

    def denied(spec: str, path: str) -> bool:
        perms = Permissions(deny=parse_rules([f"Read({spec})"]), workspace=workspace)
        return isinstance(decide("yolo", "read", tool("read_file", file_path=path), perms), Deny)

    assert denied(f"/{project}/notes.txt", str(project / "notes.txt"))  # //absolute
    assert denied("~/proj/notes.txt", str(project / "notes.txt"))  # home
    assert denied("/notes.txt", str(project / "notes.txt"))  # project root
    assert not denied("./notes.txt", str(project / "notes.txt"))  # working directory: sub/
    assert denied("notes.txt", "notes.txt")
    assert denied("/*.txt", str(project / "notes.txt"))  # one segment
    assert not denied("/*.txt", str(project / "secrets" / "notes.txt"))
    assert denied("/**/*.txt", str(project / "secrets" / "a" / "notes.txt"))  # any depth
    assert denied("/*", str(project / ".env"))  # dotfiles match
    assert denied("/secrets", str(project / "secrets" / "deep" / "key"))  # a folder: below too


def test_read_only_calls_meet_deny_rules_in_the_runner(project: Path) -> None:
    import asyncio

    runner = ToolRunner(
        registry=builtin_registry(),
        ctx=ToolContext(workspace=Workspace(root=project)),
        approver=HeadlessApprover("yolo"),
        mode="yolo",
        permissions=policy(deny=("Read(.env)",)),
    )

    async def go() -> list[object]:
        calls = (tool("read_file", file_path="notes.txt"), tool("read_file", file_path=".env"))
        return [e async for e in runner.run(calls)]

    events = asyncio.run(go())
    results = [e for e in events if isinstance(e, ToolResult)]
    assert "notes" in results[0].output
    assert results[1].is_error and "KEY=secret" not in results[1].output
    assert any(isinstance(e, ApprovalRequested) and e.decision == "denied" for e in events)


# --- the "always" answer ---------------------------------------------------------------------


class Always:
    def __init__(self) -> None:
        self.requests: list[ApprovalRequest] = []

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        self.requests.append(request)
        return ApprovalAnswer(approved=True, remember="session")


async def test_always_for_a_compound_command_does_not_allow_rm_of_anything(tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    (tmp_path / "keep").mkdir()
    approver = Always()
    runner = ToolRunner(
        registry=builtin_registry(),
        ctx=ToolContext(workspace=Workspace(root=tmp_path), scratch_dir=tmp_path / ".scratch"),
        approver=approver,
    )
    first = shell("rm -rf build && ls -la")
    [_ async for _ in runner.run((first,))]
    assert approver.requests[0].suggested_rule == "Bash(rm -rf build && ls -la)"
    [_ async for _ in runner.run((shell("rm -rf keep"),))]
    assert len(approver.requests) == 2  # asked again: the saved rule was not `rm`
    [_ async for _ in runner.run((first,))]
    assert len(approver.requests) == 2  # the same command is not asked again


def test_tree_sitter_is_not_loaded_for_help() -> None:
    probe = (
        "import contextlib, io, sys\nfrom qwen_code.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main(['--help'])\n"
        "print('LOADED' if 'tree_sitter' in sys.modules else 'LAZY')"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["LAZY"]


def test_the_parser_sees_simple_commands_inside_everything() -> None:
    parsed = parse_shell("a | b && $(c) ; (d) & e <(f) > /dev/null")
    names = {c.words[0].text for c in parsed.commands}
    assert parsed.ok and names == {"a", "b", "$(c)", "c", "d", "e", "f"}
    assert not parse_shell("echo 'unterminated").ok
