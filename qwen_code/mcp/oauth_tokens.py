"""Where an MCP server's OAuth tokens and registered client live:
`$QWEN_HOME/mcp-oauth/<name>.json` (mode 0600 in a 0700 directory), bound to the server's
URL (a file written for another URL is ignored). The SDK's `TokenStorage`."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from qwen_code.atomic import atomic_write

if TYPE_CHECKING:
    from mcp.shared.auth import OAuthClientInformationFull, OAuthMetadata, OAuthToken


class TokenFile:
    """The SDK's `TokenStorage` for one server, as `$QWEN_HOME/mcp-oauth/<name>.json`.

    The file holds the tokens (with the time the access token expires, so a later process
    refreshes it in time), the registered client, the authorization server's metadata (so a
    later process refreshes at the right token endpoint), and the server URL they belong to.
    A file for another URL reads as empty, and is replaced on the next write. Writes are
    atomic, the file is 0600 and its directory 0700.
    """

    def __init__(self, home: Path, server_name: str, server_url: str) -> None:
        self.home = Path(home)
        self.server_name = server_name
        self.server_url = server_url
        self.path = self.home / "mcp-oauth" / f"{_file_name(server_name)}.json"
        self.metadata_source: Callable[[], OAuthMetadata | None] | None = None
        """Asked on each `set_tokens` for the metadata to keep (set by `oauth_auth`)."""

    # -- the SDK's TokenStorage protocol --

    async def get_tokens(self) -> OAuthToken | None:
        """The stored tokens; `expires_in` counts from now (0 once the access token expired)."""
        from mcp.shared.auth import OAuthToken

        data = self._read()
        try:
            tokens = OAuthToken.model_validate(data["tokens"])
        except (KeyError, ValidationError):
            return None
        expires_at = data.get("expires_at")
        if isinstance(expires_at, int | float):
            tokens.expires_in = max(0, int(expires_at - time.time()))
        return tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        expires_at = None if tokens.expires_in is None else time.time() + int(tokens.expires_in)
        changes: dict[str, Any] = {
            "tokens": tokens.model_dump(mode="json", exclude_none=True),
            "expires_at": expires_at,
        }
        metadata = self.metadata_source() if self.metadata_source is not None else None
        if metadata is not None:
            changes["auth_metadata"] = metadata.model_dump(mode="json", exclude_none=True)
        self._update(changes)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        from mcp.shared.auth import OAuthClientInformationFull

        raw = self._read().get("client_info")
        try:
            return OAuthClientInformationFull.model_validate(raw) if raw else None
        except ValidationError:
            return None

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self._update({"client_info": client_info.model_dump(mode="json", exclude_none=True)})

    # -- for qwen-code --

    def has_tokens(self) -> bool:
        """Signed in: tokens are stored for this server's URL (they may still be refused)."""
        return isinstance(self._read().get("tokens"), dict)

    def auth_metadata(self) -> OAuthMetadata | None:
        from mcp.shared.auth import OAuthMetadata

        raw = self._read().get("auth_metadata")
        try:
            return OAuthMetadata.model_validate(raw) if raw else None
        except ValidationError:
            return None

    def registered_redirect_uri(self) -> str | None:
        raw = self._read().get("client_info")
        uris = raw.get("redirect_uris") if isinstance(raw, dict) else None
        return uris[0] if isinstance(uris, list) and uris and isinstance(uris[0], str) else None

    def forget_client(self) -> None:
        """Drop the registered client and its tokens (the next sign-in registers again)."""
        if self._read():
            self._update({"client_info": None, "tokens": None, "expires_at": None})

    def clear(self) -> None:
        """Sign out: forget everything stored for this server."""
        self.path.unlink(missing_ok=True)

    # -- the file --

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("server_url") != self.server_url:
            return {}
        return data

    def _update(self, changes: Mapping[str, Any]) -> None:
        data = {**self._read(), **changes}
        data.update(server_name=self.server_name, server_url=self.server_url)
        data = {key: value for key, value in data.items() if value is not None}
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
        # atomic_write keeps an existing file's mode: create it 0600 before the first write.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self.path.chmod(0o600)
        atomic_write(self.path, (json.dumps(data, indent=2) + "\n").encode())


def _file_name(server_name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in server_name)[:60]
    if safe != server_name or not safe:  # keep "a.b" and "a_b" apart
        safe = f"{safe}-{hashlib.sha256(server_name.encode()).hexdigest()[:8]}"
    return safe
