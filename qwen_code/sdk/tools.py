"""`@tool`: a Python function as a tool the model can call, in this process.

The parameters' type hints become the JSON schema the model sees (through pydantic), and
the model's arguments are validated against them before the function runs; a bad call
is answered with what is wrong, as for the built-in tools. `Annotated[str, "what it is"]`
describes a parameter. The return value is the result: a string as it is, anything else
as JSON. An exception becomes an error result the model sees; it never ends the turn.

A tool's `kind` drives approval as for built-in tools: "read" (and "think") run freely,
"edit", "execute" and "network" need approval in the modes that ask for them (an allow
rule naming the tool, `can_use_tool`, or yolo). The default is "execute": a tool is not
assumed harmless unless it says so.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import typing
from collections.abc import Callable
from typing import Annotated, Any, get_args, get_origin

from pydantic import Field, create_model
from pydantic_core import to_jsonable_python

from qwen_code.sdk.errors import SdkError
from qwen_code.tools.base import (
    Tool,
    ToolContext,
    ToolError,
    ToolKind,
    ToolOutput,
    ToolParams,
    truncate_text,
)

KINDS: tuple[ToolKind, ...] = typing.get_args(ToolKind)
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
NO_OUTPUT = "(no output)"


class SdkTool(Tool[ToolParams]):
    """A tool made by `@tool`; calling it calls the function."""

    def __init__(
        self, fn: Callable[..., Any], *, name: str, description: str, kind: ToolKind
    ) -> None:
        self.fn = fn
        self.name = name  # type: ignore[misc]
        self.kind = kind  # type: ignore[misc]
        self.Params = params_model(fn, name)  # type: ignore[misc]
        self._description = description.strip()
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<tool {self.name!r} ({self.kind})>"

    async def run(self, params: ToolParams, ctx: ToolContext) -> ToolOutput:
        arguments = {name: getattr(params, name) for name in type(params).model_fields}
        try:
            value = await _call(self.fn, arguments)
        except ToolError:
            raise
        except Exception as exc:
            raise ToolError(f"{type(exc).__name__}: {exc}") from exc
        content, _ = truncate_text(
            result_text(value),
            max_chars=ctx.limits.max_output_chars,
            max_lines=ctx.limits.max_output_lines,
        )
        return ToolOutput(content=content)


def tool(
    name: str, description: str, *, kind: ToolKind = "execute"
) -> Callable[[Callable[..., Any]], SdkTool]:
    """Make the decorated function (sync or async) a tool named `name`; pass the result
    in `Options(tools=[...])`. `kind`: "read" for a tool that changes nothing (it then
    runs without approval), else "edit", "execute" (the default) or "network"."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise SdkError(f"@tool: {name!r} is not a tool name (letters, digits, _ and -, 1-64).")
    if kind not in KINDS:
        raise SdkError(f"@tool {name}: kind {kind!r} is not one of {', '.join(KINDS)}.")
    if not isinstance(description, str) or not description.strip():
        raise SdkError(f"@tool {name}: give a description; it is what the model reads.")

    def decorate(fn: Callable[..., Any]) -> SdkTool:
        made = SdkTool(fn, name=name, description=description, kind=kind)
        try:
            made.schema()
        except Exception as exc:
            raise SdkError(f"@tool {name}: no JSON schema for its parameters: {exc}") from exc
        return made

    return decorate


def params_model(fn: Callable[..., Any], name: str) -> type[ToolParams]:
    """The pydantic model of `fn`'s parameters (unknown arguments are refused)."""
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # a name only the caller's scope knows: use the hints as written
        hints = dict(getattr(fn, "__annotations__", {}))
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            raise SdkError(f"@tool {name}: parameter {param.name!r} must be a named parameter.")
        hint = hints.get(param.name, param.annotation)
        if hint is inspect.Parameter.empty or isinstance(hint, str):
            raise SdkError(f"@tool {name}: parameter {param.name!r} needs a type hint.")
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (_described(hint), default)
    model_name = "".join(part.title() for part in re.split(r"[_-]", name)) + "Params"
    try:
        return create_model(model_name, __base__=ToolParams, **fields)  # type: ignore[call-overload,no-any-return]
    except Exception as exc:
        raise SdkError(f"@tool {name}: its parameters cannot be used: {exc}") from exc


def _described(hint: Any) -> Any:
    """`Annotated[T, "text"]` as `Annotated[T, Field(description="text")]`."""
    if get_origin(hint) is not Annotated:
        return hint
    base, *extras = get_args(hint)
    notes = [e for e in extras if isinstance(e, str)]
    others = [e for e in extras if not isinstance(e, str)]
    if not notes:
        return hint
    return Annotated[(base, *others, Field(description=" ".join(notes)))]  # type: ignore[return-value]


async def _call(fn: Callable[..., Any], arguments: dict[str, Any]) -> Any:
    """Await an async function; run a sync one in a worker thread (so a slow one does
    not stop the session)."""
    if inspect.iscoroutinefunction(fn):
        return await fn(**arguments)
    value = await asyncio.to_thread(fn, **arguments)
    return await value if inspect.isawaitable(value) else value


def result_text(value: Any) -> str:
    """What the model reads: a string as it is, None as a note, anything else as JSON."""
    if isinstance(value, str):
        return value or NO_OUTPUT
    if value is None:
        return NO_OUTPUT
    try:
        return json.dumps(to_jsonable_python(value), ensure_ascii=False)
    except Exception as exc:
        raise ToolError(
            f"the tool returned a {type(value).__name__}, which is not JSON serialisable ({exc})."
        ) from exc
