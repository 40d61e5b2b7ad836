"""`qwen-code --acp` as an editor starts it: a real subprocess driven by the `acp`
package's own client side over its stdin/stdout, the model a scripted fake server.

Every wait is for an event (an update, a request, the prompt's answer), never a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from acp import PROTOCOL_VERSION, RequestError, spawn_agent_process, text_block
from acp.schema import (
    AllowedOutcome,
    ClientCapabilities,
    DeniedOutcome,
    FileSystemCapabilities,
    ReadTextFileResponse,
    RequestPermissionResponse,
    WriteTextFileResponse,
)

from tests.fakeserver import FakeLLM, HTTPError, Turn, call, error_body, text, tool_turn

TIMEOUT = 60
"""Only stops a hung test; nothing here waits for time to pass."""


class Editor:
    """The client side: records every update and permission request, answers permission
    requests with `answer` (an option id; None: cancelled), and serves `fs/*` from
    `buffers` when the capabilities say so."""

    def __init__(self, answer: str | None = "allow_once") -> None:
        self.answer = answer
        self.updates: list[Any] = []
        self.permissions: list[Any] = []
        self.buffers: dict[str, str] = {}
        self.written: dict[str, str] = {}
        self.changed = asyncio.Condition()

    async def request_permission(self, session_id: str, tool_call: Any, options: Any, **_: Any):
        async with self.changed:
            self.permissions.append((tool_call, [o.option_id for o in options]))
            self.changed.notify_all()
        if self.answer is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(option_id=self.answer, outcome="selected")
        )

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        async with self.changed:
            self.updates.append(update)
            self.changed.notify_all()

    async def read_text_file(self, session_id: str, path: str, **_: Any) -> ReadTextFileResponse:
        if path not in self.buffers:
            raise RequestError.resource_not_found(path)
        return ReadTextFileResponse(content=self.buffers[path])

    async def write_text_file(
        self, session_id: str, path: str, content: str, **_: Any
    ) -> WriteTextFileResponse:
        self.written[path] = content
        self.buffers[path] = content
        return WriteTextFileResponse()

    def on_connect(self, conn: Any) -> None:
        pass

    async def wait_for(self, kind: str) -> Any:
        """The first update of this kind (`agent_message_chunk`, `tool_call`, ...)."""
        async with self.changed:
            await self.changed.wait_for(lambda: self.of(kind))
            return self.of(kind)[0]

    def of(self, kind: str) -> list[Any]:
        return [u for u in self.updates if u.session_update == kind]

    def text(self, kind: str = "agent_message_chunk") -> str:
        return "".join(u.content.text for u in self.of(kind) if u.content.type == "text")


@contextlib.asynccontextmanager
async def agent(
    cwd: Path, editor: Editor, *, fs: bool = False, args: tuple[str, ...] = ()
) -> AsyncIterator[Any]:
    """`qwen-code --acp` running in `cwd`, initialized, with its stderr kept in
    `cwd/../acp-stderr.txt` (checked for tracebacks on the way out)."""
    log = cwd.parent / "acp-stderr.txt"
    with log.open("ab") as err:
        spawn = spawn_agent_process(
            editor,
            sys.executable,
            "-m",
            "qwen_code",
            "--acp",
            *args,
            cwd=cwd,
            env=dict(os.environ),
            transport_kwargs={"stderr": err},
        )
        async with spawn as (conn, _process):
            caps = ClientCapabilities(
                fs=FileSystemCapabilities(read_text_file=fs, write_text_file=fs)
            )
            init = await asyncio.wait_for(
                conn.initialize(protocol_version=PROTOCOL_VERSION, client_capabilities=caps),
                TIMEOUT,
            )
            conn.init = init
            yield conn
    assert "Traceback" not in log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    path = tmp_path / "proj"
    path.mkdir()
    return path


async def new_session(conn: Any, cwd: Path) -> str:
    session = await asyncio.wait_for(conn.new_session(cwd=str(cwd), mcp_servers=[]), TIMEOUT)
    return session.session_id


async def prompt(conn: Any, session_id: str, words: str) -> str:
    response = await asyncio.wait_for(
        conn.prompt(session_id=session_id, prompt=[text_block(words)]), TIMEOUT
    )
    return response.stop_reason


async def test_initialize_new_session_and_a_streamed_turn(fake_llm: FakeLLM, proj: Path) -> None:
    fake_llm.script(text("Hello from the model, streamed in pieces."))
    editor = Editor()
    async with agent(proj, editor) as conn:
        caps = conn.init.agent_capabilities
        assert conn.init.protocol_version == PROTOCOL_VERSION
        assert caps.load_session is True
        assert caps.prompt_capabilities.image and caps.prompt_capabilities.embedded_context
        assert conn.init.agent_info.name == "qwen-code"
        await conn.authenticate(method_id="none")
        created = await conn.new_session(cwd=str(proj), mcp_servers=[])
        modes = [m.id for m in created.modes.available_modes]
        assert modes == ["default", "auto-edit", "plan", "yolo"]
        assert created.modes.current_mode_id == "default"
        assert {o.id for o in created.config_options} == {"mode", "model"}
        assert await prompt(conn, created.session_id, "say hello") == "end_turn"
    chunks = editor.of("agent_message_chunk")
    assert len(chunks) > 1  # streamed, not one block
    assert editor.text() == "Hello from the model, streamed in pieces."
    sent = fake_llm.chat_requests[0].body
    assert sent["messages"][-1] == {"role": "user", "content": "say hello"}


async def test_a_read_file_call_is_announced_and_completed(fake_llm: FakeLLM, proj: Path) -> None:
    (proj / "notes.txt").write_text("alpha\nbeta\n", encoding="utf-8")
    fake_llm.script(tool_turn(call("read_file", file_path="notes.txt")), text("It says alpha."))
    editor = Editor()
    async with agent(proj, editor) as conn:
        session_id = await new_session(conn, proj)
        assert await prompt(conn, session_id, "read notes") == "end_turn"
    start = editor.of("tool_call")[0]
    assert start.kind == "read"
    assert start.title == "Read notes.txt"
    assert start.status == "in_progress"  # reads run without asking
    assert [loc.path for loc in start.locations] == [str(proj / "notes.txt")]
    assert start.raw_input == {"file_path": "notes.txt"}
    done = editor.of("tool_call_update")[-1]
    assert done.tool_call_id == start.tool_call_id
    assert done.status == "completed"
    assert editor.permissions == []
    tool_message = fake_llm.chat_requests[1].body["messages"][-1]
    assert "alpha" in tool_message["content"]
    assert editor.text() == "It says alpha."


@pytest.mark.parametrize(
    ("answer", "status", "written"),
    [("allow_once", "completed", True), ("reject_once", "failed", False)],
)
async def test_a_write_asks_the_editor(
    fake_llm: FakeLLM, proj: Path, answer: str, status: str, written: bool
) -> None:
    fake_llm.script(
        tool_turn(call("write_file", file_path="new.txt", content="fresh\n")), text("Done.")
    )
    editor = Editor(answer=answer)
    async with agent(proj, editor) as conn:
        session_id = await new_session(conn, proj)
        assert await prompt(conn, session_id, "write it") == "end_turn"
    start = editor.of("tool_call")[0]
    assert (start.kind, start.status, start.title) == ("edit", "pending", "Write new.txt")
    diff = start.content[0]
    assert (diff.type, diff.path, diff.old_text, diff.new_text) == (
        "diff",
        str(proj / "new.txt"),
        None,
        "fresh\n",
    )
    [(asked, options)] = editor.permissions
    assert asked.tool_call_id == start.tool_call_id
    assert asked.content[0].new_text == "fresh\n"
    assert options == ["allow_once", "allow_always", "reject_once"]
    assert editor.of("tool_call_update")[-1].status == status
    assert (proj / "new.txt").exists() is written
    if not written:
        assert "denied" in fake_llm.chat_requests[1].body["messages"][-1]["content"]


async def test_allow_always_is_remembered_for_the_session(fake_llm: FakeLLM, proj: Path) -> None:
    fake_llm.script(
        tool_turn(call("run_shell_command", command="echo one")),
        tool_turn(call("run_shell_command", command="echo two")),
        text("Ran both."),
    )
    editor = Editor(answer="allow_always")
    async with agent(proj, editor) as conn:
        session_id = await new_session(conn, proj)
        assert await prompt(conn, session_id, "run them") == "end_turn"
    assert len(editor.permissions) == 1  # `echo two` matched the rule `echo one` added
    starts = editor.of("tool_call")
    assert [s.kind for s in starts] == ["execute", "execute"]
    assert [s.title for s in starts] == ["echo one", "echo two"]
    assert [u.status for u in editor.of("tool_call_update") if u.status != "in_progress"] == [
        "completed",
        "completed",
    ]


async def test_cancel_stops_the_turn_and_the_session_goes_on(fake_llm: FakeLLM, proj: Path) -> None:
    fake_llm.script(Turn(text="la la la ", forever=True), text("Back again."))
    editor = Editor()
    async with agent(proj, editor) as conn:
        session_id = await new_session(conn, proj)
        running = asyncio.create_task(
            conn.prompt(session_id=session_id, prompt=[text_block("sing forever")])
        )
        await asyncio.wait_for(editor.wait_for("agent_message_chunk"), TIMEOUT)
        await conn.cancel(session_id=session_id)
        response = await asyncio.wait_for(running, TIMEOUT)
        assert response.stop_reason == "cancelled"
        editor.updates.clear()
        assert await prompt(conn, session_id, "and now?") == "end_turn"
    assert editor.text() == "Back again."
    history = fake_llm.chat_requests[1].body["messages"]
    assert history[-2]["role"] == "assistant"  # the cut-off reply was kept, and closed
    assert history[-1] == {"role": "user", "content": "and now?"}


async def test_set_mode_plan_refuses_writes_without_asking(fake_llm: FakeLLM, proj: Path) -> None:
    fake_llm.script(
        tool_turn(call("write_file", file_path="plan.txt", content="x")), text("I will plan.")
    )
    editor = Editor()
    async with agent(proj, editor) as conn:
        session_id = await new_session(conn, proj)
        await conn.set_session_mode(session_id=session_id, mode_id="plan")
        assert await prompt(conn, session_id, "write") == "end_turn"
        with pytest.raises(RequestError) as bad:
            await conn.set_session_mode(session_id=session_id, mode_id="reckless")
        assert bad.value.code == -32602
    assert editor.permissions == []
    assert editor.of("tool_call_update")[-1].status == "failed"
    assert not (proj / "plan.txt").exists()


async def test_yolo_and_model_through_config_options(fake_llm: FakeLLM, proj: Path) -> None:
    fake_llm.script(tool_turn(call("write_file", file_path="y.txt", content="y")), text("ok"))
    editor = Editor()
    async with agent(proj, editor) as conn:
        session_id = await new_session(conn, proj)
        changed = await conn.set_config_option(
            config_id="mode", session_id=session_id, value="yolo"
        )
        current = {o.id: o.current_value for o in changed.config_options}
        assert current["mode"] == "yolo"
        await conn.set_config_option(config_id="model", session_id=session_id, value="qwen-other")
        assert await prompt(conn, session_id, "write") == "end_turn"
    assert editor.permissions == []
    assert (proj / "y.txt").read_text() == "y"
    assert fake_llm.chat_requests[0].body["model"] == "qwen-other"


async def test_files_go_through_the_editor_when_it_offers(fake_llm: FakeLLM, proj: Path) -> None:
    on_disk = proj / "app.py"
    on_disk.write_text("print('saved')\n", encoding="utf-8")
    fake_llm.script(
        tool_turn(call("read_file", file_path="app.py")),
        tool_turn(
            call("edit", file_path="app.py", old_string="unsaved", new_string="edited"),
            call("write_file", file_path="new.py", content="x = 1\n"),
        ),
        text("Edited."),
    )
    editor = Editor(answer="allow_once")
    editor.buffers[str(on_disk)] = "print('unsaved')\n"
    async with agent(proj, editor, fs=True) as conn:
        session_id = await new_session(conn, proj)
        assert await prompt(conn, session_id, "edit the buffer") == "end_turn"
    assert "print('unsaved')" in fake_llm.chat_requests[1].body["messages"][-1]["content"]
    assert editor.written == {str(on_disk): "print('edited')\n", str(proj / "new.py"): "x = 1\n"}
    assert on_disk.read_text() == "print('saved')\n"  # the editor saves, not the agent
    assert not (proj / "new.py").exists()
    edit_start = editor.of("tool_call")[1]
    assert (edit_start.content[0].old_text, edit_start.content[0].new_text) == (
        "print('unsaved')\n",
        "print('edited')\n",
    )


async def test_the_todo_list_is_the_editors_plan(fake_llm: FakeLLM, proj: Path) -> None:
    todos = [
        {"id": "1", "content": "Read the code", "status": "completed"},
        {"id": "2", "content": "Fix the bug", "status": "in_progress"},
    ]
    fake_llm.script(tool_turn(call("todo_write", todos=todos)), text("Planned."))
    editor = Editor()
    async with agent(proj, editor) as conn:
        session_id = await new_session(conn, proj)
        assert await prompt(conn, session_id, "plan") == "end_turn"
    [plan] = editor.of("plan")
    assert [(e.content, e.status) for e in plan.entries] == [
        ("Read the code", "completed"),
        ("Fix the bug", "in_progress"),
    ]
    assert editor.of("tool_call")[0].kind == "think"


async def test_a_failing_model_server_ends_the_turn_with_a_message(
    fake_llm: FakeLLM, proj: Path
) -> None:
    fake_llm.script(HTTPError(400, error_body("the model is on fire", 400)))
    editor = Editor()
    async with agent(proj, editor) as conn:
        session_id = await new_session(conn, proj)
        assert await prompt(conn, session_id, "hello?") == "end_turn"
    assert "the model is on fire" in editor.text()


async def test_a_saved_session_loads_and_replays(fake_llm: FakeLLM, proj: Path) -> None:
    fake_llm.script(text("First answer."), text("Second answer."))
    async with agent(proj, Editor()) as conn:
        session_id = await new_session(conn, proj)
        assert await prompt(conn, session_id, "first question") == "end_turn"
    editor = Editor()
    async with agent(proj, editor) as conn:
        listed = await conn.list_sessions(cwd=str(proj))
        assert [s.session_id for s in listed.sessions] == [session_id]
        loaded = await conn.load_session(cwd=str(proj), session_id=session_id, mcp_servers=[])
        assert loaded.modes.current_mode_id == "default"
        assert editor.text("user_message_chunk") == "first question"
        assert editor.text() == "First answer."
        assert await prompt(conn, session_id, "second question") == "end_turn"
    roles = [m["role"] for m in fake_llm.chat_requests[1].body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]


async def test_bad_requests_get_json_rpc_errors(fake_llm: FakeLLM, proj: Path) -> None:
    async with agent(proj, Editor()) as conn:
        with pytest.raises(RequestError) as unknown:
            await conn.prompt(session_id="no-such-session", prompt=[text_block("hi")])
        assert unknown.value.code == -32602
        with pytest.raises(RequestError) as relative:
            await conn.new_session(cwd="relative/path", mcp_servers=[])
        assert relative.value.code == -32602
        with pytest.raises(RequestError) as missing:
            await conn.load_session(cwd=str(proj), session_id="nope", mcp_servers=[])
        assert missing.value.code == -32602
    assert fake_llm.chat_requests == []


async def test_malformed_lines_are_answered_not_fatal(fake_llm: FakeLLM, proj: Path) -> None:
    """Raw lines on the agent's stdin: not JSON, no method, bad params, an unknown
    method; each gets its JSON-RPC error and the agent goes on answering."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qwen_code",
        "--acp",
        cwd=proj,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    lines = [
        b"this is not json\n",
        b'{"jsonrpc": "2.0", "id": 1}\n',
        b'{"jsonrpc": "2.0", "id": 2, "method": 7}\n',
        b'{"jsonrpc": "2.0", "id": 3, "method": "session/new", "params": {"cwd": 5}}\n',
        b'{"jsonrpc": "2.0", "id": 4, "method": "no/such/method", "params": {}}\n',
        b'{"jsonrpc": "2.0", "id": 5, "method": "initialize", "params": {"protocolVersion": 1}}\n',
    ]
    process.stdin.write(b"".join(lines))
    await process.stdin.drain()
    answers = {}
    while 5 not in answers:
        line = await asyncio.wait_for(process.stdout.readline(), TIMEOUT)
        assert line, "the agent closed its output"
        message = json.loads(line)
        answers[message.get("id")] = message
    process.stdin.close()
    _, stderr = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert answers[None]["error"]["code"] == -32700
    assert answers[2]["error"]["code"] == -32600
    assert answers[3]["error"]["code"] == -32602
    assert answers[4]["error"]["code"] == -32601
    assert answers[5]["result"]["protocolVersion"] == PROTOCOL_VERSION
    assert process.returncode == 0
    assert b"Traceback" not in stderr


async def test_mcp_servers_from_the_editor_are_started(fake_llm: FakeLLM, proj: Path) -> None:
    from acp.schema import McpServerStdio

    from tests.mcp_helpers import server_script

    fake_llm.script(text("ok"))
    editor = Editor()
    script = str(server_script("tools_server"))
    async with agent(proj, editor) as conn:
        server = McpServerStdio(name="tools", command=sys.executable, args=[script], env=[])
        created = await conn.new_session(cwd=str(proj), mcp_servers=[server])
        assert await prompt(conn, created.session_id, "hi") == "end_turn"
    tools = [t["function"]["name"] for t in fake_llm.chat_requests[0].body["tools"]]
    assert "mcp__tools__echo" in tools


async def test_a_plan_approved_in_the_editor_switches_the_mode(
    fake_llm: FakeLLM, proj: Path
) -> None:
    fake_llm.script(
        tool_turn(call("exit_plan_mode", plan="1. Write the file.")),
        text("Switching to work."),
    )
    editor = Editor(answer="auto-edit")
    async with agent(proj, editor) as conn:
        session_id = await new_session(conn, proj)
        await conn.set_session_mode(session_id=session_id, mode_id="plan")
        assert await prompt(conn, session_id, "plan it") == "end_turn"
    [(asked, options)] = editor.permissions
    assert asked.tool_call_id == editor.of("tool_call")[0].tool_call_id
    assert asked.content[0].content.text == "1. Write the file."
    assert options == ["auto-edit", "default", "keep"]
    assert [u.current_mode_id for u in editor.of("current_mode_update")] == ["auto-edit"]
    [options_update] = editor.of("config_option_update")
    assert {o.id: o.current_value for o in options_update.config_options}["mode"] == "auto-edit"
    assert "approved the plan" in fake_llm.chat_requests[1].body["messages"][-1]["content"]
