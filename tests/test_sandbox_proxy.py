"""The sandbox's network proxy and the bridge that reaches it from inside bubblewrap.

Real sockets throughout: a local http.server plays the package registry, `registry.test`
is mapped to 127.0.0.1 by the proxy's `hosts`, and nothing touches the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen_code.sandbox import proxy as proxy_module
from qwen_code.sandbox.proxy import NetworkProxy
from tests.sandbox_helpers import needs_sandbox

BRIDGE = Path(proxy_module.__file__).with_name("bridge.py")
SAFETY_TIMEOUT = 30.0
"""Only a safety net: nothing here waits for time to pass."""


class RegistryHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = f"registry says {self.path} host={self.headers.get('Host')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = b"got " + self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def registry() -> Iterator[int]:
    """A local HTTP server on 127.0.0.1; yields its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RegistryHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory for Unix sockets (AF_UNIX paths are limited to ~107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="qc-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def proxy(sock_dir: Path) -> Iterator[NetworkProxy]:
    server = NetworkProxy(
        ["registry.test", "*.allowed.test", "closed.test"],
        socket_path=sock_dir / "proxy.sock",
        hosts={"registry.test": "127.0.0.1", "closed.test": "127.0.0.1"},
    )
    server.start()
    yield server
    server.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(SAFETY_TIMEOUT)
    sock.connect(str(path))
    return sock


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def read_head(sock: socket.socket) -> bytes:
    """Read up to the end of a response head, byte by byte (nothing past it is consumed)."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        assert byte, f"connection closed after {head!r}"
        head += byte
    return head


def exchange(path: Path, request: bytes) -> bytes:
    with connect(path) as sock:
        sock.sendall(request)
        return read_all(sock)


# -- allow-list rules -------------------------------------------------------------------


def rules(*allowed: str) -> NetworkProxy:
    return NetworkProxy(list(allowed), socket_path=Path("/nonexistent/unused.sock"))


def test_exact_host_any_port_case_and_trailing_dot() -> None:
    p = rules("Example.COM.")
    assert p.allows("example.com", 443)
    assert p.allows("EXAMPLE.com.", 80)
    assert not p.allows("www.example.com", 443)
    assert not p.allows("example.com.evil.test", 443)
    assert not p.allows("notexample.com", 443)


def test_wildcard_matches_subdomains_not_the_apex() -> None:
    p = rules("*.npmjs.org")
    assert p.allows("registry.npmjs.org", 443)
    assert p.allows("a.b.npmjs.org", 80)
    assert not p.allows("npmjs.org", 443)
    assert not p.allows("evilnpmjs.org", 443)


def test_port_rules() -> None:
    p = rules("example.com:8443", "*.internal.test:80")
    assert p.allows("example.com", 8443)
    assert not p.allows("example.com", 443)
    assert p.allows("api.internal.test", 80)
    assert not p.allows("api.internal.test", 443)


def test_ip_literals_only_when_listed_literally() -> None:
    p = rules("*.0.0.1", "*.1", "10.0.0.5", "[::1]:8080")
    assert not p.allows("127.0.0.1", 80)
    assert not p.allows("127.1", 80)
    assert p.allows("10.0.0.5", 443)
    assert p.allows("::1", 8080)
    assert p.allows("[0:0::1]", 8080)
    assert not p.allows("::1", 80)
    assert not rules("example.com").allows("127.0.0.1", 80)


def test_empty_allow_list_allows_nothing() -> None:
    assert not rules().allows("example.com", 443)
    assert not rules("", "  ").allows("example.com", 443)


@pytest.mark.parametrize(
    "entry", ["exa mple.com", "example.com:http", "example.com:0", "*.1.2.3.4"]
)
def test_malformed_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError):
        rules(entry)


# -- the proxy over its Unix socket -----------------------------------------------------


def test_plain_http_get_through_the_proxy(proxy: NetworkProxy, registry: int) -> None:
    reply = exchange(
        proxy.socket_path,
        f"GET http://registry.test:{registry}/x?y=1 HTTP/1.1\r\n"
        f"Host: somewhere.else\r\nProxy-Connection: keep-alive\r\n\r\n".encode(),
    )
    assert reply.startswith(b"HTTP/1.")
    assert b" 200 " in reply.split(b"\r\n")[0]
    assert reply.endswith(f"registry says /x?y=1 host=registry.test:{registry}".encode())
    assert proxy.take_denials() == []


def test_plain_http_forwards_the_body(proxy: NetworkProxy, registry: int) -> None:
    reply = exchange(
        proxy.socket_path,
        f"POST http://registry.test:{registry}/upload HTTP/1.1\r\n"
        f"Content-Length: 5\r\n\r\nhello".encode(),
    )
    assert reply.endswith(b"got hello")


def test_connect_tunnel(proxy: NetworkProxy, registry: int) -> None:
    with connect(proxy.socket_path) as sock:
        sock.sendall(f"CONNECT registry.test:{registry} HTTP/1.1\r\n\r\n".encode())
        assert read_head(sock).startswith(b"HTTP/1.1 200 Connection established\r\n")
        sock.sendall(b"GET /tunnelled HTTP/1.1\r\nHost: registry.test\r\n\r\n")
        reply = read_all(sock)
    assert b" 200 " in reply.split(b"\r\n")[0]
    assert reply.endswith(b"registry says /tunnelled host=registry.test")


def test_connect_tunnel_survives_the_client_half_closing(
    proxy: NetworkProxy, registry: int
) -> None:
    with connect(proxy.socket_path) as sock:
        sock.sendall(f"CONNECT registry.test:{registry} HTTP/1.1\r\n\r\n".encode())
        read_head(sock)
        sock.sendall(b"GET /half HTTP/1.1\r\nHost: registry.test\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        reply = read_all(sock)
    assert reply.endswith(b"registry says /half host=registry.test")


def test_denied_hosts_get_403_and_are_reported_once(proxy: NetworkProxy, registry: int) -> None:
    denied = exchange(proxy.socket_path, b"CONNECT evil.test:443 HTTP/1.1\r\n\r\n")
    assert denied.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert denied.endswith(
        b"qwen-code sandbox: connections to evil.test are not allowed (tools.sandbox.network)\n"
    )
    ip = exchange(proxy.socket_path, f"GET http://127.0.0.1:{registry}/ HTTP/1.1\r\n\r\n".encode())
    assert ip.startswith(b"HTTP/1.1 403 ")
    again = exchange(proxy.socket_path, b"CONNECT EVIL.test.:443 HTTP/1.1\r\n\r\n")
    assert again.startswith(b"HTTP/1.1 403 ")
    assert proxy.take_denials() == ["evil.test:443", f"127.0.0.1:{registry}"]
    assert proxy.take_denials() == []


def test_wildcard_does_not_cover_the_apex_over_the_wire(proxy: NetworkProxy) -> None:
    reply = exchange(proxy.socket_path, b"CONNECT allowed.test:443 HTTP/1.1\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 403 ")
    assert proxy.take_denials() == ["allowed.test:443"]


def test_a_name_may_not_lead_to_loopback_unless_the_address_is_listed(
    sock_dir: Path, registry: int
) -> None:
    request = f"GET http://localhost:{registry}/lo HTTP/1.1\r\n\r\n".encode()
    only_name = NetworkProxy(["localhost"], socket_path=sock_dir / "a.sock")
    only_name.start()
    try:
        reply = exchange(only_name.socket_path, request)
        assert reply.startswith(b"HTTP/1.1 403 ")
        assert b"localhost resolves to 127.0.0.1" in reply
        assert only_name.take_denials() == [f"localhost:{registry}"]
    finally:
        only_name.close()
    listed = NetworkProxy(["localhost", "127.0.0.1"], socket_path=sock_dir / "b.sock")
    listed.start()
    try:
        reply = exchange(listed.socket_path, request)
        assert reply.endswith(f"registry says /lo host=localhost:{registry}".encode())
    finally:
        listed.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"garbage\r\n\r\n",
        b"GET /relative/path HTTP/1.1\r\nHost: registry.test\r\n\r\n",
        b"GET https://registry.test/ HTTP/1.1\r\n\r\n",
        b"CONNECT registry.test HTTP/1.1\r\n\r\n",
        b"CONNECT registry.test:99999 HTTP/1.1\r\n\r\n",
        b"CONNECT bad host:443 HTTP/1.1\r\n\r\n",
        b"GET http://registry.test/ SPDY/3\r\n\r\n",
        b"GET http://registry.test/ HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET http://registry.test/ HTTP/1.1\r\nX-Big: " + b"a" * (70 * 1024) + b"\r\n\r\n",
        b"GET http://registry.test/ HTTP/1.1\r\n",
    ],
)
def test_malformed_requests_get_400(proxy: NetworkProxy, request_bytes: bytes) -> None:
    with connect(proxy.socket_path) as sock:
        sock.sendall(request_bytes)
        sock.shutdown(socket.SHUT_WR)
        reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert proxy.take_denials() == []


def test_unreachable_upstream_gets_502(proxy: NetworkProxy) -> None:
    port = free_port()  # nothing listens there
    reply = exchange(proxy.socket_path, f"CONNECT closed.test:{port} HTTP/1.1\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert b"cannot reach closed.test" in reply


def test_start_is_idempotent_and_close_removes_the_socket(sock_dir: Path, registry: int) -> None:
    path = sock_dir / "p.sock"
    server = NetworkProxy(["registry.test"], socket_path=path, hosts={"registry.test": "127.0.0.1"})
    server.start()
    server.start()
    assert path.is_socket()
    assert path.stat().st_mode & 0o777 == 0o600
    reply = exchange(path, f"GET http://registry.test:{registry}/a HTTP/1.1\r\n\r\n".encode())
    assert reply.endswith(f"registry says /a host=registry.test:{registry}".encode())
    server.close()
    server.close()
    assert not path.exists()
    with pytest.raises(OSError):
        connect(path)


def test_close_drops_an_open_tunnel(sock_dir: Path, registry: int) -> None:
    path = sock_dir / "p.sock"
    server = NetworkProxy(["registry.test"], socket_path=path, hosts={"registry.test": "127.0.0.1"})
    server.start()
    with connect(path) as sock:
        sock.sendall(f"CONNECT registry.test:{registry} HTTP/1.1\r\n\r\n".encode())
        read_head(sock)
        server.close()
        assert read_all(sock) == b""


def test_start_replaces_a_stale_socket_and_fails_cleanly(sock_dir: Path) -> None:
    stale = sock_dir / "stale.sock"
    left_over = socket.socket(socket.AF_UNIX)
    left_over.bind(str(stale))
    left_over.close()
    server = NetworkProxy([], socket_path=stale)
    server.start()
    server.close()
    assert not stale.exists()
    with pytest.raises(OSError):
        NetworkProxy([], socket_path=sock_dir / "missing" / "p.sock").start()
    regular = sock_dir / "file"
    regular.write_text("not a socket")
    with pytest.raises(OSError):
        NetworkProxy([], socket_path=regular).start()
    assert regular.read_text() == "not a socket"


async def test_starts_from_inside_a_running_event_loop(sock_dir: Path, registry: int) -> None:
    server = NetworkProxy(
        ["registry.test"], socket_path=sock_dir / "p.sock", hosts={"registry.test": "127.0.0.1"}
    )
    server.start()
    try:
        reader, writer = await asyncio.open_unix_connection(str(server.socket_path))
        writer.write(f"GET http://registry.test:{registry}/loop HTTP/1.1\r\n\r\n".encode())
        reply = await reader.read()
        writer.close()
    finally:
        server.close()
    assert reply.endswith(f"registry says /loop host=registry.test:{registry}".encode())


# -- the bridge -------------------------------------------------------------------------


def bridge_argv(sock: Path, port: int) -> list[str]:
    return [sys.executable, "-I", "-S", str(BRIDGE), "--socket", str(sock), "--port", str(port)]


def proxy_env(port: int) -> dict[str, str]:
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return env | {"HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url}


FETCH = (
    "import sys, urllib.request\n"
    "print(urllib.request.urlopen('http://registry.test:{port}/via-bridge', timeout=30)"
    ".read().decode(), flush=True)\n"
    "sys.exit(3)\n"
)


def test_bridge_carries_a_command_through_the_proxy(proxy: NetworkProxy, registry: int) -> None:
    port = free_port()
    argv = [*bridge_argv(proxy.socket_path, port), "--", sys.executable, "-c"]
    done = subprocess.run(
        [*argv, FETCH.format(port=registry)],
        env=proxy_env(port),
        capture_output=True,
        text=True,
        timeout=SAFETY_TIMEOUT,
        check=False,
    )
    assert done.stdout == f"registry says /via-bridge host=registry.test:{registry}\n", done.stderr
    assert done.returncode == 3


def test_bridge_half_close_and_denials(proxy: NetworkProxy, registry: int) -> None:
    port = free_port()
    waiter = "import sys; print('ready', flush=True); sys.stdin.read()"
    child = subprocess.Popen(
        [*bridge_argv(proxy.socket_path, port), "--", sys.executable, "-c", waiter],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        with socket.create_connection(("127.0.0.1", port), timeout=SAFETY_TIMEOUT) as sock:
            sock.sendall(f"CONNECT registry.test:{registry} HTTP/1.1\r\n\r\n".encode())
            assert read_head(sock).startswith(b"HTTP/1.1 200 ")
            sock.sendall(b"GET /half HTTP/1.1\r\nHost: registry.test\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)
            assert read_all(sock).endswith(b"registry says /half host=registry.test")
        with socket.create_connection(("127.0.0.1", port), timeout=SAFETY_TIMEOUT) as sock:
            sock.sendall(b"CONNECT evil.test:443 HTTP/1.1\r\n\r\n")
            assert read_all(sock).startswith(b"HTTP/1.1 403 ")
        assert proxy.take_denials() == ["evil.test:443"]
    finally:
        child.communicate("", timeout=SAFETY_TIMEOUT)
    assert child.returncode == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_bridge_passes_signals_on_and_reports_them(sock_dir: Path, sig: signal.Signals) -> None:
    waiter = "import time; print('ready', flush=True); time.sleep(600)"
    argv = [*bridge_argv(sock_dir / "none.sock", free_port()), "--", sys.executable, "-c"]
    child = subprocess.Popen([*argv, waiter], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        child.send_signal(sig)
        assert child.wait(timeout=SAFETY_TIMEOUT) == 128 + sig
    finally:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        child.wait()


def test_bridge_reports_a_child_killed_by_a_signal(sock_dir: Path) -> None:
    argv = [*bridge_argv(sock_dir / "none.sock", free_port()), "--", sys.executable, "-c"]
    killer = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    done = subprocess.run([*argv, killer], timeout=SAFETY_TIMEOUT, check=False)
    assert done.returncode == 128 + signal.SIGKILL


def test_bridge_keeps_the_child_in_the_callers_process_group(sock_dir: Path) -> None:
    argv = [*bridge_argv(sock_dir / "none.sock", free_port()), "--", sys.executable, "-c"]
    probe = "import os; print(os.getpgrp(), os.getsid(0))"
    done = subprocess.run(
        [*argv, probe],
        capture_output=True,
        text=True,
        timeout=SAFETY_TIMEOUT,
        check=False,
        start_new_session=True,
    )
    pgrp, sid = done.stdout.split()
    assert pgrp == sid  # the group made for the bridge, not a new one of its own


def test_bridge_usage_and_busy_port(sock_dir: Path) -> None:
    usage = subprocess.run(
        [sys.executable, "-I", "-S", str(BRIDGE), "--port", "1", "--", "true"],
        capture_output=True,
        text=True,
        timeout=SAFETY_TIMEOUT,
        check=False,
    )
    assert usage.returncode == 125
    assert "usage:" in usage.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        argv = bridge_argv(sock_dir / "none.sock", busy.getsockname()[1])
        done = subprocess.run(
            [*argv, "--", sys.executable, "-c", "print('ran')"],
            capture_output=True,
            text=True,
            timeout=SAFETY_TIMEOUT,
            check=False,
        )
    assert done.returncode == 125
    assert done.stdout == ""
    assert "cannot listen" in done.stderr


# -- inside bubblewrap ------------------------------------------------------------------


INSIDE = (
    "import socket, urllib.request\n"
    "print(urllib.request.urlopen('http://registry.test:{port}/in-bwrap', timeout=30)"
    ".read().decode())\n"
    "try:\n"
    "    socket.create_connection(('127.0.0.1', {port}), timeout=10).close()\n"
    "    print('direct: connected')\n"
    "except OSError as exc:\n"
    "    print('direct: failed', type(exc).__name__)\n"
)


@needs_sandbox
@pytest.mark.parametrize("mount", ["dir", "socket-read-only"])
def test_bridge_inside_bubblewrap(proxy: NetworkProxy, registry: int, mount: str) -> None:
    sock = proxy.socket_path
    if mount == "dir":
        binds = ["--bind", str(sock.parent), str(sock.parent)]
    else:  # what qwen_code.sandbox.bwrap does: just the socket file, read-only
        binds = ["--ro-bind", str(sock), str(sock)]
    bwrap = [shutil.which("bwrap") or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev"]
    bwrap += ["--proc", "/proc", "--unshare-all", "--die-with-parent", *binds]
    inner = [*bridge_argv(sock, 3128), "--", sys.executable, "-c", INSIDE.format(port=registry)]
    done = subprocess.run(
        [*bwrap, "--", *inner],
        env=proxy_env(3128),
        capture_output=True,
        text=True,
        timeout=SAFETY_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"registry says /in-bwrap host=registry.test:{registry}"
    assert lines[1] == "direct: failed ConnectionRefusedError"
    assert proxy.take_denials() == []
