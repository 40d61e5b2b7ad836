"""`!command` in the REPL: real shells, real process groups."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from qwen_code.ui.shell_mode import ShellRun, cap_text, run_user_shell, user_shell
from tests.helpers import alive


def collect(pids: list[int], started: asyncio.Event) -> Callable[[str], None]:
    def on_output(line: str) -> None:
        pids.append(int(line))
        started.set()

    return on_output


async def test_exit_code_and_output(root: Path) -> None:
    run = await run_user_shell("echo out; echo err >&2; exit 3", cwd=root)
    assert run.exit_code == 3
    assert run.output == "out\nerr\n"
    assert not run.truncated
    assert run.status == "exit 3"


async def test_runs_in_cwd_with_qwen_code_set(root: Path) -> None:
    run = await run_user_shell('pwd; echo "flag=$QWEN_CODE"', cwd=root)
    assert run.output.splitlines() == [str(root), "flag=1"]


async def test_lines_stream_in_order_as_they_arrive(root: Path) -> None:
    seen: list[tuple[str, float]] = []
    start = time.monotonic()
    command = "echo one; sleep 0.3; printf 'two\\r\\nthree'"
    run = await run_user_shell(
        command, cwd=root, on_output=lambda s: seen.append((s, time.monotonic()))
    )
    assert [line for line, _ in seen] == ["one", "two", "three"]
    assert seen[0][1] - start < 0.25  # the first line came before the command ended
    assert run.output == "one\ntwo\r\nthree"


async def test_stdin_is_closed(root: Path) -> None:
    start = time.monotonic()
    run = await run_user_shell('read x; echo "rc=$?"', cwd=root)
    assert run.output == "rc=1\n"
    assert time.monotonic() - start < 2


async def test_cancel_kills_the_whole_process_group(root: Path) -> None:
    pids: list[int] = []
    started = asyncio.Event()
    task = asyncio.create_task(
        run_user_shell("sleep 30 & echo $!; wait", cwd=root, on_output=collect(pids, started))
    )
    await asyncio.wait_for(started.wait(), 5)
    assert alive(pids[0])
    task.cancel()
    start = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - start < 3
    assert not alive(pids[0])


async def test_sigterm_resistant_commands_get_sigkill(root: Path) -> None:
    pids: list[int] = []
    command = "trap '' TERM; echo $$; while :; do sleep 0.05; done"
    started = asyncio.Event()
    task = asyncio.create_task(run_user_shell(command, cwd=root, on_output=collect(pids, started)))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not alive(pids[0])


async def test_timeout_kills_and_reports(root: Path) -> None:
    run = await run_user_shell("echo start; sleep 30", cwd=root, timeout_s=0.3)
    assert run.timed_out
    assert run.output == "start\n"
    assert run.status == "timed out, killed"


async def test_background_leftovers_do_not_block(root: Path) -> None:
    start = time.monotonic()
    run = await run_user_shell("sleep 30 & echo $!", cwd=root)
    pid = int(run.output)
    try:
        assert time.monotonic() - start < 3
        assert run.exit_code == 0
        assert run.left_running
    finally:
        os.kill(pid, 9)


async def test_output_errors_stop_the_command(root: Path) -> None:
    def explode(line: str) -> None:
        raise ValueError(line)

    with pytest.raises(ValueError, match="boom"):
        await run_user_shell("echo boom; sleep 30", cwd=root, on_output=explode)


async def test_output_is_capped_to_head_and_tail(root: Path) -> None:
    run = await run_user_shell("seq 1 100000", cwd=root)
    assert run.truncated
    assert run.output.startswith("1\n2\n3\n")
    assert run.output.endswith("99999\n100000\n")
    assert "characters truncated" in run.output
    assert len(run.output) < 210_000


async def test_falls_back_when_shell_is_unusable(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHELL", str(root / "no-such-shell"))
    assert user_shell() != str(root / "no-such-shell")
    run = await run_user_shell("echo ok", cwd=root)
    assert run.output == "ok\n"


def test_as_context_is_compact() -> None:
    run = ShellRun(command="ls", exit_code=0, output="\x1b[31ma.py\x1b[0m\nb.py\n", truncated=False)
    assert run.as_context() == "I ran `ls` in the shell (exit 0):\n```\na.py\nb.py\n```"
    empty = ShellRun(command="true", exit_code=0, output="", truncated=False)
    assert empty.as_context().endswith("```\n(no output)\n```")


def test_as_context_caps_output_and_handles_odd_commands() -> None:
    run = ShellRun(
        command="echo `date`\necho x", exit_code=-9, output="z" * 50_000, truncated=False
    )
    text = run.as_context(max_chars=1000)
    assert text.startswith("I ran this command in the shell (killed by SIGKILL):\n```sh\n")
    assert "characters truncated" in text
    assert len(text) < 1200


def test_cap_text_keeps_short_text() -> None:
    assert cap_text("short", 100) == ("short", False)


async def test_missing_cwd_raises_oserror(root: Path) -> None:
    with pytest.raises(OSError):
        await run_user_shell("echo hi", cwd=root / "missing")
