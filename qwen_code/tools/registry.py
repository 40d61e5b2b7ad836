"""The one place a tool registers: built-in tools now, MCP and plugin tools later.

The registry also turns a model's tool call into a validated call or a short message
the model can act on (unknown tool, bad arguments), and runs tools so that a failing
tool becomes a result instead of a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from qwen_code.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParams

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ValidCall:
    tool: Tool[Any]
    params: ToolParams


class ToolRegistry:
    """Name → tool. Registration order is the order of the schemas sent to the model."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool[Any]] = {}
        self._schemas: list[dict[str, Any]] | None = None

    def register(self, tool: Tool[Any], *, replace: bool = False) -> None:
        if tool.name in self._tools and not replace:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        self._schemas = None

    def unregister(self, name: str) -> None:
        self._tools.pop(name, None)
        self._schemas = None

    def get(self, name: str) -> Tool[Any] | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._tools.values())

    def subset(self, names: Collection[str]) -> ToolRegistry:
        """A registry of only these tools (in this registry's order), sharing the tool
        objects: what a subagent limited to some tools is given."""
        wanted = set(names)
        subset = ToolRegistry()
        for tool in self._tools.values():
            if tool.name in wanted:
                subset.register(tool)
        return subset

    def schemas(self) -> list[dict[str, Any]]:
        """The `tools` array for the request; computed once, so its bytes never change."""
        if self._schemas is None:
            self._schemas = [tool.schema() for tool in self._tools.values()]
        return self._schemas

    def validate(self, name: str, arguments: dict[str, Any]) -> ValidCall | str:
        """A validated call, or the message to send back to the model."""
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(self._tools)
            return f"Unknown tool {name!r}. Available tools: {known}."
        try:
            params = tool.Params.model_validate(arguments)
        except ValidationError as exc:
            return format_validation_error(name, exc)
        return ValidCall(tool, params)

    async def execute(self, call: ValidCall, ctx: ToolContext) -> ToolOutput:
        """Run a validated call. Tool failures become error results; nothing escapes
        but cancellation."""
        try:
            return await call.tool.run(call.params, ctx)
        except ToolError as exc:
            return ToolOutput(content=f"Error: {exc}", is_error=True)
        except Exception as exc:
            log.exception("tool %s crashed", call.tool.name)
            return ToolOutput(
                content=f"Error: the {call.tool.name} tool failed unexpectedly: "
                f"{type(exc).__name__}: {exc}",
                is_error=True,
            )


def format_validation_error(tool_name: str, exc: ValidationError) -> str:
    """One line per problem, naming the argument, e.g. `file_path: Field required`."""
    problems = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown argument"
        problems.append(f"- {where}: {msg}")
    return f"Invalid arguments for {tool_name}:\n" + "\n".join(problems)


def builtin_registry(
    *, project_dir: Path | None = None, user_dir: Path | None = None
) -> ToolRegistry:
    """A registry with every built-in tool, in the order the model sees them. Each tool's
    description comes from `tools/<name>.md` (project > user > shipped prompts)."""
    from qwen_code import prompts
    from qwen_code.tools.builtin import BUILTIN_TOOLS

    registry = ToolRegistry()
    for tool_cls in BUILTIN_TOOLS:
        tool = tool_cls()
        name = f"tools/{tool.name}.md"
        tool.use_description(prompts.load(name, {}, project_dir=project_dir, user_dir=user_dir))
        registry.register(tool)
    return registry
