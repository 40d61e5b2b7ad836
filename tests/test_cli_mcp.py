"""`qwen-code mcp add|remove|list|get`: real settings files in temporary folders, real
MCP servers (a tiny `MCPServer` script run with this Python) for `list` and `get`."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qwen_code.cli import main
from qwen_code.config import load_settings
from qwen_code.environment import Environment
from qwen_code.settings_files import qwen_home
from qwen_code.trust import save_decision
from tests.helpers import run_qwen_code, write, write_json

SERVER = """\
from mcp.server.mcpserver import MCPServer

server = MCPServer("t")


@server.tool()
def shout(text: str) -> str:
    \"\"\"The text in capitals.\"\"\"
    return text.upper()


server.run()
"""


def qc(cwd: Path, *args: str) -> tuple[int, str, str]:
    """`qwen-code ARGS` in-process in `cwd`: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    env = Environment(
        stdin=io.StringIO(),
        stdout=out,
        stderr=err,
        stdin_isatty=False,
        stdout_isatty=False,
        stderr_isatty=False,
        cwd=cwd,
        home=qwen_home(),
    )
    code = main(list(args), env=env)
    return code, out.getvalue(), err.getvalue()


def user_servers() -> dict:
    return json.loads((qwen_home() / "settings.json").read_text())["mcpServers"]


def project_servers(project: Path) -> dict:
    return json.loads((project / ".qwen" / "settings.json").read_text())["mcpServers"]


def trust(project: Path) -> None:
    save_decision(project, "TRUST_FOLDER", qwen_home(), os.environ)


@pytest.fixture
def server_script(tmp_path: Path) -> Path:
    return write(tmp_path / "tiny_server.py", SERVER)


# --- add ---------------------------------------------------------------------------------


def test_add_stdio_to_user_settings_keeps_the_rest(project: Path) -> None:
    write_json(qwen_home() / "settings.json", {"model": {"name": "qwen3-coder-plus"}})
    code, out, err = qc(
        project,
        "mcp", "add", "pythonTools",
        "-e", "DATABASE_URL=$DB", "-e", "API_KEY=${KEY}",
        "--timeout", "15000", "--trust", "--description", "Local tools",
        "--include-tools", "a,b", "--exclude-tools", "c",
        "python", "-m", "my_mcp_server", "--port", "8080",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out.startswith('Added stdio MCP server "pythonTools" to user settings (')
    settings = json.loads((qwen_home() / "settings.json").read_text())
    assert settings["model"] == {"name": "qwen3-coder-plus"}
    assert settings["mcpServers"]["pythonTools"] == {
        "command": "python",
        "args": ["-m", "my_mcp_server", "--port", "8080"],
        "env": {"DATABASE_URL": "$DB", "API_KEY": "${KEY}"},
        "timeout": 15000,
        "trust": True,
        "description": "Local tools",
        "includeTools": ["a", "b"],
        "excludeTools": ["c"],
    }
    assert not (project / ".qwen").exists()


def test_add_double_dash_gives_dash_args_to_the_server_command(project: Path) -> None:
    code, _, err = qc(
        project, "mcp", "add", "-e", "K=v", "srv", "--", "npx", "-y", "-s", "pkg", "-r", "-e", "x"
    )
    assert (code, err) == (0, "")
    assert user_servers()["srv"] == {
        "command": "npx",
        "args": ["-y", "-s", "pkg", "-r", "-e", "x"],
        "env": {"K": "v"},
    }


def test_add_to_project_scope_and_replace(project: Path) -> None:
    sub = project / "pkg"
    sub.mkdir()
    code, out, _ = qc(sub, "mcp", "add", "-s", "project", "tools", "node", "server.js")
    assert code == 0
    assert "project settings" in out and "not trusted" in out
    assert project_servers(project) == {"tools": {"command": "node", "args": ["server.js"]}}
    assert not (qwen_home() / "settings.json").exists()
    code, out, _ = qc(project, "mcp", "add", "--scope", "project", "tools", "deno", "run", "s.ts")
    assert code == 0 and out.startswith('Updated stdio MCP server "tools" in project settings')
    assert project_servers(project) == {"tools": {"command": "deno", "args": ["run", "s.ts"]}}


def test_add_http_and_sse_with_headers(project: Path) -> None:
    code, out, _ = qc(
        project, "mcp", "add", "--transport", "http", "remote", "http://localhost:3000/mcp",
        "--header", "Authorization: Bearer tok:en", "-H", "X-Api-Key: abc", "--timeout", "5000",
    )  # fmt: skip
    assert code == 0 and "Added http MCP server" in out
    code, _, _ = qc(project, "mcp", "add", "-t", "sse", "legacy", "http://localhost:8080/sse")
    assert code == 0
    code, out, _ = qc(project, "mcp", "add", "auto", "https://example.com/mcp")
    assert code == 0 and "Added http MCP server" in out  # a URL without -t: http, as Qwen Code
    servers = user_servers()
    assert servers["remote"] == {
        "httpUrl": "http://localhost:3000/mcp",
        "headers": {"Authorization": "Bearer tok:en", "X-Api-Key": "abc"},
        "timeout": 5000,
    }
    assert servers["legacy"] == {"url": "http://localhost:8080/sse"}
    assert servers["auto"] == {"httpUrl": "https://example.com/mcp"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-t", "http", "r", "not-a-url"], "needs an http(s):// URL"),
        (["-t", "sse", "r", "http://h/sse", "extra"], "no arguments"),
        (["-H", "X: y", "s", "cmd"], "-H/--header applies to http and sse"),
        (["-e", "NOEQUALS", "s", "cmd"], "-e/--env takes KEY=VALUE"),
        (["-t", "http", "-H", "no colon", "r", "http://h/mcp"], "'Name: value'"),
        (["-s", "local", "s", "cmd"], "--scope: 'local' is not a scope"),
        (["-t", "ws", "s", "cmd"], "--transport: 'ws' is not a transport"),
        (["--timeout", "0", "s", "cmd"], "must be positive"),
    ],
)
def test_add_rejects_bad_input_in_one_line(project: Path, args: list[str], message: str) -> None:
    code, out, err = qc(project, "mcp", "add", *args)
    assert code == 1 and out == ""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (qwen_home() / "settings.json").exists()


def test_add_reports_a_broken_settings_file(project: Path) -> None:
    write(qwen_home() / "settings.json", "{not json")
    code, _, err = qc(project, "mcp", "add", "s", "cmd")
    assert code == 1 and "is not valid JSON" in err and "Traceback" not in err
    assert (qwen_home() / "settings.json").read_text() == "{not json"


# --- remove ------------------------------------------------------------------------------


def test_remove_from_each_scope(project: Path) -> None:
    write_json(
        qwen_home() / "settings.json",
        {"mcpServers": {"a": {"command": "x"}, "b": {"command": "y"}}},
    )
    write_json(project / ".qwen" / "settings.json", {"mcpServers": {"a": {"command": "z"}}})
    code, out, _ = qc(project, "mcp", "remove", "a")  # user first
    assert code == 0 and 'Removed MCP server "a" from user settings' in out
    assert "still configured in project settings" in out
    assert user_servers() == {"b": {"command": "y"}}
    assert project_servers(project) == {"a": {"command": "z"}}
    code, out, _ = qc(project, "mcp", "remove", "a")  # then the project
    assert code == 0 and "from project settings" in out
    assert project_servers(project) == {}
    code, _, err = qc(project, "mcp", "remove", "-s", "project", "b")
    assert code == 1 and err == 'qwen-code: No MCP server "b" in project settings.\n'
    assert user_servers() == {"b": {"command": "y"}}


def test_remove_unknown_name(project: Path) -> None:
    code, out, err = qc(project, "mcp", "remove", "nope")
    assert (code, out) == (1, "")
    assert err == 'qwen-code: No MCP server "nope" in user or project settings.\n'
    write_json(project / ".mcp.json", {"mcpServers": {"claude": {"command": "x"}}})
    code, _, err = qc(project, "mcp", "remove", "claude")
    assert code == 1 and ".mcp.json: edit that file" in err


# --- list and get ------------------------------------------------------------------------


def test_list_with_no_servers(project: Path) -> None:
    assert qc(project, "mcp", "list") == (0, "No MCP servers configured.\n", "")


def test_list_connects_reports_failures_and_timeouts(project: Path, server_script: Path) -> None:
    servers = {
        "tiny": {"command": sys.executable, "args": [str(server_script)]},
        "missing": {"command": str(project / "no-such-program")},
        "silent": {
            "command": sys.executable,
            "args": ["-c", "import time; time.sleep(60)"],
            "discoveryTimeoutMs": 1000,
        },
    }
    write_json(qwen_home() / "settings.json", {"mcpServers": servers})
    code, out, _ = qc(project, "mcp", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[:2] == ["Configured MCP servers:", ""]
    tiny, missing, silent = lines[2:]
    assert tiny.startswith("tiny: ") and str(server_script) in tiny
    assert tiny.endswith("(stdio, user) - ✓ Connected, 1 tool")
    assert missing.startswith("missing: ") and " - ✗ Failed: " in missing
    assert silent.endswith(" - ✗ Timed out")


def test_list_and_get_do_not_start_project_servers_of_an_untrusted_folder(
    project: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "it-ran"
    run_it = {"command": sys.executable, "args": ["-c", f"open({str(marker)!r}, 'w')"]}
    write_json(project / ".qwen" / "settings.json", {"mcpServers": {"repo": run_it}})
    write_json(project / ".mcp.json", {"mcpServers": {"claude": run_it}})
    code, out, _ = qc(project, "mcp", "list")
    assert code == 0
    assert "repo: " in out and "(stdio, project) - not started (folder not trusted)" in out
    assert "claude: " in out and "(stdio, .mcp.json) - not started (folder not trusted)" in out
    code, out, _ = qc(project, "mcp", "get", "repo")
    assert code == 0 and "Status: not started (folder not trusted)" in out
    time.sleep(0.5)
    assert not marker.exists()


def test_list_and_get_in_a_trusted_folder(project: Path, server_script: Path) -> None:
    trust(project)
    tiny = {"command": sys.executable, "args": [str(server_script)]}
    write_json(
        project / ".qwen" / "settings.json",
        {"mcpServers": {"repo": {**tiny, "env": {"TOKEN": "s3cret", "REF": "$HOME"}}}},
    )
    write_json(project / ".mcp.json", {"mcpServers": {"claude": {"type": "stdio", **tiny}}})
    write_json(
        qwen_home() / "settings.json",
        {
            "mcpServers": {
                "off": {"command": "x"},
                "web": {"httpUrl": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "B"}},
            },
            "mcp": {"excluded": ["off"]},
        },
    )
    code, out, _ = qc(project, "mcp", "list")
    assert code == 0
    assert "repo: " in out and "(stdio, project) - not started (not approved yet" in out
    assert "(stdio, .mcp.json) - not started (not approved yet" in out
    from qwen_code.mcp.config import configured_servers
    from qwen_code.session.mcp_setup import ApprovedServers

    settings = load_settings(cwd=project, home=qwen_home())
    for entry in configured_servers(settings, cwd=project):
        if entry.from_repository:
            ApprovedServers(qwen_home()).remember(project, entry)
    code, out, _ = qc(project, "mcp", "list")
    assert code == 0
    assert "repo: " in out and "(stdio, project) - ✓ Connected, 1 tool" in out
    assert "claude: " in out and "(stdio, .mcp.json) - ✓ Connected, 1 tool" in out
    assert "off: x (stdio, user) - disabled (mcp.excluded)" in out
    assert "web: http://127.0.0.1:9/mcp (http, user) - ✗ Failed: " in out
    code, out, _ = qc(project, "mcp", "get", "repo")
    assert code == 0
    assert "  Scope: project (" in out and "  Transport: stdio" in out
    assert "TOKEN=***" in out and "s3cret" not in out and "REF=$HOME" in out
    assert "  Status: ✓ Connected, 1 tool" in out and "    shout" in out
    assert 'qwen-code mcp remove -s project "repo"' in out
    code, out, _ = qc(project, "mcp", "get", "web")
    assert "Authorization: ***" in out and "Status: ✗ Failed" in out


def test_get_unknown_name(project: Path) -> None:
    code, out, err = qc(project, "mcp", "get", "nope")
    assert (code, out) == (1, "")
    assert err == 'qwen-code: No MCP server named "nope" (see qwen-code mcp list).\n'


def test_list_probes_servers_concurrently(project: Path) -> None:
    slow = {"command": sys.executable, "args": ["-c", "import time; time.sleep(60)"]}
    servers = {f"s{i}": {**slow, "discoveryTimeoutMs": 1500} for i in range(4)}
    write_json(qwen_home() / "settings.json", {"mcpServers": servers})
    started = time.monotonic()
    code, out, _ = qc(project, "mcp", "list")
    assert code == 0 and out.count("✗ Timed out") == 4
    assert time.monotonic() - started < 4 * 1.5  # one after another would take 6 s or more


# --- as a program ------------------------------------------------------------------------


def test_subprocess_add_list_remove_and_a_light_help(project: Path, server_script: Path) -> None:
    result = run_qwen_code(project, "mcp", "add", "tiny", "--", sys.executable, str(server_script))
    assert result.returncode == 0, result.stderr
    result = run_qwen_code(project, "mcp", "list")
    assert result.returncode == 0 and "✓ Connected, 1 tool" in result.stdout
    result = run_qwen_code(project, "mcp", "remove", "tiny")
    assert result.returncode == 0 and "Removed" in result.stdout
    result = run_qwen_code(project, "mcp", "remove", "tiny")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    result = run_qwen_code(project, "mcp", "--help")
    assert result.returncode == 0 and "add" in result.stdout and "list" in result.stdout
    light = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom qwen_code.cli import main\n"
            "code = main(['mcp', 'add', '--help'])\n"
            "heavy = [m for m in ('mcp', 'qwen_code.mcp', 'qwen_code.config')"
            " if m in sys.modules]\n"
            "print('HEAVY', heavy)\n",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "HEAVY []" in light.stdout, light.stdout + light.stderr
