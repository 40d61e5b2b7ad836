"""Qwen3-Coder's native tool-call text, rescued from `content` when the server did not parse it.

The format (reference qwen3-coder.md §5), in the template's multi-line layout or on one line:

    <tool_call>
    <function=NAME>
    <parameter=KEY>
    value
    </parameter>
    </function>
    </tool_call>

`parse_tool_calls` follows vLLM's `qwen3_coder` parser (§7.1): the same regexes, so
unterminated blocks at the end still match; `<function=` blocks without the `<tool_call>`
wrapper are found too; values are coerced by the tool's JSON schema (`coerce_value`).
`ToolCallFilter` holds the XML back while streaming, so it is never shown as text.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

START_MARKERS = ("<tool_call>", "<function=")
STRAY_TAGS = ("</tool_call>", "</function>", "</parameter>")
_MARKERS = START_MARKERS + STRAY_TAGS
_LONGEST = max(len(m) for m in _MARKERS)

_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>|<tool_call>(.*?)$", re.DOTALL)
_FUNCTION = re.compile(r"<function=(.*?)</function>|<function=(.*)$", re.DOTALL)
_PARAMETER = re.compile(
    r"<parameter=(.*?)(?:</parameter>|(?=<parameter=)|(?=</function>)|$)", re.DOTALL
)
_STRAY = re.compile("|".join(re.escape(t) for t in STRAY_TAGS))

_STRING_TYPES = frozenset({"string", "str", "text", "varchar", "char", "enum"})
_INT_PREFIXES = ("int", "uint", "long", "short", "unsigned")
_BOOL_TYPES = frozenset({"boolean", "bool", "binary"})
_JSON_TYPES = frozenset({"object", "array", "arr"})

Properties = Mapping[str, Mapping[str, Any]]
"""Tool name → its schema's `properties` (parameter name → parameter schema)."""


@dataclass(frozen=True, slots=True)
class XmlCall:
    """One call found in the text: its name, coerced arguments, and whether it was complete."""

    name: str
    arguments: dict[str, Any]
    complete: bool
    """False when the block was cut off (no `</function>`): the arguments may be partial."""


def tool_properties(tools: Sequence[Mapping[str, Any]] | None) -> dict[str, Properties]:
    """`{tool name: properties}` from an OpenAI `tools` list (malformed entries skipped)."""
    found: dict[str, Properties] = {}
    for tool in tools or ():
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            continue
        parameters = function.get("parameters")
        properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
        found[function["name"]] = properties if isinstance(properties, Mapping) else {}
    return found


def has_tool_call(text: str) -> bool:
    return "<tool_call>" in text or "<function=" in text


def tool_call_start(text: str) -> int:
    """Index where the first call starts (`<tool_call>`, else `<function=`); -1 when none."""
    start = text.find("<tool_call>")
    return start if start >= 0 else text.find("<function=")


def first_marker(text: str) -> int:
    """Index of the earliest `<tool_call>` or `<function=`; -1 when neither occurs."""
    found = [i for i in (text.find(m) for m in START_MARKERS) if i >= 0]
    return min(found) if found else -1


def strip_stray_tags(text: str) -> str:
    """Text with leaked closing tags (`</parameter>`, `</function>`, `</tool_call>`) removed."""
    return _STRAY.sub("", text) if "</" in text else text


def parse_tool_calls(text: str, tools: Mapping[str, Properties]) -> tuple[str, list[XmlCall]]:
    """`(text before the first call, calls)`; `(text, [])` when the text holds no call.

    Text after the last call is ignored, as the server parsers do.
    """
    start = tool_call_start(text)
    if start < 0:
        return text, []
    blocks = [a or b for a, b in _TOOL_CALL.findall(text)] or [text]
    calls = []
    for block in blocks:
        for closed, open_ in _FUNCTION.findall(block):
            call = _parse_function(closed or open_, tools, complete=bool(closed))
            if call is not None:
                calls.append(call)
    return text[:start], calls


def _parse_function(source: str, tools: Mapping[str, Properties], complete: bool) -> XmlCall | None:
    end = source.find(">")
    if end < 0:  # `<function=NAME` cut off before its `>`
        return None
    name = source[:end].strip()
    properties = tools.get(name, {})
    arguments: dict[str, Any] = {}
    for match in _PARAMETER.findall(source[end + 1 :]):
        close = match.find(">")
        if close < 0:
            complete = False
            continue
        value = match[close + 1 :]
        value = value[1:] if value.startswith("\n") else value
        value = value[:-1] if value.endswith("\n") else value
        key = match[:close].strip()
        arguments[key] = coerce_value(value, properties.get(key), known=key in properties)
    return XmlCall(name=name, arguments=arguments, complete=complete)


def coerce_value(value: str, schema: Mapping[str, Any] | None, *, known: bool = True) -> Any:
    """A parameter's raw text → a value of its schema type, as vLLM's `_convert_param_value`.

    Anything that does not convert stays a string; results that are not plain JSON values
    (sets, bytes, NaN, ...) stay strings too, so the arguments can always be re-serialised.
    """
    if value.lower() == "null":
        return None
    if not known:
        return value
    kind = schema.get("type") if isinstance(schema, Mapping) else None
    kind = "string" if kind is None else str(kind).strip().lower()
    if kind in _STRING_TYPES:
        return value
    if kind.startswith(_INT_PREFIXES):
        try:
            return int(value)
        except ValueError:
            return value
    if kind.startswith(("num", "float")):
        return _number(value)
    if kind in _BOOL_TYPES:
        return value.lower() == "true"
    return _literal(value, json_first=kind in _JSON_TYPES or kind.startswith(("dict", "list")))


def _number(value: str) -> Any:
    try:
        number = float(value)
        return int(number) if number == int(number) else number
    except (ValueError, OverflowError):
        return value


def _literal(value: str, *, json_first: bool) -> Any:
    if json_first:
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            pass
        else:
            return parsed if is_plain_json(parsed) else value
    try:
        parsed = ast.literal_eval(value)
    except Exception:  # SyntaxError, ValueError, MemoryError, RecursionError, ...
        return value
    return parsed if is_plain_json(parsed) else value


def is_plain_json(value: Any) -> bool:
    """True for values `json.dumps` writes as standard JSON (tuples count as arrays)."""
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(is_plain_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain_json(v) for k, v in value.items())
    return False


class ToolCallFilter:
    """Streams text with Qwen XML tool calls held back.

    `feed()` returns what may be shown now. From the first `<tool_call>` or `<function=`
    on, everything is held (`held`); a chunk ending in a partial marker (`<tool_c`) waits
    for the next chunk; leaked closing tags are dropped. Text without `<` passes through
    untouched, so the common case costs one `in` test per chunk.
    """

    __slots__ = ("_pending", "held", "shown")

    def __init__(self) -> None:
        self._pending = ""
        self.held: list[str] = []
        """Text from the first call marker on (not shown)."""
        self.shown: list[str] = []
        """Everything `feed()` and `flush()` returned."""

    @property
    def holding(self) -> bool:
        return bool(self.held)

    def feed(self, text: str) -> str:
        if self.held:
            self.held.append(text)
            return ""
        if self._pending:
            text, self._pending = self._pending + text, ""
        if "<" not in text:
            self.shown.append(text)
            return text
        start = first_marker(text)
        if start >= 0:
            self.held.append(text[start:])
            text = text[:start]
        else:
            cut = text.rfind("<", max(0, len(text) - _LONGEST + 1))
            if cut >= 0 and any(m.startswith(text[cut:]) for m in _MARKERS):
                text, self._pending = text[:cut], text[cut:]
        text = strip_stray_tags(text)
        self.shown.append(text)
        return text

    def flush(self) -> str:
        """The end of the stream: a partial marker that never completed is plain text."""
        text, self._pending = self._pending, ""
        self.shown.append(text)
        return text

    def release(self) -> str:
        """Give the held text back as plain text (it held no parsable call)."""
        text = strip_stray_tags("".join(self.held))
        self.held.clear()
        self.shown.append(text)
        return text

    @property
    def held_text(self) -> str:
        return "".join(self.held)

    @property
    def shown_text(self) -> str:
        return "".join(self.shown)
