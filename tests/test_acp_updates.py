"""The pieces of `--acp` in-process: events as updates, prompts as messages, the wire's
error answers, the replay of a saved session, and the file tools reading and writing
through an editor (`ToolContext.file_io`)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from acp import image_block, resource_block, resource_link_block, text_block
from acp.schema import HttpMcpServer, McpServerStdio, TextResourceContents
from PIL import Image

from qwen_code.acp.diffs import planned_diff
from qwen_code.acp.options import with_editor_servers
from qwen_code.acp.prompt import BLOCK_START, file_path, join_pieces, user_message
from qwen_code.acp.replay import history_updates
from qwen_code.acp.transport import parse_message
from qwen_code.acp.updates import (
    plan_from_todos,
    stop_reason,
    tool_finish,
    tool_kind,
    tool_locations,
    tool_title,
)
from qwen_code.agent.events import ToolCall, ToolResult, TurnEnd
from qwen_code.config import Flags
from qwen_code.llm.modalities import MODALITIES_KEY, Modalities
from qwen_code.tools.base import ToolContext
from qwen_code.tools.edit import EditTool
from qwen_code.tools.read import ReadFileTool
from qwen_code.tools.write import WriteFileTool


class Buffers:
    """A `FileIO` like an editor's: open buffers by path, writes recorded."""

    def __init__(self, buffers: dict[Path, str]) -> None:
        self.buffers = buffers
        self.writes: list[tuple[Path, str]] = []

    async def read_text(self, path: Path) -> str | None:
        return self.buffers.get(path)

    async def write_text(self, path: Path, text: str) -> bool | None:
        created = path not in self.buffers and not path.exists()  # noqa: ASYNC240
        self.writes.append((path, text))
        self.buffers[path] = text
        return created


def tool_call(name: str, **arguments: object) -> ToolCall:
    return ToolCall(id="c1", name=name, arguments=dict(arguments))


# --- events as updates --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "policy", "kind"),
    [
        ("read_file", "read", "read"),
        ("grep_search", "read", "search"),
        ("glob", "read", "search"),
        ("edit", "edit", "edit"),
        ("run_shell_command", "execute", "execute"),
        ("web_fetch", "network", "fetch"),
        ("todo_write", "think", "think"),
        ("exit_plan_mode", "think", "switch_mode"),
        ("mcp__x__lookup", "read", "read"),
        ("mcp__x__deploy", "execute", "execute"),
        ("mcp__x__odd", None, "other"),
    ],
)
def test_tool_kinds(name: str, policy: str | None, kind: str) -> None:
    assert tool_kind(name, policy) == kind


def test_titles_and_locations(tmp_path: Path) -> None:
    assert tool_title("read_file", "src/a.py") == "Read src/a.py"
    assert tool_title("run_shell_command", "pytest -q") == "pytest -q"
    assert tool_title("todo_write", "1/2 done") == "Update the plan"
    assert tool_title("mcp__x__y", "") == "mcp__x__y"
    found = tool_locations({"file_path": "a.py", "path": "/abs/dir", "content": "x"}, tmp_path)
    assert [loc.path for loc in found] == [str(tmp_path / "a.py"), "/abs/dir"]


def test_a_result_shows_its_display_and_an_error_its_output() -> None:
    call = tool_call("read_file", file_path="a.py")
    done = tool_finish(ToolResult(call=call, output="1\n2\n", display="Read 2 line(s)"))
    assert done.status == "completed"
    assert done.content[0].content.text == "Read 2 line(s)"
    failed = tool_finish(ToolResult(call=call, output="File not found", is_error=True))
    assert failed.status == "failed"
    assert failed.content[0].content.text == "File not found"


def test_stop_reasons() -> None:
    assert stop_reason(TurnEnd(reason="completed")) == "end_turn"
    assert stop_reason(TurnEnd(reason="max_turns")) == "max_turn_requests"
    assert stop_reason(TurnEnd(reason="error", error="boom")) == "end_turn"
    assert stop_reason(TurnEnd(reason="cancelled")) == "cancelled"
    assert stop_reason(TurnEnd(reason="completed"), "content_filter") == "refusal"


def test_the_todo_list_as_a_plan() -> None:
    plan = plan_from_todos(
        [
            {"id": "1", "content": "a", "status": "completed"},
            {"id": "2", "content": "b", "status": "weird"},
        ]
    )
    assert [(e.content, e.status) for e in plan.entries] == [("a", "completed"), ("b", "pending")]


# --- diffs --------------------------------------------------------------------------------


async def test_planned_diffs_of_edits_and_writes(ctx: ToolContext, root: Path) -> None:
    (root / "a.py").write_text("x = 1\ny = 2\n", encoding="utf-8")
    edit = await planned_diff(
        ctx, tool_call("edit", file_path="a.py", old_string="y = 2", new_string="y = 3")
    )
    assert edit is not None
    assert (edit.path, edit.old_text, edit.new_text) == (
        str(root / "a.py"),
        "x = 1\ny = 2\n",
        "x = 1\ny = 3\n",
    )
    new = await planned_diff(ctx, tool_call("write_file", file_path="b.py", content="z\r\n"))
    assert new is not None and (new.old_text, new.new_text) == (None, "z\n")
    missing = tool_call("edit", file_path="a.py", old_string="nowhere", new_string="q")
    assert await planned_diff(ctx, missing) is None
    assert (
        await planned_diff(
            ctx, tool_call("edit", file_path="../out.py", old_string="", new_string="q")
        )
        is None
    )
    assert await planned_diff(ctx, tool_call("read_file", file_path="a.py")) is None


# --- the file tools through an editor ------------------------------------------------------


async def test_read_edit_and_write_go_through_the_editor(ctx: ToolContext, root: Path) -> None:
    disk = root / "app.py"
    disk.write_text("print('saved')\n", encoding="utf-8")
    editor = Buffers({disk: "print('unsaved')\r\n"})
    ctx.file_io = editor
    read = await ReadFileTool().run(ReadFileTool.Params(file_path="app.py"), ctx)
    assert "print('unsaved')" in read.content
    edit = EditTool.Params(file_path="app.py", old_string="unsaved", new_string="edited")
    await EditTool().run(edit, ctx)
    write = WriteFileTool.Params(file_path="sub/new.py", content="x = 1\n")
    written = await WriteFileTool().run(write, ctx)
    assert editor.writes == [(disk, "print('edited')\r\n"), (root / "sub" / "new.py", "x = 1\n")]
    assert "created" in written.content
    assert disk.read_text() == "print('saved')\n"
    assert not (root / "sub" / "new.py").exists()


async def test_files_the_editor_leaves_are_read_from_disk(ctx: ToolContext, root: Path) -> None:
    class ReadOnly(Buffers):
        async def write_text(self, path: Path, text: str) -> bool | None:
            return None

    (root / "a.txt").write_text("on disk\n", encoding="utf-8")
    ctx.file_io = ReadOnly({})
    read = await ReadFileTool().run(ReadFileTool.Params(file_path="a.txt"), ctx)
    assert "on disk" in read.content
    await WriteFileTool().run(WriteFileTool.Params(file_path="a.txt", content="new\n"), ctx)
    assert (root / "a.txt").read_text() == "new\n"


# --- prompts ------------------------------------------------------------------------------


def png_base64() -> str:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")


async def test_a_prompt_with_mentions_and_an_image(ctx: ToolContext, root: Path) -> None:
    (root / "linked.py").write_text("LINKED = 1\n", encoding="utf-8")
    ctx.state[MODALITIES_KEY] = Modalities(model="vision", image=True)
    blocks = [
        text_block("compare"),
        resource_link_block("linked.py", (root / "linked.py").as_uri()),
        text_block(" with "),
        resource_block(TextResourceContents(uri=(root / "open.py").as_uri(), text="OPEN = 2\n")),
        text_block("and look:"),
        image_block(png_base64(), "image/png"),
    ]
    message = await user_message(ctx, blocks)
    assert message.text.startswith("compare @linked.py with @open.py and look: [image 1]")
    assert BLOCK_START in message.text
    assert "Content from @linked.py:\n```\nLINKED = 1\n```" in message.text
    assert "Content from @open.py:\n```\nOPEN = 2\n```" in message.text
    assert [part["type"] for part in message.media] == ["image_url"]
    assert message.notes == []


async def test_what_cannot_be_attached_is_noted(ctx: ToolContext, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("no", encoding="utf-8")
    message = await user_message(
        ctx,
        [
            text_block("see"),
            resource_link_block("secret", outside.as_uri()),
            image_block("not base64!", "image/png"),
        ],
    )
    assert "no" not in message.text.split("see", 1)[1].replace("not", "")
    assert len(message.notes) == 2
    assert message.media == ()


def test_joining_pieces_and_file_uris() -> None:
    assert (
        join_pieces(["look at", "@a.py", " and ", "@b.py", "now"]) == "look at @a.py and @b.py now"
    )
    assert file_path("file:///tmp/a%20b.py") == Path("/tmp/a b.py")
    assert file_path("/abs/x.py") == Path("/abs/x.py")
    assert file_path("https://example.com/x") is None


# --- the wire -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "code", "answer_id"),
    [
        (b"{oops", -32700, None),
        (b"[1, 2]", -32600, None),
        (b'{"jsonrpc": "2.0", "id": 9, "method": 5}', -32600, 9),
        (b'{"jsonrpc": "2.0", "id": [1], "method": null, "params": {}}', -32600, None),
    ],
)
def test_lines_that_are_not_messages_get_errors(line: bytes, code: int, answer_id: object) -> None:
    message, problem = parse_message(line)
    assert message is None and problem is not None
    assert problem["error"]["code"] == code
    assert problem["id"] == answer_id


def test_messages_pass_and_broken_notifications_are_dropped() -> None:
    request = b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}'
    assert parse_message(request) == (json.loads(request), None)
    response = b'{"jsonrpc": "2.0", "id": 3, "result": {}}'
    assert parse_message(response)[0] == json.loads(response)
    assert parse_message(b'{"jsonrpc": "2.0", "method": 4}') == (None, None)
    assert parse_message(b'{"jsonrpc": "2.0", "id": [3], "result": {}}') == (None, None)


# --- sessions -----------------------------------------------------------------------------


def test_a_saved_conversation_replays_in_order(tmp_path: Path) -> None:
    messages = [
        {"role": "user", "content": "fix it"},
        {
            "role": "assistant",
            "content": "Looking.",
            "tool_calls": [
                {
                    "id": "t1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"file_path": "a.py"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "x = 1"},
        {"role": "assistant", "content": [{"type": "text", "text": "Fixed."}]},
    ]
    updates = history_updates(messages, tmp_path)
    kinds = [u.session_update for u in updates]
    assert kinds == [
        "user_message_chunk",
        "agent_message_chunk",
        "tool_call",
        "tool_call_update",
        "agent_message_chunk",
    ]
    assert updates[2].title == "Read a.py"
    assert updates[2].locations[0].path == str(tmp_path / "a.py")
    assert updates[3].content[0].content.text == "x = 1"


def test_editor_mcp_servers_become_mcp_config() -> None:
    servers = [
        McpServerStdio(name="files", command="/bin/srv", args=["-v"], env=[]),
        HttpMcpServer(name="web", type="http", url="http://127.0.0.1:1/mcp", headers=[]),
    ]
    flags, notes = with_editor_servers(Flags(), servers)
    assert notes == []
    [given] = flags.mcp_config
    entries = json.loads(given)["mcpServers"]
    assert entries["files"] == {"command": "/bin/srv", "args": ["-v"], "env": {}}
    assert entries["web"] == {"type": "http", "url": "http://127.0.0.1:1/mcp", "headers": {}}
    assert with_editor_servers(Flags(), []) == (Flags(), [])
