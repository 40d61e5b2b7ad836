"""An MCP server's tool as a qwen-code tool: `mcp__<server>__<tool>`, in the same registry
and under the same approvals as the built-ins.

The server's JSON schema goes to the model as it is (made an object schema where it is
not one), arguments go to the server unchanged (it validates them), and the result's
content blocks become one text result, capped like a built-in tool's output.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict

from qwen_code.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParams, truncate_text

if TYPE_CHECKING:
    from qwen_code.mcp.connection import McpConnection

_INVALID = re.compile(r"[^a-zA-Z0-9_-]")


def tool_name(server: str, tool: str) -> str:
    """Qwen Code's and Claude Code's naming, within the 64 characters OpenAI allows."""
    return _INVALID.sub("_", f"mcp__{server}__{tool}")[:64]


class McpParams(ToolParams):
    """Whatever the server's schema asks for; the server validates it."""

    model_config = ConfigDict(extra="allow")


class McpTool(Tool[McpParams]):
    Params = McpParams

    def __init__(self, connection: McpConnection, tool: Any, *, preapproved: bool) -> None:
        self.connection = connection
        self.remote_name: str = tool.name
        self.name = tool_name(connection.name, tool.name)  # type: ignore[misc]
        annotations = getattr(tool, "annotations", None)
        read_only = bool(annotations and getattr(annotations, "read_only_hint", False))
        self.kind = "read" if read_only else "execute"  # type: ignore[misc]
        self.preapproved = preapproved
        server = connection.config.description or connection.name
        text = (tool.description or "").strip() or f"The {tool.name} tool."
        self._description = f"{text}\n(MCP server: {server})"
        self._input_schema = _object_schema(getattr(tool, "input_schema", None))

    @property
    def description(self) -> str:
        return self._description or ""

    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self._input_schema,
            },
        }

    def summary(self, params: McpParams) -> str:
        text = json.dumps(params.model_dump(), ensure_ascii=False)
        return text if len(text) <= 80 else text[:79] + "…"

    async def run(self, params: McpParams, ctx: ToolContext) -> ToolOutput:
        arguments = params.model_dump()
        try:
            result = await self.connection.call_tool(self.remote_name, arguments)
        except Exception as exc:
            if _connection_lost(exc):
                self.connection.mark_dead(exc)
            raise ToolError(
                f"The MCP server {self.connection.name!r} failed the {self.remote_name} call: "
                f"{_one_line(exc)}"
            ) from exc
        await self.connection.settle()
        text = result_text(result)
        limits = ctx.limits
        text, _ = truncate_text(
            text, max_chars=limits.max_output_chars, max_lines=limits.max_output_lines
        )
        is_error = bool(getattr(result, "is_error", False))
        return ToolOutput(content=text or "(no output)", is_error=is_error)


def result_text(result: Any) -> str:
    """The content blocks as text: text as is, images and audio as a note (the model
    gets no pictures from tools yet), resources inline or as links; structured content
    when there is nothing else."""
    parts = [block_text(block) for block in getattr(result, "content", None) or ()]
    parts = [p for p in parts if p]
    structured = getattr(result, "structured_content", None)
    if not parts and structured is not None:
        parts.append(json.dumps(structured, ensure_ascii=False, indent=2))
    return "\n".join(parts)


def block_text(block: Any, *, origin: str = "the tool") -> str:
    """One MCP content block as text: text as is, the rest as a short note (binary data is
    never shown to the model)."""
    kind = getattr(block, "type", "")
    if kind == "text":
        return str(block.text)
    if kind in ("image", "audio"):
        size = len(getattr(block, "data", "") or "") * 3 // 4
        mime = getattr(block, "mime_type", "") or kind
        return f"[{kind} ({mime}, about {size:,} bytes) from {origin}, not shown here]"
    if kind == "resource_link":
        name = getattr(block, "name", "") or ""
        return f"[resource: {block.uri}{' ' + name if name else ''}]"
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        if text is not None:
            return f"[resource {resource.uri}]\n{text}"
        mime = getattr(resource, "mime_type", "") or "unknown type"
        return f"[binary resource {resource.uri} ({mime}), not included]"
    return f"[{kind or 'unknown'} content from {origin}, not included]" if kind else ""


def _object_schema(schema: Any) -> dict[str, Any]:
    """The tool's input schema, as an object schema with properties (what strict
    OpenAI-compatible servers require)."""
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    fixed = dict(schema)
    fixed.pop("$schema", None)
    if fixed.get("type") != "object":
        fixed["type"] = "object"
    fixed.setdefault("properties", {})
    return fixed


def _connection_lost(exc: BaseException) -> bool:
    names = {type(e).__name__ for e in _chain(exc)}
    lost = {"ClosedResourceError", "BrokenResourceError", "EndOfStream", "ConnectionError"}
    return bool(names & lost) or "Connection closed" in str(exc)


def _chain(exc: BaseException) -> list[BaseException]:
    found = [exc]
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found.extend(_chain(inner))
    if exc.__cause__ is not None:
        found.append(exc.__cause__)
    return found


def _one_line(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
