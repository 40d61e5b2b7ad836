"""OAuth sign-in for remote MCP servers, with the SDK's `OAuthClientProvider`.

The SDK does the protocol: on a 401 it discovers the protected-resource and
authorization-server metadata, registers a client dynamically, runs the authorization-code
grant with PKCE, and refreshes an expired access token. This module gives it the rest:

- `TokenFile`: where the tokens and the registered client live,
  `$QWEN_HOME/mcp-oauth/<name>.json` (mode 0600 in a 0700 directory), bound to the server's
  URL (a file written for another URL is ignored);
- `SignIn`: the interactive part. It shows the authorization URL, opens the browser, and
  takes the redirect on a loopback callback server (127.0.0.1, /oauth/callback);
- `oauth_auth`: the `httpx2.Auth` for one server. Without a `SignIn` it never asks the user:
  a server that needs a new authorization fails with `AuthRequired` ("run /mcp auth NAME");
- `needs_oauth`: whether a connection failure means "sign in";
- `authenticate`: the whole interactive sign-in of `/mcp auth NAME` (then reconnect).

The redirect URI is part of the client's registration, and the authorization server compares
it exactly, so it stays the same from one sign-in to the next: the port of the stored
registration is used again, and a new port (when that one is taken) means a new registration.
A configured `redirectUri` (or, with a configured `clientId`, Qwen Code's default
http://localhost:7777/oauth/callback) is used exactly as written.

Importing this module does not import the MCP SDK (about a second): that happens when a
provider is built or a token file is read.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import sys
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import AnyUrl, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

if TYPE_CHECKING:
    import httpx2
    from mcp.client.auth import AuthorizationCodeResult
    from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from qwen_code.mcp.oauth_signin import (
    CALLBACK_PATH,
    SIGN_IN_TIMEOUT_S,
    SIGNED_IN_PAGE,
    SignIn,
    SignInError,
    browser_available,
)
from qwen_code.mcp.oauth_tokens import TokenFile

__all__ = [
    "CALLBACK_PATH",
    "SIGNED_IN_PAGE",
    "SIGN_IN_TIMEOUT_S",
    "SignIn",
    "SignInError",
    "TokenFile",
    "browser_available",
]

DEFAULT_REDIRECT_URI = "http://localhost:7777/oauth/callback"
"""Qwen Code's redirect URI for a client registered by hand (`clientId` without `redirectUri`)."""
CLIENT_NAME = "qwen-code"
REFRESH_MARGIN_S = 60.0
"""Refresh this long before the access token expires (at most a tenth of its lifetime)."""


class AuthRequired(Exception):
    """The server needs a (new) authorization, and this connection may not ask the user."""

    def __init__(self, server: str) -> None:
        super().__init__(f"MCP server {server!r} needs sign-in: run /mcp auth {server}")
        self.server = server


class OAuthSettings(BaseModel):
    """A server's raw `oauth` entry (Qwen Code's keys); all optional.

    `clientId`/`clientSecret` name a client registered by hand (no dynamic registration);
    `redirectUri` is then the URI registered with it. `scopes` is what the client registers
    with and first asks for; the SDK then requests the scopes the server advertises.
    `authorizationUrl` and `tokenUrl` are accepted but not used: the SDK discovers the
    endpoints from the server's metadata (falling back to /authorize and /token at its origin).
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    enabled: bool | None = None
    client_id: str | None = None
    client_secret: str | None = None
    authorization_url: str | None = None
    token_url: str | None = None
    scopes: list[str] = Field(default_factory=list)
    redirect_uri: str | None = None

    @field_validator("redirect_uri")
    @classmethod
    def _spelled_as_registered(cls, value: str | None) -> str | None:
        return None if value is None else str(AnyUrl(value))  # as a stored registration has it

    @classmethod
    def from_raw(cls, raw: Any) -> OAuthSettings:
        """The settings from a raw `oauth` value (None, a dict, or already parsed).

        Raises `ValueError` (pydantic's `ValidationError`) for a malformed entry."""
        if raw is None:
            return cls()
        if isinstance(raw, OAuthSettings):
            return raw
        return cls.model_validate(raw)


def uses_oauth(oauth: Any, headers: Mapping[str, str]) -> bool:
    """Whether a remote server's connection should carry the OAuth provider.

    Yes unless `oauth.enabled` is false, or the user sends an `Authorization` header of their
    own (then only with `oauth.enabled: true`). With the provider, a server that never
    answers 401 costs nothing."""
    settings = OAuthSettings.from_raw(oauth)
    if settings.enabled is not None:
        return settings.enabled
    return not any(name.lower() == "authorization" for name in headers)


# --- the provider -----------------------------------------------------------------------------


@cache
def _provider_class() -> type[Any]:
    """The SDK's provider with what qwen-code adds (made on first use: the SDK is heavy)."""
    from mcp.client.auth import OAuthClientProvider
    from mcp.client.auth.oauth2 import OAuthContext

    @dataclasses.dataclass
    class Context(OAuthContext):
        """The SDK's context, taking a token as expired a little early: a request sent just
        before the expiry would be refused, and the SDK answers a 401 with a new
        authorization (a sign-in), not with a refresh."""

        def update_token_expiry(self, token: OAuthToken) -> None:
            super().update_token_expiry(token)
            if self.token_expiry_time is not None and token.expires_in:
                self.token_expiry_time -= min(REFRESH_MARGIN_S, int(token.expires_in) / 10)

    class Provider(OAuthClientProvider):
        """The SDK's provider, with an expiry taken a little early (`Context`), plus what a
        later process needs from the token file: when the access token expires (so it is
        refreshed before use rather than refused: the SDK answers a 401 with a new sign-in),
        the discovered token endpoint (the SDK would otherwise guess /token at the server's
        origin), and a client registered by hand."""

        def __init__(
            self,
            *,
            file: TokenFile,
            client: OAuthClientInformationFull | None,
            fresh: bool,
            **kwargs: Any,
        ) -> None:
            super().__init__(storage=file, **kwargs)
            fields = dataclasses.fields(self.context)
            self.context = Context(**{f.name: getattr(self.context, f.name) for f in fields})
            self._file = file
            self._client = client
            self._fresh = fresh
            file.metadata_source = lambda: self.context.oauth_metadata

        async def _initialize(self) -> None:
            await super()._initialize()
            if self._fresh:  # once: the tokens of this sign-in are loaded again later
                self._fresh = False
                self.context.current_tokens = None
            tokens = self.context.current_tokens
            if tokens is not None and tokens.expires_in is not None:
                self.context.update_token_expiry(tokens)
            if self.context.oauth_metadata is None:
                self.context.oauth_metadata = self._file.auth_metadata()
            if self._client is not None:
                self.context.client_info = self._client

    return Provider


def oauth_auth(
    name: str,
    url: str,
    home: Path,
    *,
    sign_in: SignIn | None,
    settings: Any = None,
    fresh: bool = False,
) -> httpx2.Auth:
    """The OAuth provider for server `name` at `url`, its tokens under `home`.

    With `sign_in` None it never asks the user: when the server needs a new authorization
    (no tokens, or a refresh that failed), the request fails with `AuthRequired`. With a
    `SignIn`, its callback server is started here (the redirect URI is in the client
    metadata). `settings` is the server's raw `oauth` entry (see `OAuthSettings`). `fresh`
    ignores the stored tokens (they stay in the file until new ones replace them), so that
    the first request asks for a new authorization."""
    from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata

    oauth = OAuthSettings.from_raw(settings)
    file = TokenFile(home, name, url)
    redirect_uri = _redirect_uri(file, oauth, sign_in)
    scope = " ".join(oauth.scopes) or None
    metadata = OAuthClientMetadata(
        client_name=CLIENT_NAME, redirect_uris=[AnyUrl(redirect_uri)], scope=scope
    )
    client = None
    if oauth.client_id:
        client = OAuthClientInformationFull(
            client_id=oauth.client_id,
            client_secret=oauth.client_secret,
            redirect_uris=[AnyUrl(redirect_uri)],
            token_endpoint_auth_method="client_secret_post" if oauth.client_secret else "none",
            scope=scope,
        )
    if sign_in is None:

        async def refuse(url: str) -> None:
            raise AuthRequired(name)

        async def no_code() -> AuthorizationCodeResult:
            raise AuthRequired(name)

        redirect_handler, callback_handler = refuse, no_code
    else:
        redirect_handler, callback_handler = sign_in.redirect, sign_in.callback
    return _provider_class()(
        file=file,
        client=client,
        fresh=fresh,
        server_url=url,
        client_metadata=metadata,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )


def _redirect_uri(file: TokenFile, oauth: OAuthSettings, sign_in: SignIn | None) -> str:
    """The redirect URI to register with (and, with `sign_in`, to listen on)."""
    stored = file.registered_redirect_uri()
    fixed = oauth.redirect_uri or (DEFAULT_REDIRECT_URI if oauth.client_id else None)
    if fixed is not None:
        if sign_in is not None:
            sign_in.listen(fixed)
        if not oauth.client_id and stored is not None and stored != fixed:
            file.forget_client()  # registered before redirectUri changed: register again
        return fixed
    if sign_in is None:
        return stored or f"http://127.0.0.1:{_free_port()}{CALLBACK_PATH}"
    uri = sign_in.listen(port=_our_port(stored))
    if stored is not None and uri != stored:
        file.forget_client()  # registered for another port: register again
    return uri


def _our_port(uri: str | None) -> int:
    """The port of a redirect URI this module made (http://127.0.0.1:PORT/oauth/callback)."""
    if uri is None:
        return 0
    parts = urlsplit(uri)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1" or parts.path != CALLBACK_PATH:
        return 0
    try:
        return parts.port or 0
    except ValueError:
        return 0


def _free_port() -> int:
    """A port to register with when there is no sign-in yet (the sign-in will try it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- failures and the interactive sign-in -----------------------------------------------------


def needs_oauth(exc: BaseException) -> bool:
    """Whether a connection failure means the user must sign in: an `AuthRequired` (or an
    HTTP 401 answer) anywhere in it, through exception groups, causes and contexts."""
    return _find(exc, lambda e: isinstance(e, AuthRequired) or _is_401(e)) is not None


def _is_401(exc: BaseException) -> bool:
    httpx2 = sys.modules.get("httpx2")  # not imported: then no error of it either
    return (
        httpx2 is not None
        and isinstance(exc, httpx2.HTTPStatusError)
        and exc.response.status_code == 401
    )


def _find(exc: BaseException, match: Callable[[BaseException], bool]) -> BaseException | None:
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if match(current):
            return current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(reversed(current.exceptions))
        if current.__context__ is not None:
            stack.append(current.__context__)
        if current.__cause__ is not None:
            stack.append(current.__cause__)
    return None


async def authenticate(
    name: str,
    url: str,
    home: Path,
    *,
    sign_in: SignIn,
    transport: Literal["http", "sse"] = "http",
    headers: Mapping[str, str] | None = None,
    settings: Any = None,
) -> None:
    """The interactive sign-in of `/mcp auth NAME`: connect with a provider that asks the
    user for a new authorization (whatever tokens are stored), and disconnect. The new tokens
    are then in the token file (the old ones stay if the sign-in fails), and a reconnection
    without a `SignIn` uses them.

    Raises `SignInError` (timed out, refused, cannot listen) or the SDK's `OAuthFlowError`
    (discovery, registration or token exchange failed), else what connecting raised."""
    from mcp import Client
    from mcp.shared._httpx_utils import create_mcp_http_client

    auth = oauth_auth(name, url, home, sign_in=sign_in, settings=settings, fresh=True)
    try:
        if transport == "sse":
            from mcp.client.sse import sse_client

            transport_cm = sse_client(url, headers=dict(headers or {}), auth=auth)
            async with Client(transport_cm, mode="legacy"):
                return
        from mcp.client.streamable_http import streamable_http_client

        http = create_mcp_http_client(headers=dict(headers or {}), auth=auth)
        async with http, Client(streamable_http_client(url, http_client=http), mode="legacy"):
            return
    except Exception as exc:
        from mcp.client.auth import OAuthFlowError

        inner = _find(exc, lambda e: isinstance(e, SignInError | OAuthFlowError))
        if inner is not None and inner is not exc:
            raise inner from None  # its own traceback says where; the groups add nothing
        raise


class _QuietOwnErrors(logging.Filter):
    """The SDK logs every failed OAuth flow with a traceback ("OAuth flow error"); ours
    (`AuthRequired`, `SignInError`) are reported to the user by qwen-code instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, AuthRequired | SignInError)


logging.getLogger("mcp.client.auth.oauth2").addFilter(_QuietOwnErrors())
