"""Qwen3-Coder XML tool calls in text: parsing as vLLM's qwen3_coder parser, schema coercion,
and the streaming hold-back that keeps the XML off the screen."""

from __future__ import annotations

from typing import Any

import pytest

from qwen_code.llm.qwen_toolcalls import (
    ToolCallFilter,
    XmlCall,
    coerce_value,
    parse_tool_calls,
    strip_stray_tags,
    tool_properties,
)
from tests.fakefaults import xml_tool_calls

SCHEMA = {
    "type": "object",
    "properties": {
        "file_path": {"type": "string"},
        "offset": {"type": "integer"},
        "ratio": {"type": "number"},
        "force": {"type": "boolean"},
        "edits": {"type": "array"},
        "options": {"type": "object"},
        "anything": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
}
TOOLS = [{"type": "function", "function": {"name": "edit", "parameters": SCHEMA}}]
PROPS = tool_properties(TOOLS)


def parse(text: str) -> tuple[str, list[XmlCall]]:
    return parse_tool_calls(text, PROPS)


MULTILINE = """I will read it.

<tool_call>
<function=read_file>
<parameter=file_path>
src/app.py
</parameter>
</function>
</tool_call>"""


def test_multiline_layout() -> None:
    before, calls = parse(MULTILINE)
    assert before == "I will read it.\n\n"
    assert calls == [XmlCall("read_file", {"file_path": "src/app.py"}, complete=True)]


def test_oneline_layout_and_several_calls() -> None:
    text = (
        "<tool_call><function=read_file><parameter=file_path>a.py</parameter></function>"
        "</tool_call><tool_call><function=edit><parameter=file_path>b.py</parameter>"
        "<parameter=offset>12</parameter></function></tool_call>"
    )
    before, calls = parse(text)
    assert before == ""
    assert [(c.name, c.arguments) for c in calls] == [
        ("read_file", {"file_path": "a.py"}),
        ("edit", {"file_path": "b.py", "offset": 12}),
    ]


def test_without_the_tool_call_wrapper() -> None:
    text = "Editing.\n<function=edit>\n<parameter=force>\ntrue\n</parameter>\n</function>"
    before, calls = parse(text)
    assert before == "Editing.\n"
    assert calls == [XmlCall("edit", {"force": True}, complete=True)]


def test_multiline_values_keep_inner_newlines() -> None:
    value = "def f():\n    return 1\n"
    _, calls = parse(xml_tool_calls([("write_file", {"content": value})], "wrapped"))
    assert calls[0].arguments == {"content": value}


def test_unterminated_block_at_the_end_still_parses() -> None:
    text = (
        "<tool_call>\n<function=edit>\n<parameter=file_path>\na.py\n</parameter>\n"
        "<parameter=offset>\n7"
    )
    _, calls = parse(text)
    assert calls == [XmlCall("edit", {"file_path": "a.py", "offset": 7}, complete=False)]


def test_name_cut_off_before_its_bracket_is_no_call() -> None:
    assert parse("text <tool_call>\n<function=wri") == ("text ", [])


def test_trailing_text_after_the_last_call_is_ignored() -> None:
    before, calls = parse(MULTILINE + "\nHope that helps!")
    assert before == "I will read it.\n\n"
    assert len(calls) == 1


def test_parameter_without_closing_tag_ends_at_the_next_one() -> None:
    text = "<function=edit><parameter=file_path>a.py<parameter=offset>3</function>"
    _, calls = parse(text)
    assert calls[0].arguments == {"file_path": "a.py", "offset": 3}


def test_no_markup_means_no_calls() -> None:
    assert parse("plain <b>text</b>") == ("plain <b>text</b>", [])


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("file_path", "12", "12"),
        ("file_path", "null", None),
        ("file_path", "NULL", None),
        ("offset", "12", 12),
        ("offset", "12.5", "12.5"),
        ("offset", "twelve", "twelve"),
        ("ratio", "5.0", 5),
        ("ratio", "2.5", 2.5),
        ("ratio", "1e3", 1000),
        ("ratio", "inf", "inf"),
        ("ratio", "nan", "nan"),
        ("ratio", "many", "many"),
        ("force", "True", True),
        ("force", "false", False),
        ("force", "yes", False),
        ("edits", '[{"a": 1}]', [{"a": 1}]),
        ("edits", "[1, 2,]", [1, 2]),
        ("edits", "not a list", "not a list"),
        ("options", "{'a': True}", {"a": True}),
        ("options", "{1, 2}", "{1, 2}"),
        ("anything", "[1]", "[1]"),
        ("unknown", "42", "42"),
    ],
)
def test_coercion_follows_the_vllm_table(name: str, raw: str, expected: Any) -> None:
    _, calls = parse(f"<function=edit><parameter={name}>{raw}</parameter></function>")
    value = calls[0].arguments[name]
    assert value == expected
    assert type(value) is type(expected)


def test_other_types_use_literal_eval() -> None:
    assert coerce_value("(1, 2)", {"type": "tuple"}) == (1, 2)
    assert coerce_value("x y", {"type": "weird"}) == "x y"
    assert coerce_value("[1]", {"type": ["array", "null"]}) == [1]


def test_tool_properties_skips_malformed_entries() -> None:
    tools: list[Any] = [
        {"type": "function", "function": {"name": "a"}},
        {"type": "function"},
        "junk",
        {"function": {"name": "b", "parameters": {"properties": {"x": {"type": "integer"}}}}},
    ]
    assert tool_properties(tools) == {"a": {}, "b": {"x": {"type": "integer"}}}


def test_stray_closing_tags_are_stripped() -> None:
    assert strip_stray_tags("done</parameter>\n</function></tool_call>") == "done\n"


# --- streaming hold-back --------------------------------------------------------------


def stream(pieces: list[str]) -> tuple[list[str], ToolCallFilter]:
    held = ToolCallFilter()
    shown = [held.feed(p) for p in pieces]
    shown.append(held.flush())
    return shown, held


def splits(text: str) -> list[list[str]]:
    """The text cut in two at every position, and in pieces of 1 to 7 characters."""
    cuts = [[text[:i], text[i:]] for i in range(len(text) + 1)]
    sized = [[text[i : i + n] for i in range(0, len(text), n)] for n in range(1, 8)]
    return cuts + sized


@pytest.mark.parametrize("layout", ["wrapped", "unwrapped", "oneline"])
def test_xml_is_never_shown_however_the_stream_is_cut(layout: str) -> None:
    xml = xml_tool_calls([("edit", {"file_path": "a.py", "offset": 3})], layout)  # type: ignore[arg-type]
    text = "Let me edit a.py.\n" + xml
    for pieces in splits(text):
        shown, held = stream(pieces)
        visible = "".join(shown)
        assert visible == "Let me edit a.py.\n", pieces
        assert held.shown_text == visible
        _, calls = parse(held.held_text)
        assert calls == [XmlCall("edit", {"file_path": "a.py", "offset": 3}, complete=True)]


def test_text_with_angle_brackets_passes_through() -> None:
    text = "if a < b and b > c: use <div> or List<int> </p>"
    for pieces in splits(text):
        shown, held = stream(pieces)
        assert "".join(shown) == text
        assert not held.holding


def test_partial_marker_at_the_end_is_released_as_text() -> None:
    shown, held = stream(["see ", "<tool_c"])
    assert shown == ["see ", "", "<tool_c"]
    assert not held.holding


def test_stray_tags_are_dropped_while_streaming() -> None:
    shown, _ = stream(["Done.</par", "ameter>\n", "</function> ok"])
    assert "".join(shown) == "Done.\n ok"


def test_release_returns_held_text_without_stray_tags() -> None:
    held = ToolCallFilter()
    assert held.feed("a <function=oops no bracket") == "a "
    assert held.release() == "<function=oops no bracket"
    assert held.shown_text == "a <function=oops no bracket"
