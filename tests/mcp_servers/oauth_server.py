"""An MCP server behind OAuth, with its own authorization server, for tests.

    python oauth_server.py PORT [--token-ttl SECONDS] [--sse]

Serves streamable HTTP at http://127.0.0.1:PORT/mcp, or with --sse legacy SSE at
http://127.0.0.1:PORT/sse (PORT may be 0: the OS picks one); once listening it writes
`READY <port>` to stderr. Everything is the SDK's server-side auth support:

- the authorization server lives under /as (issuer http://127.0.0.1:PORT/as, metadata at
  /.well-known/oauth-authorization-server/as): dynamic client registration (/as/register),
  /as/authorize, which redirects straight back to the redirect_uri with a code (no login page,
  so a test "browser" only has to follow the redirect), and /as/token (authorization_code with
  the PKCE check, and refresh_token, which rotates both tokens);
- /mcp (or /sse and /messages/) needs a bearer token for that resource (else 401 with the
  WWW-Authenticate header naming the protected-resource metadata,
  /.well-known/oauth-protected-resource/mcp or .../sse), and offers one tool, `whoami`,
  which answers "authenticated".

Access tokens live `--token-ttl` seconds (default 3600). GET /test/stats answers how many
registrations, authorizations, code exchanges and refreshes the server has done, as JSON.
The authorization server sits on a path of its own so that a client which forgets the
discovered token endpoint (and guesses /token at the origin) fails visibly.
"""

import argparse
import math
import secrets
import socket
import sys
import time

import anyio
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    ProviderTokenVerifier,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.routes import create_auth_routes
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SCOPE = "mcp"
AS_PATH = "/as"
CODE_TTL_S = 300
REFRESH_TTL_S = 24 * 3600


class Provider:
    """An in-memory authorization server (the SDK's OAuthAuthorizationServerProvider)."""

    def __init__(self, token_ttl: int) -> None:
        self.token_ttl = token_ttl
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}
        self.stats = {"registrations": 0, "authorizations": 0, "exchanges": 0, "refreshes": 0}

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        self.clients[client_info.client_id] = client_info
        self.stats["registrations"] += 1

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        """No login page: the user is taken to have agreed, and is sent straight back."""
        code = AuthorizationCode(
            code=secrets.token_urlsafe(32),
            scopes=params.scopes or [SCOPE],
            expires_at=time.time() + CODE_TTL_S,
            client_id=client.client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
            subject="test-user",
        )
        self.codes[code.code] = code
        self.stats["authorizations"] += 1
        return construct_redirect_uri(str(params.redirect_uri), code=code.code, state=params.state)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        code = self.codes.get(authorization_code)
        if code is None or code.client_id != client.client_id or code.expires_at < time.time():
            return None
        return code

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        if self.codes.pop(authorization_code.code, None) is None:
            raise TokenError("invalid_grant", "authorization code already used")
        self.stats["exchanges"] += 1
        code = authorization_code
        return self._issue(client.client_id, code.scopes, code.resource, code.subject)

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        token = self.refresh.get(refresh_token)
        if token is None or token.client_id != client.client_id:
            return None
        if token.expires_at is not None and token.expires_at < time.time():
            return None
        return token

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        if self.refresh.pop(refresh_token.token, None) is None:
            raise TokenError("invalid_grant", "refresh token already used")
        self.stats["refreshes"] += 1
        granted = scopes or refresh_token.scopes
        return self._issue(client.client_id, granted, refresh_token.resource, refresh_token.subject)

    async def load_access_token(self, token: str) -> AccessToken | None:
        access = self.access.get(token)
        if access is None or (access.expires_at is not None and access.expires_at < time.time()):
            return None
        return access

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        self.access.pop(token.token, None)
        self.refresh.pop(token.token, None)

    def _issue(
        self, client_id: str, scopes: list[str], resource: str | None, subject: str | None
    ) -> OAuthToken:
        access = "at-" + secrets.token_urlsafe(24)
        refresh = "rt-" + secrets.token_urlsafe(24)
        now = time.time()
        self.access[access] = AccessToken(
            token=access,
            client_id=client_id,
            scopes=scopes,
            expires_at=math.ceil(now + self.token_ttl),  # never before the client's expiry
            resource=resource,
            subject=subject,
        )
        self.refresh[refresh] = RefreshToken(
            token=refresh,
            client_id=client_id,
            scopes=scopes,
            expires_at=int(now + REFRESH_TTL_S),
            resource=resource,
            subject=subject,
        )
        return OAuthToken(
            access_token=access,
            token_type="Bearer",
            expires_in=self.token_ttl,
            refresh_token=refresh,
            scope=" ".join(scopes),
        )


def build_app(port: int, token_ttl: int, sse: bool = False):
    """The Starlette app: the protected MCP endpoint plus the authorization server under /as."""
    base = f"http://127.0.0.1:{port}"
    endpoint = "/sse" if sse else "/mcp"
    provider = Provider(token_ttl)
    registration = ClientRegistrationOptions(
        enabled=True, valid_scopes=[SCOPE], default_scopes=[SCOPE]
    )
    server = MCPServer(
        "oauth-test",
        log_level="WARNING",
        token_verifier=ProviderTokenVerifier(provider),
        auth=AuthSettings(
            issuer_url=AnyHttpUrl(f"{base}{AS_PATH}"),
            resource_server_url=AnyHttpUrl(f"{base}{endpoint}"),
            required_scopes=[SCOPE],
            validate_token_resource=True,
        ),
    )

    @server.tool()
    def whoami() -> str:
        """Answer "authenticated" (the request carried a valid token)."""
        return "authenticated"

    app = server.sse_app(host="127.0.0.1") if sse else server.streamable_http_app(host="127.0.0.1")
    issuer = AnyHttpUrl(f"{base}{AS_PATH}")
    for route in create_auth_routes(
        provider, issuer_url=issuer, client_registration_options=registration
    ):
        assert isinstance(route, Route)
        if route.path.startswith("/.well-known/"):
            path = route.path + AS_PATH  # RFC 8414: the issuer's path goes after the well-known
        else:
            path = AS_PATH + route.path
        app.router.routes.append(Route(path, endpoint=route.endpoint, methods=route.methods))

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(provider.stats)

    app.router.routes.append(Route("/test/stats", endpoint=stats, methods=["GET"]))
    return app


async def serve(port: int, token_ttl: int, sse: bool) -> None:
    """Bind first (the URLs in the metadata need the port), then serve on that socket."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    bound = sock.getsockname()[1]
    app = build_app(bound, token_ttl, sse)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    web = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(web.serve, [sock])
        while not web.started:
            if web.should_exit:
                return
            await anyio.sleep(0.01)
        print(f"READY {bound}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int, help="0: the OS picks one (see the READY line)")
    parser.add_argument("--token-ttl", type=int, default=3600, metavar="SECONDS")
    parser.add_argument("--sse", action="store_true", help="legacy SSE at /sse, not /mcp")
    args = parser.parse_args()
    anyio.run(serve, args.port, args.token_ttl, args.sse)


if __name__ == "__main__":
    main()
