"""Small helpers shared by the tests (plain functions; shared fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pexpect
from prompt_toolkit import PromptSession
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from qwen_code.agent.approval import ApprovalAnswer, ApprovalRequest, HeadlessApprover
from qwen_code.agent.events import ToolCall
from qwen_code.config import Flags, load_settings, qwen_home, resolve_provider
from qwen_code.environment import Environment
from tests.fakeserver import FakeLLM, HTTPError, Turn, error_body
from tests.ordering import order_problem

if TYPE_CHECKING:
    from qwen_code.agent.approval import Approver
    from qwen_code.session.live import Session
    from qwen_code.ui.repl import Repl

# --- files and repositories ---------------------------------------------------------------


def write(path: Path, content: str) -> Path:
    """Write `content` (UTF-8) to `path`, creating its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def write_json(path: Path, data: Any) -> Path:
    """Write `data` as JSON to `path`, creating its folders (settings files and the like)."""
    return write(path, json.dumps(data))


def commands_dir(project: Path) -> Path:
    """Where a project keeps its custom slash commands."""
    return project / ".qwen" / "commands"


def git_init(root: Path) -> None:
    """Make `root` a git repository (git is a requirement of the project and of CI)."""
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)


def git(root: Path, *args: str) -> str:
    """Run git in `root`; its stdout. A failing command fails the test."""
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout


def make_repo(root: Path, files: Mapping[str, str] | None = None, *, commit: bool = False) -> Path:
    """A new git repository at `root` holding `files` (relative path: text); with `commit`,
    they are committed (as "init", by a throwaway author)."""
    root.mkdir()
    for name, content in (files or {}).items():
        write(root / name, content)
    git_init(root)
    if commit:
        git(root, "add", ".")
        git(root, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "init")
    return root


def fan_out(root: Path, files: int = 6, fan: int = 30) -> None:
    """QWEN.md imports f1.md; each fN.md imports f(N+1).md `fan` times."""
    for n in range(1, files + 1):
        body = "leaf" if n == files else "\n".join([f"See @f{n + 1}.md"] * fan)
        write(root / f"f{n}.md", f"File {n}.\n{body}\n")
    write(root / "QWEN.md", "Rules:\n@f1.md\n")


# --- processes ------------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (nobody reaps orphans in some containers) is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


async def gone(pid: int, within: float = 3.0) -> bool:
    """Wait up to `within` seconds for `pid` to end; True when it did."""
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def drain(fd: int, chunks: list[bytes]) -> None:
    """Read `fd` (a pty master) into `chunks` until it closes; run it in a thread."""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            return
        if not data:
            return
        chunks.append(data)


# --- the command line ---------------------------------------------------------------------


def run_qwen_code(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`python -m qwen_code ARGS` in `cwd`, output captured. stdin is `stdin` piped in, or
    empty (/dev/null). `timeout` only stops a hung run (a broken test), it is not a speed
    assertion."""
    return subprocess.run(
        [sys.executable, "-m", "qwen_code", *args],
        cwd=cwd,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        env=env if env is not None else os.environ.copy(),
        timeout=timeout,
    )


def run_cli(*args: str) -> tuple[int, str]:
    """The `serve`/`cost` commands in-process: (exit code, stdout)."""
    import typer

    from qwen_code import cli_serve

    app = typer.Typer()

    @app.callback()
    def _group() -> None:
        pass

    cli_serve.register(app)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = app(args=list(args), standalone_mode=False)
    return int(code or 0), out.getvalue()


CPR_REQUEST = "\x1b[6n"
"""A terminal's cursor-position request (prompt-toolkit asks before drawing its footer)."""


class PtyRepl:
    """A running `qwen-code ARGS` in `cwd`, in a real pseudo-terminal of 40 lines and
    `columns` (120) columns."""

    def __init__(
        self, cwd: Path, *args: str, wait: bool = True, timeout: float = 30, columns: int = 120
    ) -> None:
        env = dict(os.environ)
        env.update(TERM="xterm-256color", COLUMNS=str(columns), LINES="40")
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "qwen_code", *args],
            cwd=str(cwd),
            env=env,
            encoding="utf-8",
            dimensions=(40, columns),
            timeout=timeout,
        )
        if wait:
            self.prompt()

    def prompt(self) -> None:
        """Wait until the input prompt is showing (its footer names shift+tab)."""
        self.expect("(shift+tab)")

    def send(self, line: str) -> None:
        """Type `line` and Enter."""
        self.child.send(line + "\r")

    def expect(self, pattern: str) -> None:
        """Wait for `pattern`, answering the terminal's cursor-position requests meanwhile."""
        while self.child.expect_exact([pattern, CPR_REQUEST]) == 1:
            self.child.send("\x1b[20;1R")

    def close(self) -> None:
        """Leave with Ctrl+C (clears text left on the input line) then Ctrl+D, sent again if
        they arrived while a turn was still printing."""
        for _ in range(5):
            if not self.child.isalive():
                break
            self.child.sendcontrol("c")
            self.child.sendcontrol("d")
            self.child.expect_exact([pexpect.EOF, pexpect.TIMEOUT, CPR_REQUEST], timeout=3)
        self.child.close(force=True)


StartRepl = Callable[..., PtyRepl]
"""The `start_repl` fixture: `start_repl(*args, wait=True, columns=120)` starts a `PtyRepl`."""


# --- sessions and the REPL ----------------------------------------------------------------


async def session_for(cwd: Path, approver: Any = None, **flags: Any) -> Session:
    """A session in `cwd` with the settings found there and `flags` (as on the command
    line); it asks `approver`, by default the headless one of the approval mode."""
    from qwen_code.session.setup import open_session

    settings = load_settings(Flags(**flags), cwd=cwd)
    return await open_session(
        settings,
        resolve_provider(settings),
        cwd=cwd,
        home=qwen_home(),
        approver=approver or HeadlessApprover(settings.tools.approval_mode),
    )


@contextlib.asynccontextmanager
async def repl_in(
    cwd: Path,
    opener: Callable[[Approver], Awaitable[Session]] | None = None,
    **flags: Any,
) -> AsyncIterator[tuple[Repl, PipeInput]]:
    """A REPL on a new session in `cwd` (`session_for(cwd, approver, **flags)`, or
    `opener(approver)`), opened with the REPL's own approver as the front end does: it
    reads keys from a pipe (send the answers to approval questions with
    `pipe.send_text`) and prints to a recording console (`output`). The session is
    closed afterwards."""
    from qwen_code.ui.repl import Repl
    from qwen_code.ui.repl_io import ReplIO

    console = Console(
        record=True, file=io.StringIO(), width=1000, force_terminal=False, soft_wrap=True
    )
    with create_pipe_input() as pipe:
        terminal = ReplIO(console=console, input=pipe, output=DummyOutput())
        approver = terminal.approver(cwd=cwd, project_trusted=True)
        session = await (opener(approver) if opener else session_for(cwd, approver, **flags))
        try:
            prompt = PromptSession[str](input=pipe, output=DummyOutput())
            yield Repl(session, io=terminal, home=qwen_home(), prompt_session=prompt), pipe
        finally:
            await session.aclose()


def output(repl: Repl, *, clear: bool = True) -> str:
    """What the REPL printed: since the last `output` that cleared (by default), or
    everything so far with `clear=False` (which leaves the record as it is)."""
    return repl.console.export_text(clear=clear)


def recording(*, width: int = 80, terminal: bool = False) -> Console:
    """A console that records what is printed; `terminal` makes it a true-colour terminal
    (colour escapes in `export_text(styles=True)`, whatever $TERM says)."""
    return Console(
        record=True,
        width=width,
        file=io.StringIO(),
        force_terminal=terminal,
        color_system="truecolor" if terminal else None,
    )


# --- what the model was sent ----------------------------------------------------------------


def bodies(fake: FakeLLM) -> list[dict[str, Any]]:
    """The JSON bodies of the chat requests the scripted server got, in order."""
    found = []
    for request in fake.chat_requests:
        assert request.body is not None
        found.append(request.body)
    return found


def user_messages(fake: FakeLLM, index: int = -1) -> list[str]:
    """The user messages of chat request `index` (the last by default)."""
    body = fake.chat_requests[index].body
    assert body is not None
    return [m["content"] for m in body["messages"] if m["role"] == "user"]


def user_message(fake: FakeLLM, index: int = -1) -> str:
    """The last user message of chat request `index` (the last by default)."""
    return user_messages(fake, index)[-1]


def strict(reply: Turn) -> Callable[[dict[str, Any]], Turn | HTTPError]:
    """A turn played only if the request obeys the ordering rules (else 400, as vLLM)."""

    def respond(body: dict[str, Any]) -> Turn | HTTPError:
        problem = order_problem(body["messages"])
        return HTTPError(400, error_body(problem, 400)) if problem else reply

    return respond


# --- tool calls and approvals ---------------------------------------------------------------


def tool_call(name: str, /, call_id: str = "c1", **arguments: Any) -> ToolCall:
    """A parsed tool call, as the model would send it."""
    return ToolCall(id=call_id, name=name, arguments=dict(arguments))


class RecordingApprover:
    """An approver that answers as told and keeps the requests it was asked."""

    def __init__(self, answer: ApprovalAnswer) -> None:
        self.answer = answer
        self.requests: list[ApprovalRequest] = []

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        self.requests.append(request)
        return self.answer


class TTYStringIO(io.StringIO):
    """A text stream that says it is a terminal (for Environment and TTY checks)."""

    def isatty(self) -> bool:
        return True


def captured_env(cwd: Path, home: Path) -> Environment:
    """An Environment for `qwen_code.cli.main` in-process: captured streams, no terminal."""
    return Environment(
        stdin=io.StringIO(),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        stdin_isatty=False,
        stdout_isatty=False,
        stderr_isatty=False,
        cwd=cwd,
        home=home,
    )
