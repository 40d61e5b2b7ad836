"""Smoke tests for the MCP test servers in tests/mcp_servers/, driven by the SDK's own Client.

These check the servers (and the SDK behaviour qwen_code.mcp relies on), not qwen_code.
The anyio timeouts are safety nets, except in the hang tests, where a timeout is the point.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.types import ImageContent, TextContent

from tests.mcp_helpers import SERVERS, free_port, http_server, server_script, stdio_config

SAFETY_S = 30.0
TOOLS = {"echo", "add", "lookup", "fail", "picture", "write_marker", "slow", "env_value"}


def stdio(name: str, *args: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(**stdio_config(name, *args, env=env))


@asynccontextmanager
async def connect(server: Any, **kwargs: Any) -> AsyncIterator[Client]:
    with anyio.fail_after(SAFETY_S):
        async with Client(server, **kwargs) as client:
            yield client


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside (nested) exception groups; the SDK wraps connect failures in them."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


def text_of(result: Any) -> str:
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    with http_server("http") as url:
        yield url


@pytest.fixture(scope="module")
def sse_url() -> Iterator[str]:
    with http_server("sse") as url:
        yield url


# --- helpers ---------------------------------------------------------------------------


def test_helpers_shape() -> None:
    config = stdio_config("tools_server", "--x", env={"A": "1"}, trust=True)
    assert config == {
        "command": sys.executable,
        "args": [str(SERVERS / "tools_server.py"), "--x"],
        "env": {"A": "1"},
        "trust": True,
    }
    assert "env" not in stdio_config("crash_server")
    assert server_script("dying_server.py") == SERVERS / "dying_server.py"
    with pytest.raises(FileNotFoundError):
        server_script("no_such_server")
    assert 0 < free_port() < 65536


def test_servers_do_not_import_the_project() -> None:
    for script in SERVERS.glob("*.py"):
        source = script.read_text()
        assert "qwen_code" not in source and "from tests" not in source, script.name


# --- tools_server over stdio -------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_stdio_tour(mode: str, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    env = {"MCP_TEST_MARKER": str(marker), "MCP_TEST_ECHO_ENV": "passed through"}
    async with connect(stdio("tools_server", env=env), mode=mode) as client:
        assert marker.exists()
        assert {tool.name for tool in (await client.list_tools()).tools} == TOOLS
        assert text_of(await client.call_tool("echo", {"text": "hi there"})) == "hi there"
        assert (
            text_of(await client.call_tool("env_value", {"name": "MCP_TEST_ECHO_ENV"}))
            == "passed through"
        )
        assert (
            text_of(await client.call_tool("env_value", {"name": "MCP_TEST_UNSET_VAR"}))
            == "<unset>"
        )
        written = tmp_path / "called"
        await client.call_tool("write_marker", {"path": str(written)})
        assert written.read_text() == "called\n"


# --- tools_server over streamable HTTP (one server for the module) ------------------------


async def test_http_list_tools(http_url: str) -> None:
    assert http_url.startswith("http://127.0.0.1:") and http_url.endswith("/mcp")
    async with connect(http_url) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    assert tools["add"].input_schema["properties"] == {
        "a": {"title": "A", "type": "integer"},
        "b": {"title": "B", "type": "integer"},
    }
    assert tools["add"].input_schema["required"] == ["a", "b"]


async def test_http_legacy_handshake(http_url: str) -> None:
    async with connect(http_url, mode="legacy") as client:
        assert client.server_info is not None and client.server_info.name == "tools"
        assert {tool.name for tool in (await client.list_tools()).tools} == TOOLS
        assert text_of(await client.call_tool("add", {"a": 2, "b": 40})) == "42"


async def test_echo_and_add(http_url: str) -> None:
    async with connect(http_url) as client:
        echoed = await client.call_tool("echo", {"text": "héllo\nworld"})
        added = await client.call_tool("add", {"a": 2, "b": 3})
        bad = await client.call_tool("add", {"a": "two", "b": 3})
    assert not echoed.is_error and text_of(echoed) == "héllo\nworld"
    assert not added.is_error and text_of(added) == "5"
    assert added.structured_content == {"result": 5}
    assert bad.is_error  # argument validation fails as an error result, not an exception


async def test_lookup_is_read_only(http_url: str) -> None:
    async with connect(http_url) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        found = await client.call_tool("lookup", {"key": "alpha"})
    assert (
        tools["lookup"].annotations is not None
        and tools["lookup"].annotations.read_only_hint is True
    )
    assert tools["echo"].annotations is None
    assert text_of(found) == "first letter"


async def test_fail_returns_an_error_result(http_url: str) -> None:
    async with connect(http_url) as client:
        result = await client.call_tool("fail", {"message": "it broke"})
    assert result.is_error is True
    assert text_of(result) == "it broke"


async def test_picture(http_url: str) -> None:
    async with connect(http_url) as client:
        result = await client.call_tool("picture", {})
    image, caption = result.content
    assert isinstance(image, ImageContent) and image.mime_type == "image/png"
    assert base64.b64decode(image.data).startswith(b"\x89PNG\r\n\x1a\n")
    assert isinstance(caption, TextContent) and caption.text == "a red pixel"


async def test_slow(http_url: str) -> None:
    async with connect(http_url) as client:
        assert text_of(await client.call_tool("slow", {"seconds": 0.05})) == "slept 0.05"


async def test_prompt(http_url: str) -> None:
    async with connect(http_url) as client:
        (prompt,) = (await client.list_prompts()).prompts
        default = await client.get_prompt("review", {"file": "src/app.py"})
        focused = await client.get_prompt("review", {"file": "a.py", "focus": "style"})
    assert prompt.name == "review"
    assert [(a.name, a.required) for a in prompt.arguments or []] == [
        ("file", True),
        ("focus", False),
    ]
    (message,) = default.messages
    assert message.role == "user"
    assert isinstance(message.content, TextContent)
    assert "src/app.py" in message.content.text and "bugs" in message.content.text
    assert "style" in focused.messages[0].content.text


async def test_resources(http_url: str) -> None:
    async with connect(http_url) as client:
        (resource,) = (await client.list_resources()).resources
        (template,) = (await client.list_resource_templates()).resource_templates
        readme = await client.read_resource("docs://readme")
        notes = await client.read_resource("docs://notes/mcp")
    assert (resource.uri, resource.mime_type) == ("docs://readme", "text/markdown")
    assert template.uri_template == "docs://notes/{topic}"
    (content,) = readme.contents
    assert (
        content.text == "# Readme\nhello from the resource" and content.mime_type == "text/markdown"
    )
    assert notes.contents[0].text == "notes about mcp"


async def test_http_server_env_and_marker(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    with http_server(
        "http", env={"MCP_TEST_MARKER": str(marker), "MCP_TEST_ECHO_ENV": "yes"}
    ) as url:
        assert marker.exists()
        async with connect(url) as client:
            assert (
                text_of(await client.call_tool("env_value", {"name": "MCP_TEST_ECHO_ENV"})) == "yes"
            )


# --- tools_server over legacy SSE ------------------------------------------------------------


async def test_sse(sse_url: str) -> None:
    assert sse_url.endswith("/sse")
    async with connect(sse_client(sse_url)) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == TOOLS
        assert text_of(await client.call_tool("add", {"a": 1, "b": 2})) == "3"
        assert (await client.read_resource("docs://readme")).contents[0].text.startswith("# Readme")


# --- misbehaving servers ---------------------------------------------------------------------


async def test_crash_server_fails_to_connect() -> None:
    with pytest.raises(BaseException) as caught:
        async with connect(stdio("crash_server")):
            pass
    errors = list(leaves(caught.value))
    assert any(isinstance(e, MCPError) and "Connection closed" in str(e) for e in errors), errors


@pytest.mark.parametrize("args", [(), ("--linger",)], ids=["exits-on-eof", "lingers"])
async def test_hang_server_times_out(args: tuple[str, ...], tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    with pytest.raises(TimeoutError):
        with anyio.fail_after(2):
            async with Client(stdio("hang_server", *args, env={"MCP_TEST_MARKER": str(marker)})):
                pass
    # Leaving the client stopped the server, even one that ignores its stdin closing.
    pid = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_dying_server_dies_mid_session() -> None:
    async with connect(stdio("dying_server")) as client:
        assert text_of(await client.call_tool("ok")) == "ok"
        with pytest.raises(MCPError, match="Connection closed"):
            await client.call_tool("die")
        with pytest.raises(MCPError, match="Connection closed"):
            await client.call_tool("ok")
