"""`@server:uri` references in a user message: attach MCP resources' contents.

As with `@path` attachments (`qwen_code.ui.attachments`), the message keeps the reference
as typed and what it points at is appended in one delimited block:

    <the user's text>

    --- Content from referenced resources ---
    Content from @docs:file:///spec.md (text/markdown):
    ```
    ...
    ```
    --- End of content ---

A reference is `@` at the start of the text or after whitespace or an opening bracket or
quote, then a configured server's name, a colon and the resource URI (up to the next
whitespace; trailing punctuation is dropped unless the server lists the URI with it). A
name that is no configured server is left alone: it is a file path for the attachment
code. Text contents are inlined, at most `MAX_RESOURCE_BYTES` in all; binary contents
become a one-line note (MIME type and size). A resource that cannot be read is noted in
the block and reported to the user.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qwen_code.ui.attachments import fenced

if TYPE_CHECKING:
    from qwen_code.mcp.connection import McpConnection
    from qwen_code.mcp.manager import McpManager

MAX_RESOURCE_BYTES = 100 * 1024
"""Text attached from resources, in all, per message (UTF-8 bytes)."""
BLOCK_START = "--- Content from referenced resources ---"
BLOCK_END = "--- End of content ---"

RESOURCE_RE = re.compile(r"(?<![^\s(\[{\"'])@([^\s:@/\\]+):(\S+)")
"""`@` at the start or after whitespace/`([{"'`, a server name, `:`, the URI."""
_TRAILING = ",.;:!?)]}'\""
"""Punctuation that ends a sentence rather than a URI."""
_NOT_STARTED = {
    "timeout": "timed out at start-up",
    "pending": "is still starting",
    "disabled": "is not running",
}


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """One `@server:uri` reference to a configured server."""

    server: str
    uri: str

    @property
    def shown(self) -> str:
        return f"@{self.server}:{self.uri}"


def find_mcp_references(text: str, manager: McpManager | None) -> list[ResourceRef]:
    """The `@server:uri` references in `text` whose server is configured in `manager`,
    in order, each once."""
    if manager is None:
        return []
    found: dict[ResourceRef, None] = {}
    for match in RESOURCE_RE.finditer(text):
        connection = manager.connection(match.group(1))
        if connection is None:
            continue
        uri = _resource_uri(match.group(2), connection)
        if uri:
            found.setdefault(ResourceRef(connection.name, uri), None)
    return list(found)


def _resource_uri(raw: str, connection: McpConnection) -> str:
    """`raw` minus trailing punctuation, unless the server lists a URI with (some of) it."""
    listed = {str(getattr(r, "uri", "")) for r in connection.listing.resources}
    candidate = raw
    while candidate:
        if candidate in listed:
            return candidate
        if candidate[-1] not in _TRAILING:
            break
        candidate = candidate[:-1]
    return raw.rstrip(_TRAILING)


async def expand_mcp_resources(text: str, manager: McpManager | None) -> tuple[str, list[str]]:
    """`text` with the contents of its `@server:uri` references appended (see the module
    docstring), and the errors to show the user (one line each)."""
    refs = find_mcp_references(text, manager)
    if not refs or manager is None:
        return text, []
    results = await asyncio.gather(*(_read(manager, ref) for ref in refs))
    budget = [MAX_RESOURCE_BYTES]
    sections: list[str] = []
    errors: list[str] = []
    for ref, (result, error) in zip(refs, results, strict=True):
        if error is not None:
            errors.append(f"{ref.shown}: {error}")
            sections.append(f"[{ref.shown}: could not be read: {error}]")
            continue
        contents = list(getattr(result, "contents", None) or [])
        if not contents:
            sections.append(f"[{ref.shown}: the server returned no content]")
        for content in contents:
            section, problem = _section(ref, content, budget)
            sections.append(section)
            if problem:
                errors.append(problem)
    block = "\n".join([BLOCK_START, *sections, BLOCK_END])
    return f"{text}\n\n{block}", errors


async def _read(manager: McpManager, ref: ResourceRef) -> tuple[Any, str | None]:
    """(the read result, None), or (None, why it could not be read)."""
    connection = manager.connection(ref.server)
    if connection is None:
        return None, f"no MCP server named {ref.server!r}"
    if ref.server in manager.skipped:
        return (
            None,
            f"the MCP server {ref.server!r} was not started ({manager.skipped[ref.server]})",
        )
    not_started = _NOT_STARTED.get(connection.state)
    if not_started is not None:
        return None, (
            f"the MCP server {ref.server!r} {not_started}; try /mcp reconnect {ref.server}"
        )
    try:
        return await connection.read_resource(ref.uri), None
    except Exception as exc:
        from qwen_code.mcp.tools import _connection_lost

        if _connection_lost(exc):
            connection.mark_dead(exc)
        return None, _one_line(exc)


def _section(ref: ResourceRef, content: Any, budget: list[int]) -> tuple[str, str | None]:
    """The block's section for one content item, and an error for the user (or None)."""
    uri = str(getattr(content, "uri", "") or ref.uri)
    shown = ref.shown if uri == ref.uri else f"{ref.shown} ({uri})"
    mime = getattr(content, "mime_type", None)
    text = getattr(content, "text", None)
    if text is None:
        size = _blob_size(getattr(content, "blob", "") or "")
        kind = mime or "unknown type"
        return f"[{shown}: binary resource ({kind}, {size:,} bytes), not included]", None
    data = str(text).encode("utf-8", "replace")
    if budget[0] <= 0:
        error = (
            f"{shown}: not included, the {MAX_RESOURCE_BYTES:,}-byte limit for resources is reached"
        )
        return f"[{error}]", error
    kept = data[: budget[0]]
    budget[0] -= len(kept)
    header = f"Content from {shown}" + (f" ({mime})" if mime else "") + ":"
    section = f"{header}\n{fenced(kept.decode('utf-8', 'ignore'))}"
    if len(kept) < len(data):
        section += f"\n[truncated: showing the first {len(kept):,} of {len(data):,} bytes]"
    return section, None


def _blob_size(blob: str) -> int:
    try:
        return len(base64.b64decode(blob, validate=False))
    except (binascii.Error, ValueError):
        return len(blob) * 3 // 4


def _one_line(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
