"""The allow-list HTTP proxy a sandboxed command reaches the network through.

The command's network namespace has only its own loopback; `bridge.py` inside it forwards
127.0.0.1:PORT to this proxy's Unix socket, which is bind-mounted into the sandbox. The
proxy speaks just enough HTTP/1.1: CONNECT tunnels (https and anything else on top of TCP)
and absolute-URI requests for plain http, one request per client connection. A host that
is not on the allow-list gets a 403 that says which setting to change, and the denial is
remembered so the agent can tell the user why a command failed.

It runs its own asyncio loop in its own thread, so it keeps serving a background command
whatever the agent's event loop is doing (or whether one runs at all).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import socket
import stat
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

HEAD_LIMIT = 64 * 1024
"""The most bytes a request line plus headers may take."""
CONNECT_TIMEOUT = 10.0
"""Seconds to resolve and connect to the upstream host."""
_CHUNK = 64 * 1024
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization"})
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")
_REASONS = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}


class BadRequest(Exception):
    """The client sent something this proxy cannot make sense of (answered with 400)."""


class Denied(Exception):
    """The allow-list does not let this connection through (answered with 403)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One allow-list entry: `host`, `*.host` (subdomains only), either with `:port`."""

    host: str
    wildcard: bool = False
    port: int | None = None

    @classmethod
    def parse(cls, entry: str) -> Rule:
        """ValueError for an entry that is not `[*.]host[:port]`."""
        host, port = split_host_port(entry.strip(), default=None)
        wildcard = host.startswith("*.")
        host = normalize_host(host[2:] if wildcard else host)
        if not _valid_host(host) or (wildcard and _ip(host) is not None):
            raise ValueError(f"not a host name or address: {entry!r}")
        return cls(host, wildcard, port)

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.wildcard:
            return host.endswith("." + self.host) and not is_ip_like(host)
        return host == self.host or _same_ip(host, self.host)


def normalize_host(host: str) -> str:
    """Lower case, no trailing dot, no IPv6 brackets."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.removesuffix(".")


def split_host_port(authority: str, *, default: int | None) -> tuple[str, int | None]:
    """`host[:port]`, `[v6]:port` or a bare IPv6 address → (host, port). ValueError when
    the port is not a number in range."""
    host, port = authority, None
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise ValueError(f"unclosed IPv6 bracket in {authority!r}")
        host, rest = authority[1:end], authority[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"junk after IPv6 address in {authority!r}")
            port = rest[1:]
    elif authority.count(":") == 1:
        host, port = authority.split(":")
    if port is None:
        return host, default
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port in {authority!r}")
    return host, int(port)


def is_ip_like(host: str) -> bool:
    """An IP literal, or a name the resolver would read as one (`127.1`, `2130706433`,
    `0x7f.1`): such hosts are allowed only when listed literally, never by a wildcard."""
    if _ip(host) is not None or host.rsplit(".", 1)[-1].isdigit():
        return True
    try:
        socket.inet_aton(host)
    except (OSError, ValueError):
        return False
    return True


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _same_ip(a: str, b: str) -> bool:
    ip_a = _ip(a)
    return ip_a is not None and ip_a == _ip(b)


def _valid_host(host: str) -> bool:
    return _ip(host) is not None or (len(host) <= 253 and _HOST_NAME.fullmatch(host) is not None)


def _response(code: int, body: str = "") -> bytes:
    text = body + "\n" if body else ""
    data = text.encode()
    head = (
        f"HTTP/1.1 {code} {_REASONS.get(code, 'Error')}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + data


@dataclass(slots=True)
class Request:
    """A parsed request head: where to connect and, for plain http, what to send there."""

    method: str
    host: str
    port: int
    upstream_head: bytes | None
    """The rewritten head to send upstream; None for CONNECT."""


def parse_head(head: bytes) -> Request:
    """Parse a request head (request line and headers, CRLF-terminated)."""
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError as exc:
        raise BadRequest("malformed request line") from exc
    if not version.startswith("HTTP/1.") or not method.isalpha():
        raise BadRequest("not an HTTP/1.x request")
    headers = [line for line in lines[1:] if line]
    if any(":" not in line for line in headers):
        raise BadRequest("malformed header line")
    if method.upper() == "CONNECT":
        host, port = _authority(target, default=None)
        return Request("CONNECT", host, port, None)
    return _forward_request(method, target, version, headers)


def _authority(authority: str, *, default: int | None) -> tuple[str, int]:
    try:
        host, port = split_host_port(authority, default=default)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    host = normalize_host(host)
    if port is None or not _valid_host(host):
        raise BadRequest(f"bad host or port: {authority!r}")
    return host, port


def _forward_request(method: str, target: str, version: str, headers: list[str]) -> Request:
    """Plain http: the absolute URI becomes origin form and the Host header its authority
    (RFC 9112 §3.2.2: a proxy replaces whatever Host the client sent)."""
    url = urlsplit(target)
    if url.scheme.lower() != "http" or not url.netloc:
        raise BadRequest("only absolute http:// URIs can be forwarded (use CONNECT for https)")
    authority = url.netloc.rpartition("@")[2]
    host, port = _authority(authority, default=80)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    kept = [
        line
        for line in headers
        if line.split(":", 1)[0].strip().lower() not in _HOP_BY_HOP | {"host"}
    ]
    lines = [f"{method} {path} {version}", f"Host: {authority}", *kept, "Connection: close"]
    return Request(method, host, port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


class NetworkProxy:
    """An allow-list HTTP proxy (CONNECT for https, absolute-URI forwarding for plain http)
    served on a Unix socket from its own thread (own asyncio loop), so it keeps serving
    background commands whatever the agent's event loop is doing."""

    def __init__(
        self,
        allowed: Sequence[str],
        *,
        socket_path: Path,
        hosts: Mapping[str, str] | None = None,
    ) -> None:
        """`allowed`: the allow-list (ValueError for a malformed entry). `hosts`: names
        mapped to addresses, used instead of DNS (and trusted even if loopback)."""
        self._rules = [Rule.parse(entry) for entry in allowed if entry.strip()]
        self._hosts = {normalize_host(name): ip for name, ip in (hosts or {}).items()}
        self._socket_path = Path(socket_path)
        self._lock = threading.Lock()
        self._denials: dict[str, None] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def socket_path(self) -> Path:
        return self._socket_path

    def allows(self, host: str, port: int) -> bool:
        host = normalize_host(host)
        return any(rule.matches(host, port) for rule in self._rules)

    def take_denials(self) -> list[str]:
        """The `host:port`s denied since the last call, each once, oldest first."""
        with self._lock:
            denied, self._denials = list(self._denials), {}
        return denied

    def start(self) -> None:
        """Bind the socket and start serving. Does nothing if already started; OSError when
        the socket cannot be bound. Safe to call from inside a running event loop."""
        if self._thread is not None:
            return
        sock = self._bind()
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(
            target=self._run, args=(sock, ready, failure), name="qwen-code-proxy", daemon=True
        )
        thread.start()
        ready.wait()
        if failure:
            thread.join()
            self._remove_socket()
            raise OSError(f"network proxy could not start: {failure[0]}") from failure[0]
        self._thread = thread

    def close(self) -> None:
        """Stop serving (open connections are dropped) and remove the socket file."""
        thread, loop, stop = self._thread, self._loop, self._stop
        self._thread = self._loop = self._stop = None
        if thread is not None and loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
            thread.join()
        if thread is not None:
            self._remove_socket()

    def _bind(self) -> socket.socket:
        path = self._socket_path
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(path.lstat().st_mode):
                path.unlink()  # left over from a process that did not clean up
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(path))
            path.chmod(0o600)
            sock.listen(128)
        except BaseException:
            sock.close()
            raise
        return sock

    def _remove_socket(self) -> None:
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(self._socket_path.lstat().st_mode):
                self._socket_path.unlink()

    def _run(
        self, sock: socket.socket, ready: threading.Event, failure: list[BaseException]
    ) -> None:
        try:
            asyncio.run(self._serve(sock, ready))
        except BaseException as exc:  # never raise out of the thread
            logger.debug("network proxy stopped with an error", exc_info=True)
            failure.append(exc)
        finally:
            sock.close()
            ready.set()

    async def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        server = await asyncio.start_unix_server(self._handle, sock=sock, limit=HEAD_LIMIT)
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        ready.set()
        await self._stop.wait()
        # Not `async with server` / wait_closed(): that would wait for open tunnels, which
        # asyncio.run cancels instead when this returns.
        server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._exchange(reader, writer)
        except Exception:
            logger.debug("network proxy connection failed", exc_info=True)
        finally:
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read_request(reader, writer)
        if request is None:
            return
        upstream = await self._open_upstream(request, writer)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        try:
            if request.upstream_head is None:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                up_writer.write(request.upstream_head)
            await _splice(reader, writer, up_reader, up_writer)
        finally:
            up_writer.close()

    async def _open_upstream(
        self, request: Request, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Connect to the request's host, or answer 403 / 502 and return None."""
        host, port = request.host, request.port
        try:
            if not self.allows(host, port):
                raise Denied(f"connections to {host} are not allowed (tools.sandbox.network)")
            async with asyncio.timeout(CONNECT_TIMEOUT):
                return await self._connect(host, port)
        except Denied as exc:
            self._deny(host, port)
            await _reply(writer, 403, f"qwen-code sandbox: {exc}")
        except (OSError, TimeoutError) as exc:
            logger.debug("upstream %s:%s failed: %r", host, port, exc)
            why = str(exc) or f"no connection within {CONNECT_TIMEOUT:g} s"
            await _reply(writer, 502, f"qwen-code sandbox: cannot reach {host}: {why}")
        return None

    def _deny(self, host: str, port: int) -> None:
        name = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        logger.debug("network proxy denied %s", name)
        with self._lock:
            self._denials[name] = None

    async def _connect(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Open TCP to an allowed host, trying each of its addresses in turn."""
        addresses = await self._resolve(host, port)
        error: OSError = OSError(f"no address for {host}")
        for address in addresses:
            try:
                return await asyncio.open_connection(address, port, limit=_CHUNK)
            except OSError as exc:
                error = exc
        raise error

    async def _resolve(self, host: str, port: int) -> list[str]:
        """The addresses for `host`: from `hosts`, the literal itself, or DNS. A name must
        not lead into this machine (loopback) or to link-local services such as cloud
        metadata unless that address is itself on the allow-list: `*.example.com` lets the
        sandbox reach whatever example.com's DNS says, and the host's loopback is exactly
        what the sandbox's own network namespace keeps it from."""
        if host in self._hosts:
            return [self._hosts[host]]
        if _ip(host) is not None:
            return [host]
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = list(dict.fromkeys(str(info[4][0]) for info in infos))
        usable = [a for a in found if not _internal(a) or self.allows(a, port)]
        if found and not usable:
            raise Denied(
                f"{host} resolves to {found[0]}, which is not allowed unless listed itself "
                "(tools.sandbox.network)"
            )
        return usable


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> Request | None:
    """The client's request, or None after answering 400 (or on a silent hang-up)."""
    try:
        return parse_head(await reader.readuntil(b"\r\n\r\n"))
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            await _reply(writer, 400, "qwen-code sandbox: incomplete request")
    except (asyncio.LimitOverrunError, BadRequest, ValueError) as exc:
        logger.debug("bad proxy request: %s", exc)
        await _reply(writer, 400, f"qwen-code sandbox: bad proxy request ({exc})")
    return None


def _internal(address: str) -> bool:
    """Loopback, link-local, unspecified or multicast (IPv4-mapped IPv6 included)."""
    ip = _ip(address.split("%", 1)[0])
    if ip is None:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast


async def _reply(writer: asyncio.StreamWriter, code: int, body: str) -> None:
    with contextlib.suppress(OSError):
        writer.write(_response(code, body))
        await writer.drain()


async def _splice(
    client_r: asyncio.StreamReader,
    client_w: asyncio.StreamWriter,
    up_r: asyncio.StreamReader,
    up_w: asyncio.StreamWriter,
) -> None:
    """Copy both ways. The client's EOF is passed on as a half-close and the response
    still comes back; the upstream's EOF, or an error either way, ends the exchange."""
    to_upstream = asyncio.create_task(_pipe(client_r, up_w))
    to_client = asyncio.create_task(_pipe(up_r, client_w))
    try:
        done, _ = await asyncio.wait({to_upstream, to_client}, return_when=asyncio.FIRST_COMPLETED)
        if to_upstream in done and to_upstream.result():
            await to_client
    finally:
        for task in (to_upstream, to_client):
            task.cancel()
        await asyncio.gather(to_upstream, to_client, return_exceptions=True)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Copy until EOF, then half-close `writer`. False when the connection broke instead."""
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        return True
    except OSError as exc:
        logger.debug("network proxy pipe closed: %r", exc)
        return False
