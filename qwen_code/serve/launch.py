"""Running an engine: its own process group, logs to a file (summarised on the terminal),
readiness by probing what the engine serves (`/health`, `/v1/models`), a clean stop of the
whole group on Ctrl+C, and pid files for `--detach`, `serve stop` and `serve status`
(serving.md §7).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwen_code.llm.server_cards import ServerCard, remove_card, write_card
from qwen_code.processes import stop_group
from qwen_code.serve.catalog import ServeError, user_dir
from qwen_code.serve.display import Display, LogFollower, log_tail
from qwen_code.serve.engines import (
    LLAMA_TEMPLATE_NOTE,
    EngineCommand,
    NodeCommand,
    install_error,
    missing_program,
    port_of,
)
from qwen_code.serve.gguf_file import TOOLS_IN_TEMPLATE
from qwen_code.serve.records import write_record

READY_TIMEOUT_S = 2400.0
"""Big models take minutes to load from fast disks, far longer while downloading."""
STOP_GRACE_S = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchOptions:
    run_dir: Path
    """Pid files of detached engines."""
    log_dir: Path
    ready_timeout_s: float = READY_TIMEOUT_S
    poll_s: float = 0.5
    stop_grace_s: float = STOP_GRACE_S
    detach: bool = False
    planned_kv_tokens: int | None = None
    card: ServerCard | None = None
    """Written to `cards_home` once the engine is ready, removed when it stops."""
    cards_home: Path | None = None

    @classmethod
    def default(cls, home: Path, **kwargs: Any) -> LaunchOptions:
        """Records and logs under `home`'s serve folder (`home`: QWEN_HOME)."""
        serve = user_dir(home)
        return cls(run_dir=serve / "run", log_dir=serve / "logs", cards_home=home, **kwargs)


def check_installed(node: NodeCommand) -> None:
    for argv in (*node.before, node.argv):
        missing = missing_program(argv)
        if missing:
            raise install_error(missing)


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run(
    command: EngineCommand, node: NodeCommand, port: int, opts: LaunchOptions, display: Display
) -> int:
    """Start the engine and keep it in the foreground (or detach once it is ready)."""
    check_installed(node)
    if node.serves_http and port_in_use(port):
        raise ServeError(
            f"Port {port} is already in use.",
            hint="Stop what serves it (qwen-code serve status) or pass --port.",
        )
    opts.log_dir.mkdir(parents=True, exist_ok=True)
    log = opts.log_dir / f"{command.served_name}-{port}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    proc = spawn(node, log)
    display.line(f"Started {command.engine} (pid {proc.pid}); log: {log}")
    follower = LogFollower(log, display, planned_kv_tokens=opts.planned_kv_tokens)
    follower.start()
    try:
        with _terminate_as_interrupt():
            return _supervise(command, node, proc, log, opts, display, follower)
    finally:
        follower.stop()


def _supervise(
    command: EngineCommand,
    node: NodeCommand,
    proc: subprocess.Popen[bytes],
    log: Path,
    opts: LaunchOptions,
    display: Display,
    follower: LogFollower,
) -> int:
    ready = False
    try:
        if node.serves_http:
            waited = wait_ready(command, proc, log, opts, display, follower)
            ready = True
            display.line(announcement(command, waited))
            warning = template_warning(command)
            if warning:
                display.line(warning)
            if opts.card is not None and opts.cards_home is not None:
                write_card(opts.cards_home, opts.card)
        else:
            ready = True
            display.line(f"Node {node.rank} is running as a worker; node 0 serves the API.")
        if opts.detach:
            write_record(opts.run_dir, command, node, proc.pid, log)
            display.line(f"Detached. Stop it with: qwen-code serve stop --port {port_of(command)}")
            return 0
        display.line("Press Ctrl+C to stop the engine.")
        try:
            return wait_exit(command, proc, log, display)
        finally:
            _forget_card(opts)
    except KeyboardInterrupt:
        display.line(f"Stopping {command.engine} (process group {proc.pid})...")
        stopped = stop_group(proc.pid, opts.stop_grace_s)
        _reap(proc)
        display.line("Engine stopped." if stopped else "Some engine processes did not exit.")
        return 0 if ready else 130
    except BaseException:
        stop_group(proc.pid, min(opts.stop_grace_s, 5.0))
        _reap(proc)
        _forget_card(opts)
        raise


def _forget_card(opts: LaunchOptions) -> None:
    if opts.card is not None and opts.cards_home is not None:
        remove_card(opts.cards_home, opts.card.base_url)


def spawn(node: NodeCommand, log: Path) -> subprocess.Popen[bytes]:
    """Run `node.before`, then the engine in a new session (its own process group)."""
    env = {**os.environ, **node.env, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        for argv in node.before:
            out.write(f"$ {' '.join(argv)}\n".encode())
            out.flush()
            done = subprocess.run(_argv(argv), stdout=out, stderr=subprocess.STDOUT, env=env)
            if done.returncode != 0:
                raise ServeError(f"{' '.join(argv)} failed (exit {done.returncode}); see {log}")
        return subprocess.Popen(
            _argv(node.argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _argv(argv: tuple[str, ...]) -> list[str]:
    return [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a service manager, `kill`) stops the engine the way Ctrl+C does."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- readiness --------------------------------------------------------------------------------


def probe(url: str, api_key: str | None = None, timeout_s: float = 3.0) -> tuple[int, bytes]:
    """(HTTP status, body); status 0 when nothing answers."""
    request = urllib.request.Request(url)
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except (OSError, ValueError):
        return 0, b""


def root_url(base_url: str) -> str:
    return base_url.removesuffix("/").removesuffix("/v1")


@dataclass(slots=True)
class ReadyProbe:
    """Whether an engine answers as ready, probing what it serves: `GET /health` (llama-server
    and vLLM/SGLang: 200 once loaded, 503 while loading), then `GET /v1/models`. A 404 on
    /health means the engine has none (llama-cpp-python): from then on /v1/models alone
    decides, so readiness never waits on a route that does not exist."""

    base_url: str
    api_key: str | None = None
    has_health: bool | None = None
    """None until /health has answered something other than 404 or nothing."""
    detail: str = "no answer yet"

    def ready(self) -> bool:
        root = root_url(self.base_url)
        if self.has_health is not False:
            code = probe(f"{root}/health", self.api_key)[0]
            if code == 404:
                self.has_health = False
            elif code != 200:
                self.detail = f"/health: {code or 'no answer'}"
                return False
            else:
                self.has_health = True
        code = probe(f"{self.base_url}/models", self.api_key)[0]
        self.detail = "ready" if code == 200 else f"/v1/models: {code or 'no answer'}"
        if code == 404 and self.has_health is False:
            raise ServeError(
                f"{root} answers 404 on both /health and /v1/models: it is not an "
                "OpenAI-compatible engine (is another server on this port?)."
            )
        return code == 200


def wait_ready(
    command: EngineCommand,
    proc: subprocess.Popen[bytes],
    log: Path,
    opts: LaunchOptions,
    display: Display,
    follower: LogFollower,
) -> float:
    """Poll until the engine is ready (ReadyProbe); raise if it exits or the deadline passes.
    Connection refused and 503 mean "still loading"."""
    health, models = f"{root_url(command.base_url)}/health", f"{command.base_url}/models"
    display.line(f"Waiting for the engine: polling {health} and {models} ...")
    readiness = ReadyProbe(command.base_url, command_key(command))
    start = time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        code = proc.poll()
        if code is not None:
            raise ServeError(
                f"{command.engine} exited with code {code} while loading, after {elapsed:.0f} s.",
                hint=f"Last lines of {log}:\n{log_tail(log)}",
            )
        known = readiness.has_health
        ready = readiness.ready()
        if known is None and readiness.has_health is False:
            display.line(f"  {health} answers 404 (this engine has none): {models} decides")
        if ready:
            follower.catch_up()
            display.done_status()
            return elapsed
        if elapsed > opts.ready_timeout_s:
            raise ServeError(
                f"{command.engine} was not ready after {opts.ready_timeout_s:.0f} s "
                f"({readiness.detail}).",
                hint=f"Raise --ready-timeout if it is still loading. Last lines of {log}:\n"
                + log_tail(log),
            )
        display.status(follower.progress_text(elapsed))
        time.sleep(opts.poll_s)


def command_key(command: EngineCommand) -> str | None:
    return argv_key(command.nodes[0].argv)


def argv_key(argv: tuple[str, ...] | list[str]) -> str | None:
    """The API key an engine's command line sets, if any."""
    for flag in ("--api-key", "--api_key"):
        if flag in argv and argv.index(flag) + 1 < len(argv):
            return argv[argv.index(flag) + 1]
    return None


def announcement(command: EngineCommand, waited: float) -> str:
    lines = [
        f"Ready after {waited:.0f} s: {command.served_name} at {command.base_url}",
        "Use it with:",
        f"  export OPENAI_BASE_URL={command.base_url}",
        f"  export OPENAI_MODEL={command.served_name}",
    ]
    key = command_key(command)
    if key:
        lines.append(f"  export OPENAI_API_KEY={key}")
    lines.append("  qwen-code")
    return "\n".join(lines)


def template_warning(command: EngineCommand) -> str | None:
    """llama.cpp: warn when the active chat template takes no tools, or (for Qwen3-Coder)
    cannot produce `<tool_call>` blocks. Engines without /props (llama-cpp-python) say
    nothing here."""
    if command.engine != "llama.cpp":
        return None
    status, body = probe(f"{root_url(command.base_url)}/props", command_key(command))
    try:
        template = json.loads(body).get("chat_template", "") if status == 200 else None
    except (ValueError, AttributeError):
        template = None
    if template is None:
        return None
    if command.qwen_tool_calls and "<tool_call>" not in template:
        return f"Warning: the chat template has no <tool_call> wrapper. {LLAMA_TEMPLATE_NOTE}"
    if not TOOLS_IN_TEMPLATE.search(template):
        return (
            "Warning: this server's chat template takes no tools: the agent will not be able "
            "to call tools (pass --chat-template-file with a template that renders them)."
        )
    return None


def wait_exit(
    command: EngineCommand, proc: subprocess.Popen[bytes], log: Path, display: Display
) -> int:
    while True:
        try:
            code = proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            continue
        if code != 0:
            display.line(f"{command.engine} exited with code {code}. Last lines of {log}:")
            display.line(log_tail(log))
        else:
            display.line(f"{command.engine} exited.")
        stop_group(proc.pid, 2.0)
        return code if code >= 0 else 128 - code


# --- stopping ---------------------------------------------------------------------------------


def _reap(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
