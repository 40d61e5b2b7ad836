"""An MCP server whose tool list changes: `unlock` adds the tool `secret` and tells the
client (notifications/tools/list_changed). Stdio only."""

from __future__ import annotations

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("changing")


def secret() -> str:
    """The tool that appears after unlock."""
    return "the secret is 42"


@server.tool()
async def unlock(ctx: Context) -> str:
    """Add the `secret` tool."""
    server.add_tool(secret)
    await ctx.request_context.session.send_tool_list_changed()
    return "unlocked"


if __name__ == "__main__":
    server.run()
