"""A small MCP server with tools, a prompt and resources, for tests.

    python tools_server.py              serve over stdio
    python tools_server.py --http PORT  serve streamable HTTP at http://127.0.0.1:PORT/mcp
    python tools_server.py --sse PORT   serve legacy SSE at http://127.0.0.1:PORT/sse

With --http/--sse, PORT may be 0 (the OS picks one); once listening, the server writes
`READY <port>` to stderr. Environment: MCP_TEST_MARKER, when set, names a file written at
start-up (to prove the server was started).
"""

import argparse
import base64
import os
import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import Image, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations

# A 1x1 red RGBA pixel.
PNG_BASE64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ"
    "AAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
TABLE = {"alpha": "first letter", "beta": "second letter"}
README = "# Readme\nhello from the resource"

server = MCPServer("tools", log_level="WARNING")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def lookup(key: str) -> str:
    """Look a key up in a fixed table (read-only)."""
    return TABLE.get(key, f"no entry for {key}")


@server.tool()
def fail(message: str) -> CallToolResult:
    """Return an error result carrying the message."""
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


@server.tool(structured_output=False)
def picture():
    """Return a tiny PNG image and a caption."""
    return [Image(data=base64.b64decode(PNG_BASE64), format="png"), "a red pixel"]


@server.tool()
def write_marker(path: str) -> str:
    """Write a file at path (proof that the call happened)."""
    Path(path).write_text("called\n")
    return f"wrote {path}"


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep for the given number of seconds, then answer."""
    await anyio.sleep(seconds)
    return f"slept {seconds}"


@server.tool()
def env_value(name: str) -> str:
    """Return the server's environment variable `name`, or "<unset>"."""
    value = os.environ.get(name)
    return "<unset>" if value is None else value


@server.prompt()
def review(file: str, focus: str = "bugs") -> str:
    """Ask for a review of a file."""
    return f"Please review {file}, focusing on {focus}."


@server.resource("docs://readme", name="readme", mime_type="text/markdown")
def readme() -> str:
    return README


@server.resource("docs://notes/{topic}", name="notes", mime_type="text/plain")
def notes(topic: str) -> str:
    return f"notes about {topic}"


async def serve_http(app, port: int) -> None:
    """Serve a Starlette app on 127.0.0.1:port; write READY <port> to stderr once listening."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    web = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(web.serve)
        while not web.started:
            if web.should_exit:
                return
            await anyio.sleep(0.01)
        bound = web.servers[0].sockets[0].getsockname()[1]
        print(f"READY {bound}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, metavar="PORT")
    parser.add_argument("--sse", type=int, metavar="PORT")
    args = parser.parse_args()
    if marker := os.environ.get("MCP_TEST_MARKER"):
        Path(marker).write_text(f"{os.getpid()}\n")
    if args.http is not None:
        anyio.run(serve_http, server.streamable_http_app(host="127.0.0.1"), args.http)
    elif args.sse is not None:
        anyio.run(serve_http, server.sse_app(host="127.0.0.1"), args.sse)
    else:
        server.run()


if __name__ == "__main__":
    main()
