"""The interactive part of an MCP OAuth sign-in: show the authorization URL, open the
browser, and take the redirect on a loopback callback server (127.0.0.1, /oauth/callback)."""

from __future__ import annotations

import html
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from mcp.client.auth import AuthorizationCodeResult


CALLBACK_PATH = "/oauth/callback"
SIGN_IN_TIMEOUT_S = 300.0
SIGNED_IN_PAGE = "qwen-code: signed in, you can close this tab"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class SignInError(Exception):
    """An interactive sign-in that did not finish: timed out, refused, or cannot listen."""


class SignIn:
    """Shows the authorization URL, opens the browser, and waits for the redirect.

    The callback server listens on 127.0.0.1 (see `listen`, which `oauth_auth` calls to learn
    the redirect URI before the client metadata is built) and answers the browser with
    SIGNED_IN_PAGE. Only a redirect carrying the `state` of the authorization URL counts.
    `show(url)` is how the caller prints the URL; `browser(url)` replaces `webbrowser.open`
    (tests); `open_browser=False` only shows the URL. Use it as a context manager, or `close`.
    """

    def __init__(
        self,
        show: Callable[[str], None],
        *,
        open_browser: bool = True,
        browser: Callable[[str], object] | None = None,
        timeout: float = SIGN_IN_TIMEOUT_S,
    ) -> None:
        self._show = show
        self._open_browser = open_browser
        self._browser = browser
        self.timeout = timeout
        self.redirect_uri: str | None = None
        self._path = CALLBACK_PATH
        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._state: str | None = None
        self._result: AuthorizationCodeResult | None = None
        self._error: str | None = None

    def __enter__(self) -> SignIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def listen(self, redirect_uri: str | None = None, *, port: int = 0) -> str:
        """Start the callback server (once) and return the redirect URI.

        With `redirect_uri` (one registered by hand) its port and path are used, and a port
        that is taken is an error. Otherwise `port` is tried first (0: any), falling back to
        any free port, and the URI is http://127.0.0.1:PORT/oauth/callback."""
        if self.redirect_uri is not None:
            return self.redirect_uri
        if redirect_uri is not None:
            parts = urlsplit(redirect_uri)
            if parts.scheme != "http" or parts.hostname not in _LOOPBACK or not parts.port:
                raise SignInError(
                    f"cannot take the redirect at {redirect_uri}: redirectUri must be "
                    "http://localhost:PORT/... or http://127.0.0.1:PORT/..."
                )
            try:
                self._start(parts.port, ipv6=parts.hostname == "::1")
            except OSError as exc:
                raise SignInError(
                    f"cannot listen for the redirect on port {parts.port}: {exc.strerror}"
                ) from exc
            self._path = parts.path or "/"
            self.redirect_uri = redirect_uri
            return redirect_uri
        try:
            bound = self._start(port)
        except OSError:
            if not port:
                raise
            bound = self._start(0)
        self.redirect_uri = f"http://127.0.0.1:{bound}{CALLBACK_PATH}"
        return self.redirect_uri

    async def redirect(self, url: str) -> None:
        """The SDK's redirect handler: show the URL and open the browser on it."""
        if self._server is None:
            raise SignInError("the sign-in is closed")
        with self._lock:
            self._state = parse_qs(urlsplit(url).query).get("state", [None])[0]
            self._result, self._error = None, None
            self._done.clear()
        self._show(url)
        opener = self._browser
        if opener is None and self._open_browser and browser_available():
            import webbrowser

            opener = webbrowser.open
        if opener is not None:
            import anyio.to_thread

            try:
                await anyio.to_thread.run_sync(opener, url)
            except Exception as exc:  # the URL was shown: the user can open it by hand
                logging.getLogger(__name__).debug("could not open a browser: %s", exc)

    async def callback(self) -> AuthorizationCodeResult:
        """The SDK's callback handler: wait for the redirect (up to `timeout`)."""
        import anyio.to_thread

        done = await anyio.to_thread.run_sync(self._done.wait, self.timeout, abandon_on_cancel=True)
        with self._lock:
            if not done:
                raise SignInError(
                    f"no sign-in within {self.timeout:g} s: the browser did not come back "
                    f"to {self.redirect_uri}"
                )
            if self._result is None:
                raise SignInError(self._error or "the sign-in was cancelled")
            return self._result

    def close(self) -> None:
        server, self._server = self._server, None
        with self._lock:
            if not self._done.is_set():
                self._error = self._error or "the sign-in was cancelled"
                self._done.set()
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def _start(self, port: int, *, ipv6: bool = False) -> int:
        from http.server import HTTPServer

        class HTTPServer6(HTTPServer):
            address_family = socket.AF_INET6

        kind = HTTPServer6 if ipv6 else HTTPServer
        server = kind(("::1" if ipv6 else "127.0.0.1", port), _handler_for(self))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return int(server.server_address[1])

    def _arrived(self, query: Mapping[str, list[str]]) -> tuple[int, str]:
        """A request on the callback path: (status, page text)."""

        def first(key: str) -> str | None:
            return query.get(key, [None])[0]

        with self._lock:
            if self._done.is_set():
                return 409, "qwen-code: this sign-in has already finished"
            if self._state is None or first("state") != self._state:
                return 400, "qwen-code: this is not the sign-in qwen-code is waiting for"
            if error := first("error"):
                why = first("error_description")
                self._error = f"the authorization server refused: {error}" + (
                    f" ({why})" if why else ""
                )
                self._done.set()
                return 400, f"qwen-code: sign-in failed: {self._error}"
            code = first("code")
            if not code:
                return 400, "qwen-code: the redirect carried no authorization code"
            from mcp.client.auth import AuthorizationCodeResult

            self._result = AuthorizationCodeResult(
                code=code, state=first("state"), iss=first("iss")
            )
            self._done.set()
            return 200, SIGNED_IN_PAGE


def _handler_for(sign_in: SignIn) -> type[BaseHTTPRequestHandler]:
    from http.server import BaseHTTPRequestHandler

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != sign_in._path:
                status, text = 404, "not found"
            else:
                status, text = sign_in._arrived(parse_qs(url.query))
            body = (
                f"<!doctype html><html><head><meta charset='utf-8'><title>qwen-code</title>"
                f"</head><body><p>{html.escape(text)}</p></body></html>"
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # not on the user's terminal

    return Callback


def browser_available(env: Mapping[str, str] | None = None) -> bool:
    """Whether `webbrowser.open` can show a graphical browser: not over SSH, and on Linux
    only with a display (else it may start a console browser in the user's terminal)."""
    env = os.environ if env is None else env
    if env.get("BROWSER"):
        return True
    if env.get("SSH_CONNECTION") or env.get("SSH_TTY"):
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))
