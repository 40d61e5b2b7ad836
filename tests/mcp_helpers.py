"""Helpers for tests that talk to the real MCP servers in tests/mcp_servers/."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

SERVERS = Path(__file__).resolve().parent / "mcp_servers"

# Safety net only: a healthy server is READY well within a second or two.
READY_TIMEOUT_S = 30.0


def server_script(name: str) -> Path:
    """The path of tests/mcp_servers/<name>.py ("tools_server" or "tools_server.py")."""
    script = SERVERS / (name if name.endswith(".py") else f"{name}.py")
    if not script.is_file():
        raise FileNotFoundError(script)
    return script


def stdio_config(
    name: str, *args: str, env: Mapping[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    """A Qwen Code `mcpServers` entry that runs tests/mcp_servers/<name>.py over stdio.

    `extra` is merged in as-is (camelCase keys: trust, timeout, includeTools, ...).
    """
    config: dict[str, Any] = {"command": sys.executable, "args": [str(server_script(name)), *args]}
    if env is not None:
        config["env"] = dict(env)
    config.update(extra)
    return config


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def http_server(
    kind: Literal["http", "sse"] = "http",
    *,
    env: Mapping[str, str] | None = None,
    port: int = 0,
) -> Iterator[str]:
    """Run tools_server.py over streamable HTTP ("http") or legacy SSE ("sse") and yield its URL.

    The URL is http://127.0.0.1:PORT/mcp for "http" and http://127.0.0.1:PORT/sse (the SSE
    endpoint) for "sse". With port=0 the server binds a port the OS picks and reports it on
    its READY line, so there is no race between choosing a port and binding it. `env` is
    added to this process's environment. The server is killed on exit.
    """
    if kind not in ("http", "sse"):
        raise ValueError(f"kind must be 'http' or 'sse', not {kind!r}")
    path = "/mcp" if kind == "http" else "/sse"
    with serving("tools_server", f"--{kind}", str(port), env=env) as base:
        yield f"{base}{path}"


@contextmanager
def serving(name: str, *args: str, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Run tests/mcp_servers/<name>.py ARGS until it prints `READY <port>` on stderr; yield
    `http://127.0.0.1:PORT`; kill it afterwards. stderr is drained all along (a chatty
    server would block on a full pipe); an early exit raises with what it wrote."""
    proc = subprocess.Popen(
        [sys.executable, str(server_script(name)), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    ready = threading.Event()
    lines: list[str] = []
    bound: list[int] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if not ready.is_set() and line.startswith("READY "):
                bound.append(int(line.split()[1]))
                ready.set()
        ready.set()  # EOF: the server died before (or after) becoming ready

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not ready.wait(0.05):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} {' '.join(args)} not ready: {''.join(lines)}")
        if not bound:
            proc.wait(5)
            raise RuntimeError(f"{name} exited ({proc.returncode}): {''.join(lines)}")
        yield f"http://127.0.0.1:{bound[0]}"
    finally:
        proc.kill()
        proc.wait()
        reader.join(5)
        assert proc.stderr is not None
        proc.stderr.close()
