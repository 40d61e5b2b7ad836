"""`web_fetch` against a web server the test starts on 127.0.0.1: HTML as Markdown, a
same-host redirect chain, a cross-host redirect (127.0.0.1 → localhost) returned as a
note, the size and time caps, PDF text, binary refused, the cache, the private-address
rule (yolo, allow rules, the user's answer, headless refusal), https pinned to the checked
address, and the scripted model calling the tool with and without `prompt`."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from qwen_code.agent.approval import ApprovalAnswer, ApprovalRequest, HeadlessApprover
from qwen_code.agent.events import Event, ToolResult, TurnEnd
from qwen_code.config import Flags, load_settings, resolve_provider
from qwen_code.session.live import Session
from qwen_code.session.setup import open_session
from qwen_code.tools.base import ToolContext, ToolError
from qwen_code.tools.events import ALLOWED_HOST, CONFIRM
from qwen_code.tools.web_content import FetchLimits, address_concern, normalize_url
from qwen_code.tools.web_fetch import ANSWER_SYSTEM, CACHE_KEY, PageCache, WebFetchTool
from tests.fakeserver import FakeLLM, call, text, tool_turn

PAGE = (
    b"<html><head><title>Tide tables</title><style>p{color:red}</style>"
    b"<script>stealCookies()</script></head><body><nav>Home | About</nav>"
    b"<h1>High tide</h1><p>High tide at <b>06:12</b>, see <a href='/more'>more</a>.</p>"
    b"<ul><li>Low tide 12:30</li></ul></body></html>"
)

HUGE = b"<html><body><div>%s</div></body></html>" % (
    (b"<p>%s</p>\n" % (b"tide data " * 100)) * 3000
)
"""3 MB of HTML."""


def make_pdf(pages: list[str]) -> bytes:
    """A minimal PDF with one line of Helvetica text per page (offsets computed)."""
    count = len(pages)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(count)), count),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, line in enumerate(pages):
        stream = b"BT /F1 24 Tf 72 720 Td (%s) Tj ET" % line.encode()
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


class Site:
    """The test's web server: fixed routes, hits counted per path."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.hosts: list[str] = []
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.site = self  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {
            "/page": (200, {"Content-Type": "text/html; charset=utf-8"}, PAGE),
            "/r1": (302, {"Location": "/r2"}, b""),
            "/r2": (301, {"Location": f"http://127.0.0.1:{self.port}/r3"}, b""),
            "/r3": (307, {"Location": "/page"}, b""),
            "/loop": (302, {"Location": "/loop"}, b""),
            "/away": (302, {"Location": f"http://localhost:{self.port}/page"}, b""),
            "/huge": (200, {"Content-Type": "text/html"}, HUGE),
            "/doc.pdf": (200, {"Content-Type": "application/pdf"}, make_pdf(["Alpha", "Beta"])),
            "/blob.bin": (200, {"Content-Type": "application/octet-stream"}, bytes(range(256))),
            "/notes.txt": (200, {"Content-Type": "text/plain"}, "Tides: ½ metre\n".encode()),
            "/data.json": (200, {"Content-Type": "application/json"}, b'{"tide": "high"}'),
            "/untyped": (200, {}, make_pdf(["Sniffed"])),
            "/missing": (404, {"Content-Type": "text/plain"}, b"no such page"),
        }
        serve = {"poll_interval": 0.05}  # so that close() returns quickly
        threading.Thread(target=self.server.serve_forever, kwargs=serve, daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        site: Site = self.server.site  # type: ignore[attr-defined]
        site.hits[self.path] += 1
        site.hosts.append(self.headers.get("Host", ""))
        with contextlib.suppress(OSError):  # the client may stop reading (size cap)
            if self.path == "/slow":
                self._slow(site)
                return
            status, headers, body = site.routes[self.path]
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            for start in range(0, len(body), 65536):
                self.wfile.write(body[start : start + 65536])

    def _slow(self, site: Site) -> None:
        """Headers and a first line, then nothing until the test ends."""
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"first line\n")
        self.wfile.flush()
        site.release.wait(timeout=30)


@pytest.fixture
def site() -> Iterator[Site]:
    running = Site()
    yield running
    running.close()


@pytest.fixture
def yolo(ctx: ToolContext) -> ToolContext:
    ctx.approval_mode = "yolo"
    return ctx


async def fetch(ctx: ToolContext, url: str, tool: WebFetchTool | None = None) -> str:
    tool = tool or WebFetchTool()
    output = await tool.run(WebFetchTool.Params(url=url), ctx)
    assert not output.is_error
    return output.content


# --- URLs and addresses --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://example.com", "https://example.com"),
        ("http://example.com/a?b=1", "https://example.com/a?b=1"),
        ("example.com/docs", "https://example.com/docs"),
        ("https://example.com", "https://example.com"),
        ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080/x"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://192.168.1.10/", "http://192.168.1.10/"),
        ("http://[::1]:8000/", "http://[::1]:8000/"),
        ("http://printer.local/", "http://printer.local/"),
        ("http://intranet/", "http://intranet/"),
    ],
)
def test_plain_http_is_upgraded_only_for_public_hosts(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("ftp://example.com/f", "Only http and https"),
        ("file:///etc/passwd", "Only http and https"),
        ("http://", "no host"),
        ("http://exa mple.com/", "whitespace"),
        ("http://example.com:99999/", "Not a valid URL"),
    ],
)
def test_bad_urls_get_a_clear_error(raw: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        normalize_url(raw)


@pytest.mark.parametrize(
    ("address", "concern"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.0.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.10.10", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("0.0.0.0", "unspecified"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_classes(address: str, concern: str | None) -> None:
    found = address_concern(address)
    assert (found is None) if concern is None else (concern in (found or ""))


async def test_metadata_host_name_needs_approval(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="cloud metadata host"):
        await fetch(ctx, "http://metadata.google.internal/computeMetadata/v1/")


# --- content -------------------------------------------------------------------------


async def test_html_becomes_markdown_without_scripts_styles_or_navigation(
    yolo: ToolContext, site: Site
) -> None:
    content = await fetch(yolo, site.url("/page"))
    assert content.startswith(f"URL: {site.url('/page')}\nTitle: Tide tables\n")
    assert "# High tide" in content and "**06:12**" in content and "- Low tide 12:30" in content
    assert f"[more]({site.url('/more')})" in content  # links made absolute
    for noise in ("stealCookies", "color:red", "Home | About"):
        assert noise not in content


async def test_text_json_and_pdf(yolo: ToolContext, site: Site) -> None:
    assert (await fetch(yolo, site.url("/notes.txt"))).endswith("Tides: ½ metre")
    assert (await fetch(yolo, site.url("/data.json"))).endswith('{"tide": "high"}')
    pdf = await fetch(yolo, site.url("/doc.pdf"))
    assert "--- page 1 of 2 ---\nAlpha" in pdf and "--- page 2 of 2 ---\nBeta" in pdf
    assert "--- page 1 of 1 ---\nSniffed" in await fetch(yolo, site.url("/untyped"))


async def test_prompt_without_a_model_returns_the_page_with_a_note(
    yolo: ToolContext, site: Site
) -> None:
    params = WebFetchTool.Params(url=site.url("/page"), prompt="When is high tide?")
    output = await WebFetchTool().run(params, yolo)
    assert output.content.startswith("(No model is available here to apply the prompt")
    assert "# High tide" in output.content


async def test_binary_content_is_refused_clearly(yolo: ToolContext, site: Site) -> None:
    message = r"binary content \(application/octet-stream, 256 bytes\) and was not read"
    with pytest.raises(ToolError, match=message):
        await fetch(yolo, site.url("/blob.bin"))


async def test_http_errors_and_unreachable_hosts(yolo: ToolContext, site: Site) -> None:
    with pytest.raises(ToolError, match="answered HTTP 404 Not Found"):
        await fetch(yolo, site.url("/missing"))
    site.close()
    with pytest.raises(ToolError, match="could not connect"):
        await fetch(yolo, site.url("/page"))
    with pytest.raises(ToolError, match="Could not resolve the host"):
        await fetch(yolo, "http://no-such-host.invalid/")


# --- redirects -----------------------------------------------------------------------


async def test_same_host_redirects_are_followed(yolo: ToolContext, site: Site) -> None:
    content = await fetch(yolo, site.url("/r1"))
    assert content.startswith(f"URL: {site.url('/page')}\n") and "# High tide" in content
    assert [site.hits[p] for p in ("/r1", "/r2", "/r3", "/page")] == [1, 1, 1, 1]


async def test_redirect_loops_stop(yolo: ToolContext, site: Site) -> None:
    with pytest.raises(ToolError, match="Too many redirects"):
        await fetch(yolo, site.url("/loop"))
    assert site.hits["/loop"] == 6


async def test_cross_host_redirect_comes_back_as_a_note(yolo: ToolContext, site: Site) -> None:
    content = await fetch(yolo, site.url("/away"))
    target = site.url("/page", host="localhost")
    assert f"redirects (HTTP 302) to another host: {target}" in content
    assert "call web_fetch with that URL" in content
    assert site.hits["/page"] == 0


# --- caps and the cache --------------------------------------------------------------


async def test_huge_page_is_capped_and_says_so(yolo: ToolContext, site: Site) -> None:
    content = await fetch(yolo, site.url("/huge"))
    assert len(content) < 101_000
    assert re.search(r"\[Content truncated: the text was cut at 9\d,\d{3} characters\.\]$", content)
    yolo.state.pop(CACHE_KEY)  # not from the cache this time
    small = WebFetchTool(FetchLimits(max_bytes=100_000))
    content = await fetch(yolo, site.url("/huge"), small)
    assert "only the first 97.7 KB of the response were read" in content


async def test_slow_page_hits_the_time_cap(yolo: ToolContext, site: Site) -> None:
    tool = WebFetchTool(FetchLimits(timeout_s=0.3))
    with pytest.raises(ToolError, match=r"took longer than 0.3 s and was stopped"):
        await fetch(yolo, site.url("/slow"), tool)


async def test_waiting_for_the_user_does_not_count_against_the_time_cap(
    ctx: ToolContext, site: Site
) -> None:
    async def slow_yes(reason: str) -> bool:
        await asyncio.sleep(1.5)  # past the whole cap; the fetch after it has its 1 s
        return True

    CONFIRM.set(slow_yes)
    tool = WebFetchTool(FetchLimits(timeout_s=1.0))
    assert "# High tide" in await fetch(ctx, site.url("/page"), tool)


async def test_second_fetch_comes_from_the_cache(yolo: ToolContext, site: Site) -> None:
    now = [1000.0]
    yolo.state[CACHE_KEY] = PageCache(15 * 60, clock=lambda: now[0])
    tool = WebFetchTool()
    first = await tool.run(WebFetchTool.Params(url=site.url("/page")), yolo)
    now[0] += 14 * 60
    second = await tool.run(WebFetchTool.Params(url=site.url("/page")), yolo)
    assert second.content == first.content and second.data["cached"] is True
    assert site.hits["/page"] == 1
    now[0] += 2 * 60  # 16 minutes after the first fetch
    await tool.run(WebFetchTool.Params(url=site.url("/page")), yolo)
    assert site.hits["/page"] == 2


# --- the private-address rule --------------------------------------------------------


async def test_private_address_is_refused_without_approval(ctx: ToolContext, site: Site) -> None:
    with pytest.raises(ToolError, match=r"resolves to 127\.0\.0\.1, a loopback address"):
        await fetch(ctx, site.url("/page"))
    assert site.hits["/page"] == 0


async def test_private_address_asks_the_user(ctx: ToolContext, site: Site) -> None:
    asked: list[str] = []

    async def answer(reason: str) -> bool:
        asked.append(reason)
        return len(asked) > 1  # no, then yes

    CONFIRM.set(answer)
    with pytest.raises(ToolError, match="it was not given"):
        await fetch(ctx, site.url("/r1"))
    assert "# High tide" in await fetch(ctx, site.url("/r1"))
    assert len(asked) == 2  # once per call, not per redirect
    assert asked[0] == f"web_fetch: {site.url('/r1')} resolves to 127.0.0.1, a loopback address"


async def test_allow_rule_naming_the_host_skips_the_question(ctx: ToolContext, site: Site) -> None:
    ALLOWED_HOST.set(lambda host: host == "127.0.0.1")
    assert "# High tide" in await fetch(ctx, site.url("/page"))
    with pytest.raises(ToolError, match=r"localhost \(.*\), a loopback address"):
        await fetch(ctx, site.url("/page", host="localhost"))


# --- https, pinned to the checked address --------------------------------------------


def tls_pair(tmp: Path) -> tuple[Path, Path, Path]:
    """A test CA and a certificate for `localhost` it signed: (ca, cert, key) files."""
    pytest.importorskip("cryptography")
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def build(subject: str, public: Any, *, ca: bool) -> x509.CertificateBuilder:
        builder = x509.CertificateBuilder(
            subject_name=name(subject),
            issuer_name=name("web_fetch test CA"),
            public_key=public,
            serial_number=x509.random_serial_number(),
            not_valid_before=now - datetime.timedelta(days=1),
            not_valid_after=now + datetime.timedelta(days=1),
        )
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
        if not ca:
            san = x509.SubjectAlternativeName([x509.DNSName("localhost")])
            builder = builder.add_extension(san, False)
        return builder

    ca = build("web_fetch test CA", ca_key.public_key(), ca=True).sign(ca_key, hashes.SHA256())
    leaf = build("localhost", key.public_key(), ca=False).sign(ca_key, hashes.SHA256())
    pem = serialization.Encoding.PEM
    files = (tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem")
    files[0].write_bytes(ca.public_bytes(pem))
    files[1].write_bytes(leaf.public_bytes(pem))
    files[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


async def test_https_connects_to_the_checked_address_with_the_host_name(
    yolo: ToolContext, site: Site, tmp_path: Path
) -> None:
    import ssl

    ca, cert, key = tls_pair(tmp_path)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    site.server.socket = server_side.wrap_socket(site.server.socket, server_side=True)
    trust = ssl.create_default_context(cafile=str(ca))
    tool = WebFetchTool(verify=trust)
    url = f"https://localhost:{site.port}/page"
    content = await fetch(yolo, url, tool)
    assert content.startswith(f"URL: {url}\n") and "# High tide" in content
    assert site.hosts[-1] == f"localhost:{site.port}"
    with pytest.raises(ToolError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
        await fetch(yolo, f"https://127.0.0.1:{site.port}/page", tool)  # not its name


# --- through a session, with the scripted model --------------------------------------


class Approver:
    """Approves the call itself; answers the private-address question with `private`."""

    def __init__(self, *, private: bool) -> None:
        self.private = private
        self.requests: list[ApprovalRequest] = []

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        self.requests.append(request)
        return ApprovalAnswer(approved=request.source == "mode" or self.private)


async def session_in(
    root: Path, home: Path, *, mode: str, approver: Any = None, **flags: Any
) -> Session:
    settings = load_settings(Flags(approval_mode=mode, **flags), cwd=root, home=home)  # type: ignore[arg-type]
    return await open_session(
        settings,
        resolve_provider(settings),
        cwd=root,
        home=home,
        approver=approver or HeadlessApprover(mode),  # type: ignore[arg-type]
        headless=approver is None,
    )


async def results_of(session: Session, prompt: str) -> list[ToolResult]:
    try:
        events: list[Event] = [event async for event in session.run(prompt)]
    finally:
        await session.aclose()
    assert isinstance(events[-1], TurnEnd)
    return [e for e in events if isinstance(e, ToolResult)]


async def test_model_reads_a_page_and_asks_about_it(
    root: Path, tmp_path: Path, fake_llm: FakeLLM, site: Site
) -> None:
    fake_llm.script(
        tool_turn(call("web_fetch", url=site.url("/page"))),
        tool_turn(call("web_fetch", url=site.url("/page"), prompt="When is high tide?")),
        text("High tide is at 06:12."),
    )
    fake_llm.aux = text("High tide is at 06:12 (“High tide at 06:12”).")
    session = await session_in(root, tmp_path / "home", mode="yolo")
    plain, asked = await results_of(session, "when is high tide?")
    assert not plain.is_error and "# High tide" in plain.output
    assert (
        asked.output == f"URL: {site.url('/page')}\n\nHigh tide is at 06:12 (“High tide at 06:12”)."
    )
    assert site.hits["/page"] == 1  # the second call was served from the cache
    side = [r.body for r in fake_llm.chat_requests if r.body and not r.body.get("tools")]
    assert len(side) == 1
    messages = side[0]["messages"]
    assert messages[0] == {"role": "system", "content": ANSWER_SYSTEM}
    assert "High tide at **06:12**" in messages[1]["content"]
    assert messages[1]["content"].rstrip().endswith("When is high tide?")
    tools = next(r.body for r in fake_llm.chat_requests if r.body and r.body.get("tools"))
    schema = next(t for t in tools["tools"] if t["function"]["name"] == "web_fetch")
    assert list(schema["function"]["parameters"]["properties"]) == ["url", "prompt"]
    assert schema["function"]["parameters"]["required"] == ["url"]


async def test_headless_default_mode_refuses_and_the_server_is_not_reached(
    root: Path, tmp_path: Path, fake_llm: FakeLLM, site: Site
) -> None:
    fake_llm.script(tool_turn(call("web_fetch", url=site.url("/page"))), text("done"))
    session = await session_in(root, tmp_path / "home", mode="default")
    (result,) = await results_of(session, "fetch it")
    assert result.is_error and "WebFetch(domain:127.0.0.1)" in result.output
    assert site.hits["/page"] == 0


async def test_headless_with_a_domain_allow_rule_fetches(
    root: Path, tmp_path: Path, fake_llm: FakeLLM, site: Site
) -> None:
    fake_llm.script(tool_turn(call("web_fetch", url=site.url("/page"))), text("done"))
    rule = "WebFetch(domain:127.0.0.1)"
    session = await session_in(root, tmp_path / "home", mode="default", allowed_tools=[rule])
    (result,) = await results_of(session, "fetch it")
    assert not result.is_error and "# High tide" in result.output


@pytest.mark.parametrize("private", [False, True])
async def test_approved_call_still_asks_about_a_private_address(
    root: Path, tmp_path: Path, fake_llm: FakeLLM, site: Site, private: bool
) -> None:
    fake_llm.script(tool_turn(call("web_fetch", url=site.url("/page"))), text("done"))
    approver = Approver(private=private)
    session = await session_in(root, tmp_path / "home", mode="default", approver=approver)
    (result,) = await results_of(session, "fetch it")
    assert [r.source for r in approver.requests] == ["mode", "escalation"]
    assert "127.0.0.1, a loopback address" in approver.requests[1].reason
    assert result.is_error is not private
    assert site.hits["/page"] == int(private)
