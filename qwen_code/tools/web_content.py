"""Fetching one web page for `web_fetch`: URL checks, the private-address rule's mechanism,
redirects, and the size and time caps.

- A plain `http://` URL to a non-local host is upgraded to `https://`.
- The host is resolved once per hop and every address is checked (loopback, link-local,
  private, CGNAT, cloud metadata): a concern goes to the caller's `gate`, which may refuse
  by raising `ToolError`. The connection then goes to an address that was checked, never
  through a second DNS lookup (no DNS rebinding): the request's URL names the IP, the
  `Host` header and TLS SNI (certificate checks included) name the host.
- Redirects are followed by hand within the same host (up to `max_redirects`); one to
  another host comes back as `CrossHostRedirect` for the model to fetch in a new call.
- At most `max_bytes` of the body are read; the whole fetch is cut at `timeout_s` (time
  spent waiting for the user's answer does not count).

httpx is imported when a fetch is made, never at import time.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from qwen_code import __version__
from qwen_code.tools.base import ToolError

if TYPE_CHECKING:
    import ssl

    import httpx

Gate = Callable[[str, str], Awaitable[None]]
"""`await gate(host, why)` before connecting to a non-public address; raises `ToolError`
when the fetch may not go there."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchLimits:
    max_bytes: int = 10 * 1024 * 1024
    """The most body bytes read (after decompression); reading stops there."""
    timeout_s: float = 30.0
    """The whole fetch, redirects included."""
    max_chars: int = 100_000
    """The most characters of text (Markdown) handed on, to the model or the fast model."""
    max_redirects: int = 5
    cache_ttl_s: float = 15 * 60


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetched:
    url: str
    """The URL that answered (after same-host redirects)."""
    status: int
    content_type: str
    """The media type in lower case ("" when the server sent none)."""
    charset: str | None
    body: bytes
    cut: bool
    """Reading stopped at `max_bytes`; the body is incomplete."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CrossHostRedirect:
    url: str
    target: str
    status: int


_USER_AGENT = f"qwen-code/{__version__} (web_fetch)"
_ACCEPT = (
    "text/html,application/xhtml+xml,text/*;q=0.9,application/json;q=0.9,"
    "application/pdf;q=0.8,*/*;q=0.5"
)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


# --- URLs ----------------------------------------------------------------------------


def normalize_url(raw: str) -> str:
    """The URL to fetch: `https://` added when no scheme is given, plain http upgraded to
    https for non-local hosts. A clear `ToolError` for anything else."""
    text = raw.strip()
    if not text:
        raise ToolError("The url is empty: pass a full http(s) URL.")
    if "://" not in text:
        text = f"https://{text.removeprefix('//')}"
    try:
        parts = urlsplit(text)
        host, _port = parts.hostname, parts.port
    except ValueError as exc:
        raise ToolError(f"Not a valid URL: {raw!r} ({exc}).") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ToolError(f"Only http and https URLs can be fetched, not {parts.scheme}: {raw!r}.")
    if not host:
        raise ToolError(f"The URL names no host: {raw!r}.")
    if any(c.isspace() for c in text):
        raise ToolError(f"The URL contains whitespace: {raw!r}.")
    if parts.scheme.lower() == "http" and not is_local_host(host):
        text = "https://" + text.split("://", 1)[1]
    return text


def is_local_host(host: str) -> bool:
    """Whether `host` names this machine or the local network (such hosts keep plain
    http): localhost, `.local`-style names, single-label names, non-public IP literals."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        return address_concern(host) is not None
    except ValueError:
        pass
    return host == "localhost" or host.endswith(_LOCAL_SUFFIXES) or "." not in host


def same_host(a: str, b: str) -> bool:
    return (urlsplit(a).hostname or "") == (urlsplit(b).hostname or "")


# --- addresses -----------------------------------------------------------------------


def address_concern(address: str) -> str | None:
    """What kind of non-public address this is ("a loopback address"), or None for a
    public one. Raises `ValueError` when `address` is not an IP address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks = (
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_unspecified, "an unspecified address (this machine)"),
        (ip.version == 4 and ip in _CGNAT, "a carrier-grade NAT address"),
        (ip.is_private, "a private network address"),
        (ip.is_multicast or ip.is_reserved or not ip.is_global, "a non-public address"),
    )
    return next((why for hit, why in checks if hit), None)


async def resolve(host: str, port: int) -> list[str]:
    """The host's addresses (an IP literal is its own), in the resolver's order."""
    bare = host.strip("[]")
    try:
        ipaddress.ip_address(bare.split("%", 1)[0])
        return [bare]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(bare, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ToolError(f"Could not resolve the host {host}: {reason}.") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise ToolError(f"The host {host} has no addresses.")
    return addresses


async def check_host(url: str, host: str, gate: Gate) -> bool:
    """Ask the gate about a cloud metadata host name (before it is even resolved); True
    when it was asked (and said yes)."""
    if host.rstrip(".").lower() in _METADATA_HOSTS:
        await gate(host, f"{url} names {host}, a cloud metadata host")
        return True
    return False


async def check_addresses(url: str, host: str, addresses: list[str], gate: Gate) -> None:
    """Ask the gate about the first non-public address among the host's."""
    for address in addresses:
        concern = address_concern(address)
        if concern:
            shown = host if address == host.strip("[]") else f"{host} ({address})"
            await gate(host, f"{url} resolves to {shown}, {concern}")
            return


# --- fetching ------------------------------------------------------------------------


async def fetch(
    url: str, *, limits: FetchLimits, gate: Gate, verify: ssl.SSLContext | bool = True
) -> Fetched | CrossHostRedirect:
    """Fetch `url` (already normalized), following same-host redirects. `verify`: the
    TLS certificate check (httpx's; a context trusting a test CA in tests)."""
    import httpx

    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(limits.timeout_s) as budget:

            async def paused(host: str, why: str) -> None:
                when = budget.when()  # the user's thinking time does not count
                left = None if when is None else max(when - loop.time(), 0.0)
                budget.reschedule(None)
                try:
                    await gate(host, why)
                finally:
                    budget.reschedule(None if left is None else loop.time() + left)

            headers = {"User-Agent": _USER_AGENT, "Accept": _ACCEPT}
            async with httpx.AsyncClient(
                trust_env=False, timeout=limits.timeout_s, headers=headers, verify=verify
            ) as client:
                return await _follow(client, url, limits, paused)
    except (TimeoutError, httpx.TimeoutException):
        raise ToolError(
            f"Fetching {url} took longer than {limits.timeout_s:g} s and was stopped."
        ) from None
    except httpx.HTTPError as exc:
        raise ToolError(f"Could not fetch {url}: {_describe(exc)}") from None


async def _follow(
    client: httpx.AsyncClient, url: str, limits: FetchLimits, gate: Gate
) -> Fetched | CrossHostRedirect:
    for _hop in range(limits.max_redirects + 1):
        answer = await _get(client, url, limits, gate)
        if isinstance(answer, Fetched):
            return answer
        status, location = answer
        target = urljoin(url, location)
        if not same_host(url, target):
            return CrossHostRedirect(url=url, target=target, status=status)
        url = normalize_url(target)
    raise ToolError(f"Too many redirects (more than {limits.max_redirects}) from {url}.")


async def _get(
    client: httpx.AsyncClient, url: str, limits: FetchLimits, gate: Gate
) -> Fetched | tuple[int, str]:
    """One request: a page, or a redirect's (status, location)."""
    import httpx

    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    asked = await check_host(url, parsed.host, gate)
    addresses = await resolve(parsed.raw_host.decode("ascii"), port)
    if not asked:
        await check_addresses(url, parsed.host, addresses, gate)
    failure: httpx.ConnectError | None = None
    for address in addresses:
        try:
            return await _get_at(client, parsed, address, limits)
        except httpx.ConnectError as exc:
            failure = exc
    assert failure is not None
    raise failure


async def _get_at(
    client: httpx.AsyncClient, url: httpx.URL, address: str, limits: FetchLimits
) -> Fetched | tuple[int, str]:
    """GET `url` from `address`, the host checked: its IP in the request URL, the host
    in the Host header and as the TLS server name (so certificates are checked for it)."""
    extensions = {}
    server_name = url.raw_host.decode("ascii")
    if url.scheme == "https" and server_name != address:
        extensions["sni_hostname"] = server_name
    pinned = url.copy_with(host=address)
    request = client.build_request(
        "GET", pinned, headers={"Host": url.netloc.decode("ascii")}, extensions=extensions
    )
    response = await client.send(request, stream=True)
    try:
        location = response.headers.get("location")
        if response.status_code in _REDIRECTS and location:
            return response.status_code, location
        if response.status_code >= 400:
            raise ToolError(
                f"{url} answered HTTP {response.status_code} {response.reason_phrase}".rstrip()
                + "."
            )
        body, cut = await _read_capped(response, limits.max_bytes)
    finally:
        await response.aclose()
    content_type = response.headers.get("content-type", "")
    return Fetched(
        url=str(url),
        status=response.status_code,
        content_type=content_type.split(";", 1)[0].strip().lower(),
        charset=response.charset_encoding,
        body=body,
        cut=cut,
    )


async def _read_capped(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        if size + len(chunk) > max_bytes:
            chunks.append(chunk[: max_bytes - size])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def _describe(exc: httpx.HTTPError) -> str:
    import httpx

    text = str(exc).strip()
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect ({text or 'connection refused'})."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
