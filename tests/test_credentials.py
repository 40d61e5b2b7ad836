"""Provider credentials stay out of the commands qwen-code starts and out of tool output.

Attacks, each with real shells and real tools: the model runs `printenv OPENAI_API_KEY`
or `env`; it `cat`s (or `read_file`s) a workspace file that holds the key; the user's
`!cmd` or a custom command's `!{…}` prints it. The child must not see the key, and what
reaches the model must not contain it.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from qwen_code.agent.approval import HeadlessApprover
from qwen_code.agent.events import ToolCall, ToolResult
from qwen_code.agent.tool_runner import ToolRunner
from qwen_code.config import NO_KEY
from qwen_code.credentials import (
    PLACEHOLDER_KEY,
    Credentials,
    child_environment,
    is_credential_variable,
)
from qwen_code.custom_commands import expand_template, tool_runner_shell
from qwen_code.tools.base import ToolContext
from qwen_code.tools.registry import builtin_registry
from qwen_code.tools.shell import ShellTool, shutdown_background_jobs
from qwen_code.tools.workspace import Workspace
from qwen_code.ui.shell_mode import run_user_shell

OPENAI_KEY = "sk-test-abcdefgh12345678"
DASHSCOPE_KEY = "sk-dash-ijklmnop87654321"
ANTHROPIC_TOKEN = "anthropic-token-qrstuvwx"


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long credential values in the environment, and a copy of one under another name."""
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("DASHSCOPE_API_KEY", DASHSCOPE_KEY)
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", ANTHROPIC_TOKEN)


@pytest.fixture
async def tool_ctx(root: Path) -> AsyncIterator[ToolContext]:
    context = ToolContext(workspace=Workspace(root=root), scratch_dir=root.parent / "scratch")
    yield context
    await shutdown_background_jobs(context)


def runner_for(ctx: ToolContext) -> ToolRunner:
    return ToolRunner(
        registry=builtin_registry(), ctx=ctx, approver=HeadlessApprover("yolo"), mode="yolo"
    )


async def run_tool(runner: ToolRunner, name: str, **arguments: Any) -> ToolResult:
    results = [
        event
        async for event in runner.run((ToolCall(id="c1", name=name, arguments=arguments),))
        if isinstance(event, ToolResult)
    ]
    assert len(results) == 1
    return results[0]


def assert_no_key(text: str) -> None:
    for secret in (OPENAI_KEY, DASHSCOPE_KEY, ANTHROPIC_TOKEN):
        assert secret not in text


# --- the child environment ------------------------------------------------------------


def test_credential_variable_names() -> None:
    for name in (
        "OPENAI_API_KEY",
        "DASHSCOPE_API_KEY",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "OPENROUTER_API_KEY",
        "QWEN_API_KEY",
        "QWEN_CODE_API_KEY",
        "openai_api_key",
    ):
        assert is_credential_variable(name), name
    for name in ("OPENAI_BASE_URL", "OPENAI_MODEL", "STRIPE_API_KEY", "PATH", "QWEN_HOME"):
        assert not is_credential_variable(name), name


def test_child_environment_drops_credentials_and_copies_of_the_key() -> None:
    base = {
        "PATH": "/usr/bin",
        "OPENAI_API_KEY": OPENAI_KEY,
        "QWEN_CODE_API_KEY": "qwen-code-key-123456",
        "MY_KEY": "custom-key-abcdefgh",
        "KEY_COPY": "custom-key-abcdefgh",
        "SHORT": "abc",
        "OPENAI_BASE_URL": "http://127.0.0.1:1/v1",
    }
    creds = Credentials.collect(base, api_key="custom-key-abcdefgh", api_key_source="MY_KEY")
    env = child_environment(base, credentials=creds, extra={"QWEN_CODE": "1"})
    assert env == {
        "PATH": "/usr/bin",
        "SHORT": "abc",
        "OPENAI_BASE_URL": "http://127.0.0.1:1/v1",
        "QWEN_CODE": "1",
    }
    assert child_environment(base, keep_credentials=True) == base
    by_name_only = child_environment(base)
    assert "OPENAI_API_KEY" not in by_name_only
    assert "QWEN_CODE_API_KEY" not in by_name_only
    assert by_name_only["MY_KEY"] == "custom-key-abcdefgh"  # not known to be a key here


def test_redaction_labels_and_limits() -> None:
    creds = Credentials.collect(
        {"OPENAI_API_KEY": OPENAI_KEY, "QWEN_API_KEY": "x"},
        api_key="settings-key-1234567",
        api_key_source="security.auth.apiKey in settings.json",
    )
    text = f"a={OPENAI_KEY} b=settings-key-1234567 c=x {OPENAI_KEY[:-1]}"
    assert creds.redact(text) == (
        f"a=[redacted OPENAI_API_KEY] b=[redacted API key] c=x {OPENAI_KEY[:-1]}"
    )
    assert PLACEHOLDER_KEY == NO_KEY
    placeholder = Credentials.collect({}, api_key=NO_KEY, api_key_source="(no key set)")
    assert placeholder.redact("no-key here") == "no-key here"
    overlapping = Credentials(values={"abcdefgh": "SHORT", "abcdefgh-longer": "LONG"})
    assert overlapping.redact("abcdefgh-longer") == "[redacted LONG]"


# --- the shell tool -------------------------------------------------------------------


async def test_shell_tool_child_does_not_see_the_keys(tool_ctx: ToolContext) -> None:
    command = 'printenv OPENAI_API_KEY; echo "rc=$?"; echo "dash=$DASHSCOPE_API_KEY"; env'
    out = await ShellTool().run(ShellTool.Params(command=command), tool_ctx)
    assert "rc=1\ndash=\n" in out.content
    for name in ("OPENAI_API_KEY=", "DASHSCOPE_API_KEY=", "ANTHROPIC_AUTH_TOKEN="):
        assert name not in out.content
    assert "QWEN_CODE=1" in out.content
    assert_no_key(out.content)


async def test_key_printed_from_a_workspace_file_is_redacted(
    root: Path, tool_ctx: ToolContext
) -> None:
    (root / "leak.txt").write_text(f"token: {OPENAI_KEY}\nother: {DASHSCOPE_KEY}\n")
    runner = runner_for(tool_ctx)
    result = await run_tool(runner, "run_shell_command", command="cat leak.txt")
    assert "token: [redacted OPENAI_API_KEY]\nother: [redacted DASHSCOPE_API_KEY]" in result.output
    assert_no_key(result.output)
    read = await run_tool(runner, "read_file", file_path="leak.txt")
    assert "[redacted OPENAI_API_KEY]" in read.output
    assert_no_key(read.output + (read.display or ""))


async def test_opt_in_passes_the_keys_but_output_stays_redacted(
    root: Path, tool_ctx: ToolContext
) -> None:
    tool_ctx.credentials = Credentials.collect(pass_to_commands=True)
    (root / "digest.py").write_text(
        "import hashlib, os\n"
        "print(hashlib.sha256(os.environ['OPENAI_API_KEY'].encode()).hexdigest())\n"
    )
    runner = runner_for(tool_ctx)
    command = f"{sys.executable} digest.py; printenv OPENAI_API_KEY"
    result = await run_tool(runner, "run_shell_command", command=command)
    assert hashlib.sha256(OPENAI_KEY.encode()).hexdigest() in result.output
    assert "[redacted OPENAI_API_KEY]" in result.output
    assert_no_key(result.output)


# --- `!cmd` in the REPL and `!{…}` in custom commands ------------------------------------


async def test_repl_shell_command_gets_no_keys_and_context_is_redacted(root: Path) -> None:
    (root / "leak.txt").write_text(f"key={DASHSCOPE_KEY}\n")
    run = await run_user_shell(
        'echo "openai=$OPENAI_API_KEY"; cat leak.txt; echo "qwen=$QWEN_CODE"', cwd=root
    )
    assert run.output == "openai=\nkey=[redacted DASHSCOPE_API_KEY]\nqwen=1\n"
    assert_no_key(run.as_context())


async def test_repl_shell_command_uses_the_session_credentials(root: Path) -> None:
    creds = Credentials.collect(
        api_key="from-settings-9876543", api_key_source="security.auth.apiKey in settings.json"
    )
    run = await run_user_shell("echo from-settings-9876543", cwd=root, credentials=creds)
    assert run.output == "[redacted API key]\n"


async def test_custom_command_shell_injection_is_redacted(
    root: Path, tool_ctx: ToolContext
) -> None:
    (root / "leak.txt").write_text(f"{ANTHROPIC_TOKEN}\n")
    prompt = "env: !{printenv OPENAI_API_KEY; echo rc=$?}\nfile: !{cat leak.txt}"
    expansion = await expand_template(
        prompt, "", workspace=tool_ctx.workspace, shell=tool_runner_shell(runner_for(tool_ctx))
    )
    assert expansion.text == "env: rc=1\nfile: [redacted ANTHROPIC_AUTH_TOKEN]"
    assert_no_key(expansion.text)
