"""The in-process API (`from qwen_code import query, Client, Options`), against the scripted
model server: real sessions, real tools, real files."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import pytest

from qwen_code import (
    Allow,
    AssistantMessage,
    Client,
    Deny,
    Message,
    Options,
    ResultMessage,
    SdkError,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ToolPermissionContext,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
    query,
    tool,
)
from qwen_code.session.live import Session
from tests.fakeserver import FakeLLM, HTTPError, Turn, call, error_body, text, tool_turn

USAGE = {"prompt_tokens": 20_000, "completion_tokens": 1_000}
"""$0.025 a request at qwen3-coder-plus's built-in prices."""


async def collect(prompt: str, options: Options) -> list[Message]:
    return [message async for message in query(prompt, options=options)]


async def turn(client: Client, prompt: str) -> list[Message]:
    await client.query(prompt)
    return [message async for message in client.receive_response()]


def result_of(messages: list[Message]) -> ResultMessage:
    last = messages[-1]
    assert isinstance(last, ResultMessage), messages
    return last


def tool_results(messages: list[Message]) -> list[ToolResultBlock]:
    return [
        block
        for m in messages
        if isinstance(m, UserMessage) and isinstance(m.content, list)
        for block in m.content
        if isinstance(block, ToolResultBlock)
    ]


def request_messages(fake: FakeLLM, index: int) -> list[dict[str, Any]]:
    body = fake.chat_requests[index].body
    assert body is not None
    return body["messages"]  # type: ignore[no-any-return]


# --- query ---------------------------------------------------------------------------------


async def test_a_one_shot_query_yields_init_assistant_tool_result_and_result(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    (tmp_path / "a.py").write_text("A = 1\n")
    fake_llm.script(tool_turn(call("read_file", file_path="a.py")), text("A is one."))
    messages = await collect("what is A?", Options(cwd=tmp_path))

    init, first, result_block, answer, result = messages
    assert isinstance(init, SystemMessage) and init.subtype == "init"
    assert Path(init.data["cwd"]).name == tmp_path.name
    assert "read_file" in init.data["tools"]
    assert isinstance(first, AssistantMessage)
    assert isinstance(first.content[0], ToolUseBlock)
    assert (first.content[0].name, first.content[0].input) == ("read_file", {"file_path": "a.py"})
    assert isinstance(result_block, UserMessage)
    assert tool_results([result_block])[0].content == "A = 1"
    assert isinstance(answer, AssistantMessage) and answer.content == [TextBlock("A is one.")]
    assert answer.model == "qwen3-coder-plus"
    assert isinstance(result, ResultMessage)
    assert (result.subtype, result.is_error, result.result) == ("success", False, "A is one.")
    assert result.num_turns == 2
    assert result.session_id == init.data["session_id"] == answer.session_id
    assert result.raw["type"] == "result"  # the stream-json message it was made from
    assert "what is A?" in json.dumps(request_messages(fake_llm, 0))


async def test_a_model_server_failure_is_an_error_result(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(HTTPError(400, error_body("the model is on fire", 400)))
    result = result_of(await collect("hi", Options(cwd=tmp_path)))
    assert result.is_error
    assert result.subtype == "error_during_execution"
    assert result.error is not None and "the model is on fire" in result.error


async def test_the_provider_can_come_from_options_and_env(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(text("hello"))
    env = {"OPENAI_BASE_URL": fake_llm.base_url, "OPENAI_API_KEY": "k-from-env"}
    options = Options(cwd=tmp_path, env=env, model="my-model", home=tmp_path / "home")
    assert result_of(await collect("hi", options)).result == "hello"
    request = fake_llm.chat_requests[0]
    assert request.body is not None and request.body["model"] == "my-model"
    assert request.headers["authorization"] == "Bearer k-from-env"


# --- bad options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (Options(permission_mode="careful"), "permission_mode: 'careful'"),  # type: ignore[arg-type]
        (Options(allowed_tools=["Bash(git"]), "allowed_tools: 'Bash(git'"),
        (Options(disallowed_tools="Bash"), "give a list of rules"),
        (Options(max_budget_usd=0), "max_budget_usd: 0"),
        (Options(max_turns=0), "max_turns: 0"),
        (Options(json_schema={"type": "string"}), "json_schema:"),
        (Options(tools=[print]), "is not a tool"),  # type: ignore[list-item]
        (Options(resume="no-such-session"), "No saved session"),
    ],
)
async def test_bad_options_raise_sdk_error(
    tmp_path: Path, fake_llm: FakeLLM, options: Options, message: str
) -> None:
    options.cwd = tmp_path
    with pytest.raises(SdkError, match=message.replace("(", r"\(")):
        await collect("hi", options)
    assert fake_llm.chat_requests == []


async def test_missing_cwd_and_missing_provider_are_sdk_errors(tmp_path: Path) -> None:
    with pytest.raises(SdkError, match="is not a directory"):
        await collect("hi", Options(cwd=tmp_path / "nowhere"))
    with pytest.raises(SdkError, match="No model provider is configured"):
        await collect("hi", Options(cwd=tmp_path, env={}, home=tmp_path / "home"))


async def test_a_budget_needs_the_models_price(tmp_path: Path, fake_llm: FakeLLM) -> None:
    with pytest.raises(SdkError, match="price of 'my-local-model' is not known"):
        await collect("hi", Options(cwd=tmp_path, model="my-local-model", max_budget_usd=1))


async def test_client_methods_before_connect_raise(tmp_path: Path) -> None:
    client = Client(Options(cwd=tmp_path))
    assert client.session_id is None
    with pytest.raises(SdkError, match="not connected"):
        await client.query("hi")


# --- Client ---------------------------------------------------------------------------------


async def test_a_client_conversation_carries_the_first_exchange(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(text("The answer is 4."), text("Because 2 + 2 = 4."))
    async with Client(Options(cwd=tmp_path)) as client:
        first = await turn(client, "what is 2 + 2?")
        second = await turn(client, "why?")
        session_id = client.session_id
    assert result_of(first).result == "The answer is 4."
    assert result_of(second).result == "Because 2 + 2 = 4."
    assert result_of(first).session_id == result_of(second).session_id == session_id
    history = [(m["role"], m.get("content")) for m in request_messages(fake_llm, 1)[1:]]
    assert history == [
        ("user", "what is 2 + 2?"),
        ("assistant", "The answer is 4."),
        ("user", "why?"),
    ]


async def test_prompts_sent_together_are_answered_in_order(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(text("one"), text("two"))
    async with Client(Options(cwd=tmp_path)) as client:
        await client.query("first")
        await client.query("second")
        results = []
        async for message in client.receive_messages():
            if isinstance(message, ResultMessage):
                results.append(message.result)
                if len(results) == 2:
                    break
    assert results == ["one", "two"]


async def test_a_saved_session_can_be_resumed(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("noted: blue"), text("blue"))
    async with Client(Options(cwd=tmp_path)) as client:
        await turn(client, "my colour is blue")
        session_id = client.session_id
    assert session_id is not None
    messages = await collect("what is my colour?", Options(cwd=tmp_path, resume=session_id))
    assert result_of(messages).session_id == session_id
    assert "my colour is blue" in json.dumps(request_messages(fake_llm, 1))


async def test_set_model_changes_the_next_requests_model(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("a"), text("b"), text("c"))
    async with Client(Options(cwd=tmp_path)) as client:
        await turn(client, "one")
        await client.set_model("qwen3-coder-flash")
        await turn(client, "two")
        await client.set_model(None)
        await turn(client, "three")
    models = [r.body["model"] for r in fake_llm.chat_requests if r.body]
    assert models == ["qwen3-coder-plus", "qwen3-coder-flash", "qwen3-coder-plus"]


async def test_set_permission_mode_lets_edits_through(tmp_path: Path, fake_llm: FakeLLM) -> None:
    write = call("write_file", file_path="out.txt", content="hello\n")
    fake_llm.script(tool_turn(write), text("could not"), tool_turn(write), text("written"))
    async with Client(Options(cwd=tmp_path)) as client:
        denied = await turn(client, "write it")
        assert not (tmp_path / "out.txt").exists()
        assert [d["tool_name"] for d in result_of(denied).permission_denials or []] == [
            "write_file"
        ]
        await client.set_permission_mode("acceptEdits")
        allowed = await turn(client, "write it now")
    init = allowed[0]
    assert isinstance(init, SystemMessage) and init.data["permission_mode"] == "auto-edit"
    assert (tmp_path / "out.txt").read_text() == "hello\n"
    assert result_of(allowed).permission_denials == []
    with pytest.raises(SdkError, match="permission_mode"):
        await Client(Options(cwd=tmp_path)).set_permission_mode("sometimes")


async def test_context_usage_counts_the_conversation(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("hello", usage={"prompt_tokens": 20_000, "completion_tokens": 10}))
    async with Client(Options(cwd=tmp_path)) as client:
        before = await client.get_context_usage()
        await turn(client, "hi")
        after = await client.get_context_usage()
    assert before["model"] == "qwen3-coder-plus"
    assert before["totalTokens"] > 0  # the system prompt and tools, estimated
    assert after["totalTokens"] == 20_010  # the server's count
    window = after["maxTokens"]
    assert window is not None and after["percentage"] == round(100 * 20_010 / window, 1)


# --- closing --------------------------------------------------------------------------------


@pytest.fixture
def closed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the sessions closed (`Session.aclose`) during the test."""
    seen: list[str] = []
    original = Session.aclose

    async def aclose(self: Session) -> None:
        seen.append(self.id)
        await original(self)

    monkeypatch.setattr(Session, "aclose", aclose)
    return seen


async def test_the_session_closes_when_the_caller_fails(
    tmp_path: Path, fake_llm: FakeLLM, closed: list[str]
) -> None:
    fake_llm.script(text("hi"))
    with pytest.raises(RuntimeError, match="caller failed"):
        async with Client(Options(cwd=tmp_path)) as client:
            session_id = client.session_id
            await turn(client, "hi")
            raise RuntimeError("caller failed")
    assert closed == [session_id]


async def test_the_session_closes_when_the_caller_is_cancelled_mid_turn(
    tmp_path: Path, fake_llm: FakeLLM, closed: list[str]
) -> None:
    fake_llm.script(Turn(forever=True))
    streaming = asyncio.Event()

    async def consume() -> None:
        options = Options(cwd=tmp_path, include_partial_messages=True)
        async for message in query("talk forever", options=options):
            if isinstance(message, StreamEvent):
                streaming.set()

    task = asyncio.create_task(consume())
    await streaming.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(closed) == 1


# --- interrupts -----------------------------------------------------------------------------


async def test_interrupt_mid_stream_ends_the_turn_and_the_next_one_continues(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Turn(text="la la", forever=True), text("stopped, what now?"))
    async with Client(Options(cwd=tmp_path, include_partial_messages=True)) as client:
        await client.query("sing forever")
        messages = []
        async for message in client.receive_response():
            messages.append(message)
            if isinstance(message, StreamEvent) and len(messages) == 4:
                await client.interrupt()
        after = await turn(client, "stop singing")
    result = result_of(messages)
    assert (result.subtype, result.is_error) == ("error_interrupted", True)
    assert result_of(after).result == "stopped, what now?"
    history = request_messages(fake_llm, 1)
    assert history[-2]["role"] == "assistant" and "la la" in history[-2]["content"]


async def test_interrupt_between_turns_does_nothing(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text("fine"))
    async with Client(Options(cwd=tmp_path)) as client:
        await client.interrupt()
        assert result_of(await turn(client, "hi")).subtype == "success"


# --- can_use_tool ---------------------------------------------------------------------------


async def test_can_use_tool_denies_a_command_and_approves_an_edit(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    (tmp_path / "app.py").write_text("VALUE = 1\n")
    fake_llm.script(
        tool_turn(call("run_shell_command", command="touch hacked")),
        tool_turn(call("edit", file_path="app.py", old_string="VALUE = 1", new_string="VALUE = 2")),
        text("done"),
    )
    asked: list[tuple[str, ToolPermissionContext]] = []

    async def can_use_tool(name: str, arguments: dict[str, Any], context: ToolPermissionContext):  # type: ignore[no-untyped-def]
        asked.append((name, context))
        if name == "run_shell_command":
            return Deny("No shell commands here.")
        return Allow()

    messages = await collect("go", Options(cwd=tmp_path, can_use_tool=can_use_tool))
    assert not (tmp_path / "hacked").exists()
    assert (tmp_path / "app.py").read_text() == "VALUE = 2\n"
    denied, edited = tool_results(messages)
    assert (denied.is_error, denied.content) == (True, "No shell commands here.")
    assert edited.is_error is False
    assert [name for name, _ in asked] == ["run_shell_command", "edit"]
    shell, edit = asked[0][1], asked[1][1]
    assert (shell.kind, shell.summary, shell.permission_mode) == (
        "execute",
        "touch hacked",
        "default",
    )
    assert edit.kind == "edit" and edit.preview is not None and "+VALUE = 2" in edit.preview
    result = result_of(messages)
    assert [d["tool_name"] for d in result.permission_denials or []] == ["run_shell_command"]


async def test_can_use_tool_may_edit_the_input(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        tool_turn(call("write_file", file_path="note.txt", content="rm -rf /\n")), text("ok")
    )

    def can_use_tool(name: str, arguments: dict[str, Any], context: object) -> Allow:
        return Allow(updated_input={**arguments, "content": "be nice\n"})

    await collect("write", Options(cwd=tmp_path, can_use_tool=can_use_tool))
    assert (tmp_path / "note.txt").read_text() == "be nice\n"


async def test_rules_decide_before_the_callback(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        tool_turn(call("run_shell_command", command="echo allowed")),
        tool_turn(call("run_shell_command", command="echo refused")),
        text("done"),
    )
    asked: list[str] = []

    async def can_use_tool(name: str, arguments: dict[str, Any], context: object) -> Allow:
        asked.append(arguments["command"])
        return Allow()

    options = Options(
        cwd=tmp_path,
        can_use_tool=can_use_tool,
        allowed_tools=["Bash(echo allowed)"],
        disallowed_tools=["Bash(echo refused)"],
    )
    messages = await collect("go", options)
    assert asked == []
    allowed, refused = tool_results(messages)
    assert (allowed.is_error, "allowed" in str(allowed.content)) == (False, True)
    assert refused.is_error and "deny" in str(refused.content).lower()


async def test_deny_with_interrupt_ends_the_turn(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(tool_turn(call("run_shell_command", command="touch x")), text("never sent"))

    async def can_use_tool(name: str, arguments: dict[str, Any], context: object) -> Deny:
        return Deny("stop everything", interrupt=True)

    result = result_of(await collect("go", Options(cwd=tmp_path, can_use_tool=can_use_tool)))
    assert result.subtype == "error_interrupted"
    assert len(fake_llm.chat_requests) == 1
    assert not (tmp_path / "x").exists()


async def test_a_failing_callback_denies_the_call(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(tool_turn(call("run_shell_command", command="touch x")), text("ok"))

    async def can_use_tool(name: str, arguments: dict[str, Any], context: object) -> Allow:
        raise ValueError("policy server down")

    messages = await collect("go", Options(cwd=tmp_path, can_use_tool=can_use_tool))
    assert not (tmp_path / "x").exists()
    denial = tool_results(messages)[0]
    assert denial.is_error and "policy server down" in str(denial.content)
    assert result_of(messages).subtype == "success"


# --- custom tools ---------------------------------------------------------------------------


@tool("add_numbers", "Add two integers.", kind="read")
def add_numbers(a: int, b: Annotated[int, "the second number"] = 10) -> dict[str, int]:
    return {"sum": a + b}


@tool("explode", "Fails.", kind="read")
async def explode() -> str:
    raise RuntimeError("kaboom")


@tool("launch", "Launches something.")
async def launch(target: str) -> str:
    return f"launched {target}"


async def test_custom_tools_are_called_validated_and_fail_softly(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        tool_turn(call("add_numbers", a=2, b=3)),
        tool_turn(call("add_numbers", a="two")),
        tool_turn(call("explode")),
        tool_turn(call("launch", target="rocket")),
        text("done"),
    )
    options = Options(cwd=tmp_path, tools=[add_numbers, explode, launch])
    messages = await collect("use the tools", options)
    summed, invalid, exploded, launched = tool_results(messages)
    assert (summed.is_error, json.loads(str(summed.content))) == (False, {"sum": 5})
    assert invalid.is_error and "a:" in str(invalid.content)
    assert exploded.is_error and "RuntimeError: kaboom" in str(exploded.content)
    assert launched.is_error and "needs approval" in str(launched.content)  # not read-only
    assert result_of(messages).subtype == "success"
    body = fake_llm.chat_requests[0].body
    assert body is not None
    schema = next(t for t in body["tools"] if t["function"]["name"] == "add_numbers")["function"]
    assert schema["description"] == "Add two integers."
    assert schema["parameters"]["required"] == ["a"]
    assert schema["parameters"]["properties"]["b"]["description"] == "the second number"
    assert add_numbers(1, 2) == {"sum": 3}  # still the function


async def test_an_allow_rule_names_a_custom_tool(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(tool_turn(call("launch", target="probe")), text("done"))
    options = Options(cwd=tmp_path, tools=[launch], allowed_tools=["launch"])
    assert tool_results(await collect("go", options))[0].content == "launched probe"


def test_tool_definitions_are_checked() -> None:
    with pytest.raises(SdkError, match="not a tool name"):
        tool("has space", "x")
    with pytest.raises(SdkError, match="kind 'delete'"):
        tool("x", "x", kind="delete")  # type: ignore[arg-type]
    with pytest.raises(SdkError, match="needs a type hint"):
        tool("x", "x")(lambda value: value)
    with pytest.raises(SdkError, match="named parameter"):

        @tool("x", "x")
        def star(*values: int) -> int:
            return 0


async def test_a_custom_tool_may_not_take_a_builtin_name(tmp_path: Path, fake_llm: FakeLLM) -> None:
    @tool("read_file", "Mine.", kind="read")
    def read_file(file_path: str) -> str:
        return "mine"

    with pytest.raises(SdkError, match="'read_file' is already a tool"):
        await collect("hi", Options(cwd=tmp_path, tools=[read_file]))


# --- limits ---------------------------------------------------------------------------------


async def test_json_schema_gives_structured_output(tmp_path: Path, fake_llm: FakeLLM) -> None:
    schema = {
        "type": "object",
        "properties": {"risk": {"type": "string", "enum": ["low", "high"]}},
        "required": ["risk"],
    }
    fake_llm.script(
        tool_turn(call("structured_output", risk="medium")),
        tool_turn(call("structured_output", risk="low")),
    )
    result = result_of(await collect("assess", Options(cwd=tmp_path, json_schema=schema)))
    assert (result.subtype, result.structured_output) == ("success", {"risk": "low"})
    assert json.loads(result.result or "") == {"risk": "low"}
    assert "structured_output tool" in json.dumps(request_messages(fake_llm, 0))


async def test_max_budget_usd_stops_the_run(tmp_path: Path, fake_llm: FakeLLM) -> None:
    (tmp_path / "a.py").write_text("A = 1\n")
    read = call("read_file", file_path="a.py")
    fake_llm.script(
        tool_turn(read, usage=USAGE), tool_turn(read, usage=USAGE), text("done", usage=USAGE)
    )
    messages = await collect("read", Options(cwd=tmp_path, max_budget_usd=0.04))
    result = result_of(messages)
    assert (result.subtype, result.is_error) == ("error_max_budget_usd", True)
    assert result.total_cost_usd == pytest.approx(0.05)
    assert len(fake_llm.chat_requests) == 2
    assert len(tool_results(messages)) == 1


async def test_max_turns_stops_the_run(tmp_path: Path, fake_llm: FakeLLM) -> None:
    (tmp_path / "a.py").write_text("A = 1\n")
    read = call("read_file", file_path="a.py")
    fake_llm.script(tool_turn(read), tool_turn(read), text("done"))
    result = result_of(await collect("read", Options(cwd=tmp_path, max_turns=1)))
    assert (result.subtype, result.num_turns) == ("error_max_turns", 1)


# --- checkpoints ----------------------------------------------------------------------------


async def test_rewind_files_puts_a_checkpoint_back(tmp_path: Path, fake_llm: FakeLLM) -> None:
    (tmp_path / "app.py").write_text("VALUE = 1\n")
    fake_llm.script(
        tool_turn(call("edit", file_path="app.py", old_string="VALUE = 1", new_string="VALUE = 2")),
        tool_turn(call("write_file", file_path="new.py", content="NEW = 1\n")),
        text("changed"),
    )
    async with Client(Options(cwd=tmp_path, permission_mode="auto-edit")) as client:
        await turn(client, "change it")
        assert (tmp_path / "app.py").read_text() == "VALUE = 2\n"
        checkpoints = await client.list_checkpoints()
        assert [c.prompt for c in checkpoints] == ["change it"]
        changed = await client.rewind_files(checkpoints[0].id)
        with pytest.raises(SdkError, match="rewind_files"):
            await client.rewind_files("0000000")
    assert (tmp_path / "app.py").read_text() == "VALUE = 1\n"
    assert not (tmp_path / "new.py").exists()
    assert sorted(changed) == ["app.py", "new.py"]


def test_the_lazy_exports_are_the_sdks() -> None:
    """`qwen_code` lists the in-process API without importing it; the list must stay the
    SDK's own."""
    import qwen_code
    import qwen_code.sdk

    exported = set(qwen_code.__all__) - {"__version__"}
    assert exported <= set(qwen_code.sdk.__all__)
    assert all(getattr(qwen_code, name) is getattr(qwen_code.sdk, name) for name in exported)
