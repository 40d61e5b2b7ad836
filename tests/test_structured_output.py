"""`--json-schema`: the structured_output tool, its retries, and the result it leaves."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from qwen_code.config import Flags, load_settings, qwen_home, resolve_provider
from qwen_code.errors import InputError
from qwen_code.ui.headless import run_headless
from qwen_code.ui.run_limits import RunLimits, load_schema
from tests.fakeserver import FakeLLM, call, text, tool_turn
from tests.helpers import run_qwen_code, write_json

SCHEMA = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "risk": {"type": "string", "enum": ["low", "medium", "high"]},
    },
    "required": ["summary", "risk"],
    "additionalProperties": False,
}
ANSWER = {"summary": "adds a flag", "risk": "low"}


async def structured(
    workspace: Path, output_format: str = "json", *, tries: int = 5
) -> tuple[int, str, str]:
    settings = load_settings(Flags(yolo=True), cwd=workspace)
    out, err = io.StringIO(), io.StringIO()
    code = await run_headless(
        settings,
        resolve_provider(settings),
        "summarize",
        output_format=output_format,
        cwd=workspace,
        out=out,
        err=err,
        home=qwen_home(),
        limits=RunLimits(json_schema=SCHEMA, max_structured_retries=tries),
    )
    return code, out.getvalue(), err.getvalue()


def tool_names(request_body: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in request_body.get("tools", [])]


def test_a_valid_call_ends_the_run_with_the_payload_in_the_result(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    (tmp_path / "a.py").write_text("A = 1\n")
    fake_llm.script(
        tool_turn(call("read_file", file_path="a.py")),
        tool_turn(call("structured_output", **ANSWER)),
        text("never asked for"),
    )
    result = run_qwen_code(
        tmp_path, "-p", "summarize", "-o", "json", "--json-schema", json.dumps(SCHEMA)
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["subtype"] == "success"
    assert report["is_error"] is False
    assert report["structured_output"] == ANSWER
    assert report["structured_result"] == ANSWER
    assert json.loads(report["result"]) == ANSWER
    assert report["num_turns"] == 2
    assert fake_llm.remaining == 1  # the run ended on the call: no request after it
    first = fake_llm.chat_requests[0].body or {}
    sent = next(t for t in first["tools"] if t["function"]["name"] == "structured_output")
    assert sent["function"]["parameters"] == SCHEMA
    assert "structured_output" in json.dumps(first["messages"][-1])  # the prompt says so


def test_text_output_is_the_payload_alone(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(tool_turn(call("structured_output", **ANSWER), text="Here it is."))
    result = run_qwen_code(tmp_path, "-p", "summarize", "--json-schema", json.dumps(SCHEMA))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ANSWER
    assert result.stdout.count("\n") == 1


def test_the_schema_from_a_file(tmp_path: Path, fake_llm: FakeLLM) -> None:
    write_json(tmp_path / "schemas" / "summary.json", SCHEMA)
    fake_llm.script(tool_turn(call("structured_output", **ANSWER)))
    result = run_qwen_code(
        tmp_path, "-p", "summarize", "-o", "json", "--json-schema", "@schemas/summary.json"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["structured_output"] == ANSWER


async def test_an_invalid_call_gets_the_validation_error_and_a_second_call_succeeds(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        tool_turn(call("structured_output", summary="adds a flag", risk="none")),
        tool_turn(call("structured_output", **ANSWER)),
    )
    code, out, _ = await structured(tmp_path)
    assert code == 0
    report = json.loads(out)
    assert report["structured_output"] == ANSWER
    assert [c["is_error"] for c in report["tool_calls"]] == [True, False]
    second = fake_llm.chat_requests[1].body or {}
    error = second["messages"][-1]
    assert error["role"] == "tool"
    assert "do not match the schema" in error["content"]
    assert "risk: 'none' is not one of ['low', 'medium', 'high']" in error["content"]


async def test_gives_up_after_n_invalid_calls(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        tool_turn(call("structured_output", summary="x")),
        tool_turn(call("structured_output", summary="x", risk="low", extra=1)),
        text("never asked for"),
    )
    code, out, err = await structured(tmp_path, tries=2)
    assert code == 1
    report = json.loads(out)
    assert report["subtype"] == "error_max_structured_output_retries"
    assert report["is_error"] is True
    assert "did not match the --json-schema schema 2 times" in report["error"]
    assert "Additional properties are not allowed" in report["error"]
    assert "structured_output" not in report
    assert fake_llm.remaining == 1
    assert "giving up" in err


async def test_a_plain_text_answer_is_an_error_and_leaves_stdout_empty(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(text("The risk is low."))
    code, out, err = await structured(tmp_path, "text")
    assert (code, out) == (1, "")
    assert "without calling structured_output" in err
    assert "The risk is low." in err


async def test_subagents_do_not_get_the_tool(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        tool_turn(
            call("agent", description="look", prompt="look around", subagent_type="general-purpose")
        ),
        text("looked"),
        tool_turn(call("structured_output", **ANSWER)),
    )
    code, out, _ = await structured(tmp_path)
    assert code == 0, out
    main, sub = (fake_llm.chat_requests[i].body or {} for i in (0, 1))
    assert "structured_output" in tool_names(main)
    assert "structured_output" not in tool_names(sub)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"type": "string"}', 'must accept "object"'),
        ('{"type": "object", "properties": {"a": {"type": "strang"}}}', "not valid"),
        ("[1, 2]", "must be a JSON object"),
        ("@missing.json", "no such file"),
    ],
)
def test_a_bad_schema_is_refused(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_schema(value, tmp_path)


def test_a_bad_schema_file_does_not_echo_its_content(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text("secret-token {")
    with pytest.raises(InputError) as info:
        load_schema("@s.json", tmp_path)
    assert "secret-token" not in str(info.value)


def test_a_bad_schema_is_a_clear_error_before_any_request(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    result = run_qwen_code(tmp_path, "-p", "x", "--json-schema", '{"type": "array"}')
    assert result.returncode == 42
    assert "Traceback" not in result.stderr
    assert 'must accept "object"' in result.stderr
    assert fake_llm.chat_requests == []
