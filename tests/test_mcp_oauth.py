"""OAuth for remote MCP servers (`qwen_code.mcp.oauth`), against a real authorization server.

tests/mcp_servers/oauth_server.py is an MCP server behind OAuth with its own authorization
server (the SDK's server-side auth: dynamic registration, /authorize that redirects straight
back, /token with PKCE and refresh). Connections are made with the SDK directly; the "browser"
of a sign-in is an HTTP GET of the authorization URL that follows the redirects.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import OAuthToken
from mcp.types import TextContent

from qwen_code.mcp.oauth import (
    SIGNED_IN_PAGE,
    AuthRequired,
    OAuthSettings,
    SignIn,
    SignInError,
    TokenFile,
    authenticate,
    needs_oauth,
    oauth_auth,
    uses_oauth,
)
from tests.mcp_helpers import free_port, serving

SAFETY_S = 30.0
"""Safety net only: every step here takes well under a second."""


# --- the server and the browser ---------------------------------------------------------------


@contextmanager
def oauth_server(*args: str) -> Iterator[str]:
    """Run oauth_server.py on a port the OS picks; yield its base URL (http://127.0.0.1:PORT)."""
    with serving("oauth_server", "0", *args) as base:
        yield base


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """One server for the module: each test has a home of its own, and counts from `Stats`."""
    with oauth_server() as base:
        yield base


@pytest.fixture
def home() -> Path:
    return Path(os.environ["QWEN_HOME"])  # a fresh one per test (conftest's `isolated`)


class Browser:
    """Opens the authorization URL the way a browser would: GET, following redirects."""

    def __init__(self) -> None:
        self.pages: list[str] = []

    def __call__(self, url: str) -> None:
        with urllib.request.urlopen(url, timeout=SAFETY_S) as response:
            self.pages.append(response.read().decode())


def stats(base: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{base}/test/stats", timeout=SAFETY_S) as response:
        return json.loads(response.read())


class Stats:
    """What the authorization server did since this was made."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.start = stats(base)

    def since(self) -> dict[str, int]:
        now = stats(self.base)
        return {key: now[key] - self.start.get(key, 0) for key in now}


def counts(registrations: int, authorizations: int, refreshes: int = 0) -> dict[str, int]:
    return {
        "registrations": registrations,
        "authorizations": authorizations,
        "exchanges": authorizations,
        "refreshes": refreshes,
    }


def text_of(result: Any) -> str:
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


@asynccontextmanager
async def connect(url: str, auth: httpx2.Auth) -> AsyncIterator[Client]:
    with anyio.fail_after(SAFETY_S):
        http = create_mcp_http_client(auth=auth)
        async with http, Client(streamable_http_client(url, http_client=http)) as client:
            yield client


async def whoami(url: str, auth: httpx2.Auth) -> str:
    async with connect(url, auth) as client:
        return text_of(await client.call_tool("whoami", {}))


async def connect_error(url: str, auth: httpx2.Auth) -> BaseException:
    try:
        await whoami(url, auth)
    except BaseException as exc:  # the SDK raises exception groups from its task groups
        return exc
    raise AssertionError("connected without signing in")


async def sign_in(url: str, home: Path, browser: Browser | None = None) -> list[str]:
    """Sign in interactively (as /mcp auth does); the URLs shown to the user."""
    shown: list[str] = []
    with SignIn(shown.append, browser=browser or Browser(), timeout=SAFETY_S) as signing:
        assert await whoami(url, oauth_auth("srv", url, home, sign_in=signing)) == "authenticated"
    return shown


# --- the flow -------------------------------------------------------------------------------


async def test_first_connection_needs_sign_in(server: str, home: Path) -> None:
    url, done = f"{server}/mcp", Stats(server)
    exc = await connect_error(url, oauth_auth("srv", url, home, sign_in=None))
    assert needs_oauth(exc)
    assert "/mcp auth srv" in str(find(exc, AuthRequired))
    assert not TokenFile(home, "srv", url).has_tokens()
    assert done.since() == counts(registrations=1, authorizations=0)


async def test_sign_in_connects_and_keeps_tokens_in_their_own_file(server: str, home: Path) -> None:
    url, done = f"{server}/mcp", Stats(server)
    settings = home / "settings.json"
    settings.write_text(json.dumps({"mcpServers": {"srv": {"httpUrl": url}}}))
    browser = Browser()
    shown = await sign_in(url, home, browser)
    assert len(shown) == 1 and shown[0].startswith(f"{server}/as/authorize?")
    assert "code_challenge_method=S256" in shown[0]
    assert browser.pages and SIGNED_IN_PAGE in browser.pages[0]

    file = TokenFile(home, "srv", url)
    assert file.path == home / "mcp-oauth" / "srv.json"
    assert stat.S_IMODE(file.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(file.path.parent.stat().st_mode) == 0o700
    stored = json.loads(file.path.read_text())
    tokens = stored["tokens"]
    assert stored["server_url"] == url
    assert tokens["access_token"] and tokens["refresh_token"]
    secret = stored["client_info"]["client_secret"]
    assert not [p.name for p in file.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert json.loads(settings.read_text()) == {
        "mcpServers": {"srv": {"httpUrl": url}}
    }  # untouched
    for value in (tokens["access_token"], tokens["refresh_token"], secret):
        assert value not in settings.read_text()
    assert done.since() == counts(registrations=1, authorizations=1)


async def test_a_later_connection_uses_the_stored_tokens(server: str, home: Path) -> None:
    url, done = f"{server}/mcp", Stats(server)
    await sign_in(url, home)
    assert await whoami(url, oauth_auth("srv", url, home, sign_in=None)) == "authenticated"
    assert await whoami(url, oauth_auth("srv", url, home, sign_in=None)) == "authenticated"
    assert done.since() == counts(registrations=1, authorizations=1)


async def test_an_expired_access_token_is_refreshed(home: Path) -> None:
    with oauth_server("--token-ttl", "1") as base:
        url = f"{base}/mcp"
        file = TokenFile(home, "srv", url)
        shown: list[str] = []
        with SignIn(shown.append, browser=Browser(), timeout=SAFETY_S) as signing:
            auth = oauth_auth("srv", url, home, sign_in=signing)
            async with connect(url, auth) as client:
                first = await access_token(file)
                await wait_until_expired(url, file, first)
                # the same connection: the SDK refreshes before it sends the request
                assert text_of(await client.call_tool("whoami", {})) == "authenticated"
        second = await access_token(file)
        assert second != first
        assert stats(base)["refreshes"] == 1
        assert len(shown) == 1  # signed in once

        # a later connection (a new process): the stored expiry and token endpoint are used
        await wait_until_expired(url, file, second)
        assert await whoami(url, oauth_auth("srv", url, home, sign_in=None)) == "authenticated"
        assert await access_token(file) not in (first, second)
        assert stats(base) == counts(registrations=1, authorizations=1, refreshes=2)


async def access_token(file: TokenFile) -> str:
    tokens = await file.get_tokens()
    assert tokens is not None
    return tokens.access_token


async def wait_until_expired(url: str, file: TokenFile, token: str) -> None:
    """Poll until the server refuses `token` and the stored expiry has passed (generously)."""
    with anyio.fail_after(SAFETY_S):
        while True:
            expires_at = json.loads(file.path.read_text())["expires_at"]
            if time.time() > expires_at and not await server_accepts(url, token):
                return
            await anyio.sleep(0.1)


async def server_accepts(url: str, token: str) -> bool:
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json, text/event-stream",
            },
        )
    return response.status_code != 401


async def test_clear_forgets(server: str, home: Path) -> None:
    url = f"{server}/mcp"
    await sign_in(url, home)
    file = TokenFile(home, "srv", url)
    assert file.has_tokens()
    file.clear()
    assert not file.path.exists()
    assert not file.has_tokens() and await file.get_client_info() is None
    exc = await connect_error(url, oauth_auth("srv", url, home, sign_in=None))
    assert needs_oauth(exc)
    file.clear()  # nothing there: fine


async def test_authenticate_signs_in_again_and_keeps_the_registration(
    server: str, home: Path
) -> None:
    """`/mcp auth NAME`: a new authorization each time, the same registered client (the
    callback listens on the registered port again), and then a plain reconnection works."""
    url, done = f"{server}/mcp", Stats(server)
    shown: list[str] = []
    for _ in range(2):
        with SignIn(shown.append, browser=Browser(), timeout=SAFETY_S) as signing:
            with anyio.fail_after(SAFETY_S):
                await authenticate("srv", url, home, sign_in=signing)
        assert await whoami(url, oauth_auth("srv", url, home, sign_in=None)) == "authenticated"
    assert len(shown) == 2
    assert done.since() == counts(registrations=1, authorizations=2)


async def test_a_taken_callback_port_means_a_new_registration(server: str, home: Path) -> None:
    url = f"{server}/mcp"
    await sign_in(url, home)
    done = Stats(server)
    registered = TokenFile(home, "srv", url).registered_redirect_uri()
    assert registered is not None
    with SignIn(lambda url: None, browser=Browser(), timeout=SAFETY_S) as holder:
        holder.listen(port=int(registered.rsplit(":", 1)[1].split("/")[0]))  # take the port
        with SignIn(lambda url: None, browser=Browser(), timeout=SAFETY_S) as signing:
            with anyio.fail_after(SAFETY_S):
                await authenticate("srv", url, home, sign_in=signing)
            assert signing.redirect_uri != registered
    assert TokenFile(home, "srv", url).registered_redirect_uri() == signing.redirect_uri
    assert done.since() == counts(registrations=1, authorizations=1)


async def test_a_client_registered_by_hand(server: str, home: Path) -> None:
    """`oauth.clientId`/`clientSecret`/`redirectUri`: no dynamic registration by qwen-code."""
    url, done = f"{server}/mcp", Stats(server)
    redirect = f"http://localhost:{free_port()}/oauth/callback"
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            f"{server}/as/register",
            json={"redirect_uris": [redirect], "scope": "mcp", "client_name": "by hand"},
        )
    client = response.raise_for_status().json()
    settings = {
        "enabled": True,
        "clientId": client["client_id"],
        "clientSecret": client["client_secret"],
        "redirectUri": redirect,
    }
    shown: list[str] = []
    with SignIn(shown.append, browser=Browser(), timeout=SAFETY_S) as signing:
        with anyio.fail_after(SAFETY_S):
            await authenticate("srv", url, home, sign_in=signing, settings=settings)
    assert f"client_id={client['client_id']}" in shown[0]
    auth = oauth_auth("srv", url, home, sign_in=None, settings=settings)
    assert await whoami(url, auth) == "authenticated"
    assert done.since() == counts(registrations=1, authorizations=1)  # registered above


async def test_a_sign_in_gives_up_after_its_timeout(server: str, home: Path) -> None:
    """A browser that never comes back; the tokens of the last sign-in are kept."""
    url = f"{server}/mcp"
    await sign_in(url, home)
    before = json.loads(TokenFile(home, "srv", url).path.read_text())["tokens"]
    with (
        SignIn(lambda url: None, browser=lambda url: None, timeout=0.2) as signing,
        anyio.fail_after(SAFETY_S),
        pytest.raises(SignInError, match="no sign-in within"),
    ):
        await authenticate("srv", url, home, sign_in=signing)
    assert json.loads(TokenFile(home, "srv", url).path.read_text())["tokens"] == before
    assert await whoami(url, oauth_auth("srv", url, home, sign_in=None)) == "authenticated"


async def test_a_legacy_sse_server(home: Path) -> None:
    with oauth_server("--sse") as base:
        url, done = f"{base}/sse", Stats(base)

        async def whoami_sse() -> str:
            auth = oauth_auth("srv", url, home, sign_in=None)
            with anyio.fail_after(SAFETY_S):
                async with Client(sse_client(url, auth=auth)) as client:
                    return text_of(await client.call_tool("whoami", {}))

        with pytest.raises(BaseException) as failed:
            await whoami_sse()
        assert needs_oauth(failed.value)
        with SignIn(lambda url: None, browser=Browser(), timeout=SAFETY_S) as signing:
            with anyio.fail_after(SAFETY_S):
                await authenticate("srv", url, home, sign_in=signing, transport="sse")
        assert await whoami_sse() == "authenticated"
        assert done.since() == counts(registrations=1, authorizations=1)


# --- the callback server --------------------------------------------------------------------


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=SAFETY_S) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_the_callback_takes_only_the_awaited_state() -> None:
    shown: list[str] = []
    with SignIn(shown.append, open_browser=False, timeout=SAFETY_S) as signing:
        redirect = signing.listen()
        assert redirect.startswith("http://127.0.0.1:") and redirect.endswith("/oauth/callback")
        await signing.redirect("http://as.invalid/authorize?state=right&client_id=x")
        assert shown == ["http://as.invalid/authorize?state=right&client_id=x"]
        assert get(f"{redirect}?code=stolen&state=wrong")[0] == 400
        assert get(redirect.replace("/oauth/callback", "/elsewhere?code=c&state=right"))[0] == 404
        status, page = get(f"{redirect}?code=the-code&state=right")
        assert status == 200 and SIGNED_IN_PAGE in page
        result = await signing.callback()
        assert (result.code, result.state) == ("the-code", "right")
        assert get(f"{redirect}?code=again&state=right")[0] == 409


async def test_a_refused_authorization_is_an_error() -> None:
    with SignIn(lambda url: None, open_browser=False, timeout=SAFETY_S) as signing:
        redirect = signing.listen()
        await signing.redirect("http://as.invalid/authorize?state=s")
        status, page = get(f"{redirect}?error=access_denied&error_description=nope&state=s")
        assert status == 400 and "access_denied" in page
        with pytest.raises(SignInError, match="access_denied"):
            await signing.callback()


async def test_a_redirect_uri_that_is_not_local_is_refused() -> None:
    with (
        SignIn(lambda url: None, open_browser=False) as signing,
        pytest.raises(SignInError, match="redirectUri"),
    ):
        signing.listen("https://example.com/oauth/callback")


# --- the token file and the helpers ---------------------------------------------------------


async def test_a_token_file_for_another_url_is_ignored(home: Path) -> None:
    old = TokenFile(home, "srv", "http://127.0.0.1:1/mcp")
    await old.set_tokens(OAuthToken(access_token="old", refresh_token="r", expires_in=60))
    new = TokenFile(home, "srv", "http://127.0.0.1:2/mcp")
    assert new.path == old.path
    assert await new.get_tokens() is None and not new.has_tokens()
    await new.set_tokens(OAuthToken(access_token="new"))
    assert await old.get_tokens() is None
    tokens = await new.get_tokens()
    assert tokens is not None and tokens.access_token == "new" and tokens.expires_in is None


async def test_the_stored_expiry_counts_from_now(home: Path) -> None:
    file = TokenFile(home, "srv", "http://127.0.0.1:1/mcp")
    await file.set_tokens(OAuthToken(access_token="a", expires_in=3600))
    tokens = await file.get_tokens()
    assert tokens is not None and 3500 < (tokens.expires_in or 0) <= 3600
    data = json.loads(file.path.read_text())
    data["expires_at"] = time.time() - 10
    file.path.write_text(json.dumps(data))
    tokens = await file.get_tokens()
    assert tokens is not None and tokens.expires_in == 0


def test_token_file_names_stay_in_their_folder(home: Path) -> None:
    names = {TokenFile(home, name, "u").path for name in ("a/b", "a_b", "../x", "a.b")}
    assert len(names) == 4
    assert all(path.parent == home / "mcp-oauth" for path in names)


def test_needs_oauth() -> None:
    request = httpx2.Request("GET", "http://127.0.0.1:1/sse")
    unauthorized = httpx2.HTTPStatusError(
        "401", request=request, response=httpx2.Response(401, request=request)
    )
    forbidden = httpx2.HTTPStatusError(
        "403", request=request, response=httpx2.Response(403, request=request)
    )
    assert needs_oauth(AuthRequired("srv"))
    assert needs_oauth(
        ExceptionGroup("g", [ValueError(), ExceptionGroup("h", [AuthRequired("s")])])
    )
    assert needs_oauth(unauthorized)
    wrapped = RuntimeError("connect failed")
    wrapped.__cause__ = unauthorized
    assert needs_oauth(ExceptionGroup("g", [wrapped]))
    assert not needs_oauth(forbidden)
    assert not needs_oauth(ExceptionGroup("g", [ValueError("x"), SignInError("timed out")]))


def test_settings_and_when_to_use_oauth() -> None:
    settings = OAuthSettings.from_raw(
        {"enabled": True, "clientId": "id", "scopes": ["a", "b"], "redirectUri": "http://x/cb"}
    )
    assert (settings.client_id, settings.scopes, settings.redirect_uri) == (
        "id",
        ["a", "b"],
        "http://x/cb",
    )
    assert OAuthSettings.from_raw(None) == OAuthSettings()
    assert uses_oauth(None, {})
    assert not uses_oauth({"enabled": False}, {})
    assert not uses_oauth(None, {"authorization": "Bearer mine"})
    assert uses_oauth({"enabled": True}, {"Authorization": "Bearer mine"})


def test_importing_the_module_does_not_import_the_sdk() -> None:
    """config and status code may import it: the SDK (about a second) waits for a provider."""
    probe = "import sys, qwen_code.mcp.oauth\nprint('mcp' in sys.modules, 'httpx2' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False", "False"]


def find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := find(inner, kind)) is not None:
                return found
    return None


# --- in a session: "needs sign-in", /mcp auth in the REPL, then the tools work -------------------


async def test_a_session_signs_in_with_mcp_auth_and_uses_the_tools(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_llm: Any
) -> None:
    from qwen_code.config import qwen_home
    from tests.fakeserver import call, text, tool_turn
    from tests.helpers import bodies, git_init, output, repl_in, write_json

    project = tmp_path / "proj"
    project.mkdir()
    git_init(project)
    # The "browser": follows the authorization redirect back to qwen-code's callback.
    opener = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=30)"
    monkeypatch.setenv("BROWSER", f"{sys.executable} -c '{opener}' %s")
    with oauth_server() as base:
        write_json(
            qwen_home() / "settings.json", {"mcpServers": {"secure": {"httpUrl": f"{base}/mcp"}}}
        )
        async with repl_in(project, yolo=True) as (repl, _pipe):
            await repl.handle("/mcp")
            assert "needs sign-in: /mcp auth secure" in output(repl)
            await repl.handle("/mcp auth secure")
            shown = output(repl)
            assert "Signed in to secure." in shown and "secure: ✓ connected" in shown
            fake_llm.script(tool_turn(call("mcp__secure__whoami")), text("done"))
            await repl.handle("who am I?")
            assert "authenticated" in str(bodies(fake_llm)[-1]["messages"][-2:])
        token_files = list((qwen_home() / "mcp-oauth").iterdir())
        assert len(token_files) == 1 and (token_files[0].stat().st_mode & 0o777) == 0o600
