"""A stdio MCP server that dies mid-session: tool die() exits while handling the call."""

import os

from mcp.server.mcpserver import MCPServer

server = MCPServer("dying")


@server.tool()
def ok() -> str:
    """Return "ok"."""
    return "ok"


@server.tool()
def die() -> str:
    """Exit the server process (status 1) without replying."""
    os._exit(1)


if __name__ == "__main__":
    server.run()
