"""Tool-call arguments that are not a valid JSON object: repair what is safe, explain the rest.

Models (Qwen3-Coder among them) write single-quoted or Python-style arguments
(`{'path': 'a.py', 'force': True}`), trailing commas, raw newlines inside strings, code
fences around the JSON, or the JSON object encoded once more as a JSON string. Each step
below accepts its result only when it is a JSON object, and only when the text looked
like one (`{` … `}` once fences and whitespace are gone): `json_repair` will "repair"
anything, including arguments cut off mid-string, and a cut-off `content` must never be
written to a file. What cannot be repaired gets a message for the model naming what was
received and where the JSON broke.
"""

from __future__ import annotations

import ast
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from qwen_code.llm.qwen_toolcalls import is_plain_json

log = logging.getLogger(__name__)

SHOWN_CHARS = 200
"""How much of the received text an error message quotes."""
REPAIR_LIMIT_CHARS = 1_000_000
"""Longer argument text is not given to the (slower) repair steps."""

_FENCE = re.compile(r"^```[\w-]*[ \t]*\n?(.*?)\n?```$", re.DOTALL)

Arguments = dict[str, Any]


def parse_tool_arguments(raw: str, name: str = "") -> tuple[Arguments, str | None, str | None]:
    """`(arguments, error, repair)`: `repair` names the fix applied (None when the text was
    valid JSON), `error` is the message for the model when nothing worked."""
    if not raw.strip():
        return {}, None, None
    error: ValueError | RecursionError | None = None
    value: Any = None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        error = exc
    if error is None and isinstance(value, dict):
        return value, None, None
    repaired = repair_arguments(raw)
    if repaired is not None:
        arguments, how = repaired
        log.debug("repaired the arguments of tool call %r (%s)", name, how)
        return arguments, None, how
    if error is None:
        return {}, not_an_object(raw, value, name), None
    return {}, invalid_json(raw, error, name), None


def repair_arguments(raw: str) -> tuple[Arguments, str] | None:
    """`(arguments, what was fixed)` when `raw` can be read as one JSON object, else None."""
    text, fenced = _unwrap(raw.strip())
    steps: list[tuple[str, Callable[[str], Any]]] = [
        ("string-encoded JSON", _double_encoded),
        ("code fence", json.loads),
        ("raw control characters in strings", _lenient_json),
        ("Python literal", _python_literal),
        ("json_repair", _json_repair),
    ]
    for how, step in steps:
        if how == "string-encoded JSON" or _looks_like_object(text):
            value = _attempt(step, text)
            if isinstance(value, dict) and is_plain_json(value) and _not_emptied(value, text):
                label = how if not fenced or how == "code fence" else f"code fence, {how}"
                return dict(value), label
    return None


def _unwrap(text: str) -> tuple[str, bool]:
    match = _FENCE.match(text)
    return (match.group(1).strip(), True) if match else (text, False)


def _looks_like_object(text: str) -> bool:
    return text.startswith("{") and text.endswith("}") and len(text) <= REPAIR_LIMIT_CHARS


def _not_emptied(value: dict[str, Any], text: str) -> bool:
    """`{}` from text with something between the braces means the repair threw it away."""
    return bool(value) or not text.strip()[1:-1].strip()


def _attempt(step: Callable[[str], Any], text: str) -> Any:
    try:
        return step(text)
    except Exception:  # ValueError, SyntaxError, RecursionError, MemoryError, library bugs
        return None


def _double_encoded(text: str) -> Any:
    if not (text.startswith('"') and text.endswith('"')):
        return None
    inner = json.loads(text)
    return json.loads(inner) if isinstance(inner, str) else None


def _lenient_json(text: str) -> Any:
    return json.loads(text, strict=False)


def _python_literal(text: str) -> Any:
    return ast.literal_eval(text)


def _json_repair(text: str) -> Any:
    """json_repair's object, only when it kept every letter and digit of the text: it
    otherwise drops what it cannot place (`{"a": "b": 1}` → `{"a": "b"}`) or invents empty
    values (`{"a": }` → `{"a": ""}`), and arguments must never silently lose content."""
    from json_repair import repair_json  # ~10 ms import, only when a repair is needed

    value = repair_json(text, return_objects=True, skip_json_loads=True)
    return value if isinstance(value, dict) and _keeps_content(text, value) else None


_LITERALS = re.compile(r"\b(?:true|false|null|True|False|None)\b")
_ESCAPES = re.compile(r"\\(?:u[0-9a-fA-F]{4}|.)", re.DOTALL)


def _keeps_content(text: str, value: dict[str, Any]) -> bool:
    source = _LITERALS.sub("", _ESCAPES.sub("", text))
    if '""' not in text and "''" not in text and "" in _strings(value):
        return False
    kept = _LITERALS.sub("", _ESCAPES.sub("", "".join(_strings(value))))
    return sorted(_alnum(source)) == sorted(_alnum(kept))


def _strings(value: Any) -> list[str]:
    """Keys, strings and numbers in `value`, depth first (booleans and null left out)."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, bool) or value is None:
        return []
    return [value if isinstance(value, str) else repr(value)]


def _alnum(text: str) -> str:
    return "".join(c for c in text if c.isascii() and c.isalnum())


def invalid_json(raw: str, exc: ValueError | RecursionError, name: str = "") -> str:
    """The model-facing message for argument text that is not JSON and could not be repaired."""
    tool = f" for tool {name!r}" if name else ""
    if isinstance(exc, json.JSONDecodeError):
        where = f"{exc.msg} at line {exc.lineno} column {exc.colno} (character {exc.pos})"
        near = f"; the text there is {_around(raw, exc.pos)!r}" if len(raw) > 60 else ""
    else:
        where, near = "nested too deeply", ""
    return (
        f"The arguments{tool} are not valid JSON ({where}{near}). Received {len(raw)} "
        f"characters: {_shown(raw)}. Send the arguments as one JSON object with "
        'double-quoted keys and strings, e.g. {"file_path": "src/app.py"}; if the text was '
        "cut off, send less in one call."
    )


def not_an_object(raw: str, value: Any, name: str = "") -> str:
    tool = f" for tool {name!r}" if name else ""
    kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
    return (
        f"The arguments{tool} must be a JSON object, got {kind}: {_shown(raw)}. Send one "
        'JSON object that maps each parameter name to its value, e.g. {"file_path": "a.py"}.'
    )


def _shown(raw: str) -> str:
    return raw if len(raw) <= SHOWN_CHARS else f"{raw[:SHOWN_CHARS]}… ({len(raw)} characters)"


def _around(raw: str, pos: int, width: int = 20) -> str:
    return raw[max(0, pos - width) : pos + width]
