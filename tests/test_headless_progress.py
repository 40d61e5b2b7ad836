"""Headless `text` output while the run works, and when it is cut short.

stdout holds the final answer only; an interrupted run (Ctrl-C, SIGTERM, --max-wall-time)
prints the answer as far as it went. When stderr is a terminal, a transient status line
there says the run is working (seconds, tokens, the tool being run) and is erased before
the answer prints; when it is not (a pipe, a CI log), stderr gets nothing extra.

The subprocess tests give the child a real pseudo-terminal as stderr (stdout stays a
pipe) of a set size, and wait for what the terminal shows, never for a time.
"""

from __future__ import annotations

import fcntl
import io
import os
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from qwen_code.config import Flags, load_settings, qwen_home, resolve_provider
from qwen_code.errors import ExitCode
from qwen_code.ui.headless import run_headless
from qwen_code.ui.headless_status import ERASE, StatusLine, fit
from qwen_code.ui.run_limits import RunLimits
from tests.fakeserver import FakeLLM, Turn, call, text, tool_turn
from tests.helpers import TTYStringIO, drain, run_qwen_code

FIRST_PART = "The first part of the answer, "
"""What the stalled reply below sends before it stalls (one chunk of six words)."""
SLOW_ANSWER = FIRST_PART + "and the rest, which never comes."
ANSWER = "calc.py holds one constant."


def stalled_reply() -> Turn:
    """A reply that streams its first six words and then nothing for two minutes."""
    return Turn(text=SLOW_ANSWER, chunk_words=6, stall_after=2, stall_s=120)


@dataclass
class PtyStderr:
    """`qwen-code ARGS` with stderr on a pseudo-terminal of 30x100 and stdout on a pipe."""

    proc: subprocess.Popen[str]
    chunks: list[bytes] = field(default_factory=list)

    @property
    def screen(self) -> str:
        return b"".join(self.chunks).decode("utf-8", errors="replace")

    def wait_for(self, needle: str, timeout: float = 60) -> None:
        """Until the terminal got `needle` (`timeout` only stops a broken test)."""
        deadline = time.monotonic() + timeout
        while needle not in self.screen:
            assert self.proc.poll() is None, self.screen
            assert time.monotonic() < deadline, self.screen
            time.sleep(0.02)


@pytest.fixture
def pty_run(tmp_path: Path) -> Iterator[PtyStderr]:
    workspace = tmp_path / "work"
    workspace.mkdir()
    (workspace / "calc.py").write_text("A = 1\n", encoding="utf-8")
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "qwen_code", "-p", "what is in calc.py?"],
        cwd=workspace,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
        env={**os.environ, "TERM": "xterm-256color", "PYTHONIOENCODING": "utf-8"},
    )
    os.close(slave)
    running = PtyStderr(proc)
    reader = threading.Thread(target=drain, args=(master, running.chunks), daemon=True)
    reader.start()
    try:
        yield running
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
        reader.join(timeout=5)
        os.close(master)


# --- an interrupted run prints the answer so far ------------------------------------------


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, ExitCode.INTERRUPTED), (signal.SIGTERM, 143)]
)
def test_an_interrupt_prints_the_answer_so_far(
    fake_llm: FakeLLM, pty_run: PtyStderr, sig: signal.Signals, code: int
) -> None:
    fake_llm.script(stalled_reply())
    pty_run.wait_for("tokens")  # the status line counts what streamed: the text is in
    pty_run.proc.send_signal(sig)
    out, _ = pty_run.proc.communicate(timeout=60)
    assert pty_run.proc.returncode == code
    assert out == FIRST_PART.rstrip() + "\n"
    pty_run.wait_for("qwen-code: interrupted")
    assert "Traceback" not in pty_run.screen


async def test_the_wall_time_limit_prints_the_answer_so_far(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(stalled_reply())
    settings = load_settings(Flags(), cwd=tmp_path)
    out, err = io.StringIO(), io.StringIO()
    code = await run_headless(
        settings,
        resolve_provider(settings),
        "go",
        output_format="text",
        cwd=tmp_path,
        out=out,
        err=err,
        home=qwen_home(),
        limits=RunLimits(max_wall_time_s=3),  # the first chunk comes at once, then silence
    )
    assert code == ExitCode.BUDGET
    assert out.getvalue() == FIRST_PART.rstrip() + "\n"
    assert "--max-wall-time" in err.getvalue()


async def test_a_structured_run_that_is_cut_short_prints_nothing(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(stalled_reply())
    settings = load_settings(Flags(), cwd=tmp_path)
    out = io.StringIO()
    code = await run_headless(
        settings,
        resolve_provider(settings),
        "go",
        output_format="text",
        cwd=tmp_path,
        out=out,
        err=io.StringIO(),
        home=qwen_home(),
        limits=RunLimits(max_wall_time_s=2, json_schema={"type": "object"}),
    )
    assert code == ExitCode.BUDGET
    assert out.getvalue() == ""  # stdout is the object or nothing


# --- the status line on a terminal stderr -------------------------------------------------


def test_the_status_line_shows_on_the_terminal_and_stdout_has_only_the_answer(
    fake_llm: FakeLLM, pty_run: PtyStderr
) -> None:
    fake_llm.script(
        tool_turn(call("read_file", file_path="calc.py"), text="Reading it."), text(ANSWER)
    )
    out, _ = pty_run.proc.communicate(timeout=120)
    assert pty_run.proc.returncode == 0
    assert out == ANSWER + "\n"
    pty_run.proc.wait()
    deadline = time.monotonic() + 10
    while not pty_run.screen.rstrip("\r\n").endswith(ERASE):  # the reader may lag behind
        assert time.monotonic() < deadline, repr(pty_run.screen[-300:])
        time.sleep(0.02)
    screen = pty_run.screen
    assert "Working…" in screen
    assert "read_file calc.py · " in screen  # the status names the tool while it runs
    assert "● read_file calc.py\r\n" in screen  # and the call stays in the log
    assert " tokens" in screen and "↓" in screen
    assert ANSWER not in screen  # the answer went to stdout only


def test_a_piped_stderr_gets_no_status(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(tool_turn(call("read_file", file_path="calc.py")), text(ANSWER))
    (tmp_path / "calc.py").write_text("A = 1\n", encoding="utf-8")
    result = run_qwen_code(tmp_path, "-p", "what is in calc.py?")
    assert (result.returncode, result.stdout, result.stderr) == (0, ANSWER + "\n", "")


def test_the_status_line_is_cut_to_the_terminal_width() -> None:
    assert fit("abcdef", 4) == "abcd"
    assert fit("表表表", 4) == "表表"  # wide characters take two cells
    assert fit("short", 80) == "short"


async def test_the_status_line_is_erased_before_other_lines() -> None:
    err = TTYStringIO()
    status = StatusLine(err, started=time.monotonic())
    status.start()
    assert "Working…" in err.getvalue()
    status.clear()
    err.write("qwen-code: a note\n")
    status.stop()
    assert err.getvalue().endswith(f"{ERASE}qwen-code: a note\n")
