"""Argument repair: what is safe to fix is fixed; everything else is a precise error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qwen_code.llm.repair import parse_tool_arguments, repair_arguments


@pytest.mark.parametrize(
    ("raw", "expected", "how"),
    [
        ('{"file_path": "a.py"}', {"file_path": "a.py"}, None),
        ("{'file_path': 'a.py'}", {"file_path": "a.py"}, "Python literal"),
        ('{"force": True, "x": None}', {"force": True, "x": None}, "Python literal"),
        ('{"a": 1, "b": [1, 2,],}', {"a": 1, "b": [1, 2]}, "Python literal"),
        ('```json\n{"a": 1}\n```', {"a": 1}, "code fence"),
        ("```\n{'a': 1}\n```", {"a": 1}, "code fence, Python literal"),
        ('"{\\"a\\": 1}"', {"a": 1}, "string-encoded JSON"),
        ('{"content": "line 1\nline 2\ttab"}', {"content": "line 1\nline 2\ttab"}, None),
        ('{a: 1, "b": "x"}', {"a": 1, "b": "x"}, "json_repair"),
        ('{"content": "say "hi" now"}', {"content": 'say "hi" now'}, "json_repair"),
        ('  {"a": 1}  ', {"a": 1}, None),
        ('{"a": {"b": 1}', {"a": {"b": 1}}, "json_repair"),
    ],
)
def test_repairable(raw: str, expected: dict[str, Any], how: str | None) -> None:
    arguments, error, repair = parse_tool_arguments(raw, "t")
    assert (arguments, error) == (expected, None)
    if how is None:
        assert repair in (None, "raw control characters in strings")
    else:
        assert repair == how


@pytest.mark.parametrize(
    ("raw", "part"),
    [
        ('{"file_path": "a.py", "content": "def f():\\n    ret', "Unterminated string"),
        ('{"a": }', "Expecting value"),
        ('{"a": "b": 1}', "Expecting ',' delimiter"),
        ('{"a": 1}{"b": 2}', "Extra data"),
        ("hello", "Expecting value"),
        ("```\nnot json\n```", "Expecting value"),
        ("[1, 2]", "must be a JSON object, got an array"),
        ('"text"', "must be a JSON object, got a string"),
        ("12", "must be a JSON object, got a number"),
        ("null", "must be a JSON object, got null"),
        ("{1, 2}", "Expecting property name"),
        ('{"x": 1e999}', None),
    ],
)
def test_not_repairable_gives_a_precise_error(raw: str, part: str | None) -> None:
    arguments, error, repair = parse_tool_arguments(raw, "write_file")
    if part is None:  # valid JSON (1e999 is inf): left to the tool's validator
        assert error is None
        return
    assert (arguments, repair) == ({}, None)
    assert error is not None
    assert part in error
    assert "'write_file'" in error


def test_error_names_the_position_and_what_was_received() -> None:
    raw = '{"file_path": "src/app.py", "old_string": "a" "new_string": "b", "pad": "' + "x" * 80
    _, error, _ = parse_tool_arguments(raw, "edit")
    assert error is not None
    assert "line 1 column" in error and "(character " in error
    assert f"Received {len(raw)} characters" in error
    assert "the text there is" in error
    assert error.count("x") < len(raw)  # quoted, not pasted whole beyond the limit


def test_long_text_is_shortened_in_the_message() -> None:
    raw = "{'content': '" + "y" * 5000
    _, error, _ = parse_tool_arguments(raw, "write_file")
    assert error is not None
    assert "(5013 characters)" in error
    assert len(error) < 1000


def test_cut_off_arguments_are_never_completed() -> None:
    """json_repair would close the string and the object; a half-written file must not."""
    for cut in ('{"content": "abc', '{"content": "abc"', '{"content": "abc",', '{"a": [1, 2'):
        assert repair_arguments(cut) is None


def test_repair_that_loses_content_is_refused() -> None:
    assert repair_arguments('{"a": "b": 1}') is None  # json_repair: {"a": "b"}
    assert repair_arguments('{"a": , "b": 2}') is None  # json_repair: {"a": "", ...}


def test_empty_arguments_are_no_arguments() -> None:
    assert parse_tool_arguments("", "t") == ({}, None, None)
    assert parse_tool_arguments("  \n", "t") == ({}, None, None)


def test_repaired_values_are_plain_json() -> None:
    """Python literals that are not JSON values never come back as such."""
    for raw in ("{'a': {1, 2}}", "{'a': b'x'}", "{1: 'x'}", "{'a': 1e999}", "{'a': (1, 2)}"):
        repaired = repair_arguments(raw)
        if repaired is not None:
            assert json.loads(json.dumps(repaired[0], allow_nan=False)) is not None
