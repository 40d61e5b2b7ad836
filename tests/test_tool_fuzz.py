"""Property-based fuzzing: random argument payloads at every built-in tool's validator, random
text at the Qwen XML parser and its streaming hold-back, random argument text at the repair.

Nothing may raise: a validator answers a ValidCall or a message; the parser answers calls
whose arguments can always be written back as JSON; the repair answers a dict and maybe a
message. `test_case_counts` (last) checks how many cases ran; run with `-s` to see them.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qwen_code.llm.qwen_toolcalls import (
    START_MARKERS,
    STRAY_TAGS,
    ToolCallFilter,
    parse_tool_calls,
    tool_properties,
)
from qwen_code.llm.repair import parse_tool_arguments
from qwen_code.tools.registry import ValidCall, builtin_registry

REGISTRY = builtin_registry(project_dir=Path("/nonexistent"), user_dir=Path("/nonexistent"))
SCHEMAS = REGISTRY.schemas()
PROPS = tool_properties(SCHEMAS)
NAMES = sorted(PROPS)
CASES: Counter[str] = Counter()
FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
huge = st.builds(lambda c, n: c * n, st.characters(), st.integers(0, 200_000))
json_values = st.recursive(
    scalars | huge,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=5,
)


ALL_KEYS = sorted({key for props in PROPS.values() for key in props})
payloads = st.dictionaries(
    st.sampled_from(ALL_KEYS) | st.text(max_size=12), json_values, max_size=6
)
"""Arguments: parameter names of every tool (so each tool gets its own and others') and
random names, with any JSON values: wrong types, extra keys, huge strings, unicode."""


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(arguments=payloads)
def test_every_tool_validator_answers(name: str, arguments: dict[str, Any]) -> None:
    checked = REGISTRY.validate(name, arguments)
    assert isinstance(checked, ValidCall | str)
    if isinstance(checked, str):
        assert checked.strip()
    CASES[f"validate:{name}"] += 1


@FUZZ
@given(name=st.text(max_size=20), arguments=st.dictionaries(st.text(max_size=8), json_values))
def test_unknown_tool_names_answer_a_message(name: str, arguments: dict[str, Any]) -> None:
    checked = REGISTRY.validate(name, arguments)
    assert isinstance(checked, ValidCall | str)
    CASES["validate:any name"] += 1


pieces = st.sampled_from(
    [
        *START_MARKERS,
        *STRAY_TAGS,
        "<parameter=file_path>",
        "<parameter=offset>",
        "<parameter=todos>",
        "<parameter=",
        "<function=read_file>",
        "<function=todo_write>",
        ">",
        "\n",
        "null",
        "12",
        "[1, 2]",
        "{'a': True}",
        "<tool_c",
        "<",
    ]
) | st.text(max_size=12)
xml_texts = st.lists(pieces, max_size=25).map("".join)


@FUZZ
@given(text=xml_texts)
def test_xml_parser_never_fails(text: str) -> None:
    before, calls = parse_tool_calls(text, PROPS)
    assert text.startswith(before)
    for call in calls:
        json.dumps(call.arguments)  # always serialisable
        if call.name in PROPS:
            assert isinstance(REGISTRY.validate(call.name, call.arguments), ValidCall | str)
    CASES["xml parse"] += 1


@FUZZ
@given(text=xml_texts, cuts=st.lists(st.integers(0, 400), max_size=8))
def test_hold_back_never_shows_a_call_marker(text: str, cuts: list[int]) -> None:
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    held = ToolCallFilter()
    shown = "".join(held.feed(text[a:b]) for a, b in itertools.pairwise(bounds))
    shown += held.flush()
    assert not any(marker in shown for marker in START_MARKERS)
    if held.holding:
        assert held.held_text.startswith(START_MARKERS)
        assert text.endswith(held.held_text)
    assert len(shown) + len(held.held_text) <= len(text)
    CASES["xml hold-back"] += 1


raw_arguments = (
    st.text(max_size=200)
    | json_values.map(json.dumps)
    | json_values.map(repr)
    | st.dictionaries(st.text(max_size=8), json_values, max_size=4).map(repr)
    | st.lists(pieces | st.sampled_from(["{", "}", "'", '"', ",", ":", "True", "None"])).map(
        "".join
    )
)


@FUZZ
@given(raw=raw_arguments)
def test_argument_repair_never_fails(raw: str) -> None:
    arguments, error, how = parse_tool_arguments(raw, "write_file")
    assert isinstance(arguments, dict)
    json.dumps(arguments)
    if error is not None:
        assert arguments == {} and how is None and "write_file" in error
    CASES["argument repair"] += 1


def test_case_counts() -> None:
    """Runs after the fuzz tests above (file order); prints the counts with `-s`."""
    if not CASES:
        return
    total = sum(CASES.values())
    print(
        f"\nfuzz cases: {total} in all; " + ", ".join(f"{k} {v}" for k, v in sorted(CASES.items()))
    )
    assert sum(v for k, v in CASES.items() if k.startswith("validate:")) >= 200
