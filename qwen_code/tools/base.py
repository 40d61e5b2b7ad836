"""What a tool is: a name, a pydantic `Params` model, a kind for the approval policy, `run`.

The JSON schema sent to the model is generated from `Params` (attribute docstrings become
field descriptions), so a tool's documentation lives in one place.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict

from qwen_code.credentials import Credentials

if TYPE_CHECKING:
    from qwen_code.agent.events import Event
    from qwen_code.sandbox.manager import Sandbox
    from qwen_code.tools.user_input import UserChannel
    from qwen_code.tools.workspace import Workspace

ToolKind: TypeAlias = Literal["read", "edit", "execute", "think", "network"]
"""read: never changes anything; edit: changes files; execute: runs commands;
think: bookkeeping with no effect outside the session (todo list); network: reaches
hosts on the network (web_fetch, web_search): asked about outside yolo mode unless an
allow rule covers it, allowed in plan mode (it changes nothing here)."""


class ToolParams(BaseModel):
    """Base for every tool's arguments: unknown keys are an error the model sees."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")


P = TypeVar("P", bound=ToolParams)


class ToolError(Exception):
    """A failure the model can act on; its message becomes the tool result."""


@dataclass(slots=True, kw_only=True)
class ToolOutput:
    """A tool's result. `content` goes to the model; `display` is for humans."""

    content: str
    is_error: bool = False
    display: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    """Extra events the loop yields after the result (e.g. the todo list)."""
    grant_rules: tuple[str, ...] = ()
    """Allow rules for the rest of the session (a loaded skill's `allowed-tools`)."""
    media: tuple[dict[str, Any], ...] = ()
    """Image parts (`{"type": "image_url", "image_url": {"url": "data:..."}}`) for the
    model to see: they go in a user message right after the tool results, since strict
    servers reject images inside `role: tool` messages (Qwen Code's `splitToolMedia`)."""
    switch_mode: str | None = None
    """An approval mode to switch the session to once this result is in (the user
    approved a plan through `exit_plan_mode`)."""


@dataclass(slots=True, kw_only=True)
class ToolLimits:
    """Caps on what tools return, so one call cannot flood the context window."""

    max_output_chars: int = 25_000
    max_output_lines: int = 1_000
    shell_default_timeout_s: float = 120.0
    shell_max_timeout_s: float = 600.0
    list_max_entries: int = 500
    glob_max_results: int = 100
    grep_max_matches: int = 200


@dataclass(slots=True, kw_only=True)
class ToolContext:
    """What a tool may use: the workspace (path guard), limits and a scratch directory."""

    workspace: Workspace
    limits: ToolLimits = field(default_factory=ToolLimits)
    scratch_dir: Path | None = None
    """Where a tool may keep files for this session (full shell output, background logs)."""
    state: dict[str, Any] = field(default_factory=dict)
    """Per-session state tools keep between calls (background jobs, todo list)."""
    home: Path | None = None
    """The qwen-code home ($QWEN_HOME), where the user's memory file lives."""
    memory_file_name: str = "QWEN.md"
    credentials: Credentials = field(default_factory=Credentials.collect)
    """The session's provider credentials: left out of the environment of the commands
    tools start (unless `pass_to_commands`) and redacted from tool output. By default,
    those in the process environment when the context is made."""
    sandbox: Sandbox | None = None
    """The session's command sandbox (None: commands are never sandboxed)."""
    approval_mode: str = "default"
    """The session's approval mode now (kept up to date by the tool runner): `auto`
    sandboxing depends on it."""
    side_model: SideModel | None = None
    """A one-shot model request for a tool's own use (summarising a fetched page with
    `fastModel`, describing an image with `visionModel`); None when there is none."""
    user: UserChannel | None = None
    """How a tool reaches the person at the keyboard (questions, plan approval); None
    when nobody can answer (headless, a subagent)."""
    file_io: FileIO | None = None
    """Text reads and writes done through an editor (`--acp`), so the model sees unsaved
    buffers and the editor keeps its own undo; None: files are read and written on disk."""

    def scratch(self) -> Path:
        """The scratch directory, created on first use."""
        if self.scratch_dir is None:
            import tempfile

            self.scratch_dir = Path(tempfile.mkdtemp(prefix="qwen-code-"))
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        return self.scratch_dir


class FileIO(Protocol):
    """read_file, edit and write_file's text I/O through someone else (an editor over
    ACP). Paths are absolute and already checked against the workspace; either method
    returns None for a file it leaves to the disk (the tool then reads or writes it there)."""

    async def read_text(self, path: Path) -> str | None:
        """The file's text as the editor has it (unsaved changes included)."""
        ...

    async def write_text(self, path: Path, text: str) -> bool | None:
        """Write the whole file; whether it was created. Raises OSError when refused."""
        ...


class SideModel(Protocol):
    """One request outside the conversation, for a tool (see `ToolContext.side_model`).
    Its usage counts in the session's (a `SideUsage` event on the progress channel)."""

    async def complete(
        self, messages: list[dict[str, Any]], *, role: Literal["fast", "vision"] = "fast"
    ) -> str:
        """The reply's text; `role` picks the model (`fastModel` / `visionModel`, else the
        main one). Raises `ToolError` with a clear message when the request fails."""
        ...


class Tool(ABC, Generic[P]):
    """A tool the model can call. Subclasses set the class attributes and `run`."""

    name: ClassVar[str]
    kind: ClassVar[ToolKind]
    Params: ClassVar[type[ToolParams]]

    _description: str | None = None
    preapproved: bool = False
    """Runs without asking where the mode would ask (a trusted MCP server's tools);
    deny and ask rules and plan mode still hold."""

    @property
    def description(self) -> str:
        """What the model reads about the tool: the template `prompts/tools/<name>.md`
        (shipped, or a project/user override chosen by `use_description`)."""
        if self._description is None:
            from qwen_code import prompts

            self._description = prompts.load(f"tools/{self.name}.md", {}).strip()
        return self._description

    def use_description(self, text: str) -> None:
        self._description = text.strip()

    @abstractmethod
    async def run(self, params: P, ctx: ToolContext) -> ToolOutput:
        """Do the work; raise `ToolError` for failures the model should see."""

    def summary(self, params: P) -> str:
        """The key argument, shown on the one line a front end prints for the call."""
        return ""

    def escalation(self, params: P, ctx: ToolContext) -> str | None:
        """Why this call needs the user's approval every time, whatever the mode and the
        rules (e.g. a command that asks to run outside the sandbox); None normally."""
        return None

    async def preview(self, params: P, ctx: ToolContext) -> str | None:
        """What the call would change (e.g. a unified diff), shown when asking for approval.

        Must not change anything. None when there is nothing useful to show."""
        return None

    def schema(self) -> dict[str, Any]:
        """The OpenAI `tools[]` entry; titles are dropped (they only cost prompt tokens)."""
        params = _strip_titles(copy.deepcopy(self.Params.model_json_schema()))
        params.pop("description", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }


def _strip_titles(node: Any) -> Any:
    """Drop what only costs prompt tokens: titles, and `anyOf [T, null]` + `default: null`
    on optional fields (an optional field is simply not required)."""
    if isinstance(node, dict):
        node.pop("title", None)
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, prop in value.items():
                    value[name] = _strip_titles(_drop_null_option(prop))
            else:
                _strip_titles(value)
    elif isinstance(node, list):
        for item in node:
            _strip_titles(item)
    return node


def _drop_null_option(prop: Any) -> Any:
    if not isinstance(prop, dict) or "anyOf" not in prop:
        return prop
    options = [o for o in prop["anyOf"] if o != {"type": "null"}]
    if len(options) != 1 or len(options) == len(prop["anyOf"]):
        return prop
    simplified = {k: v for k, v in prop.items() if k != "anyOf"}
    if simplified.get("default", 0) is None:
        del simplified["default"]
    return {**options[0], **simplified}


def truncate_text(text: str, *, max_chars: int, max_lines: int | None = None) -> tuple[str, bool]:
    """Cut `text` to the caps keeping the head and the tail; say how much was left out."""
    lines = text.splitlines(keepends=True)
    if len(text) <= max_chars and (max_lines is None or len(lines) <= max_lines):
        return text, False
    if max_lines is not None and len(lines) > max_lines:
        head_n = max_lines // 5
        tail_n = max_lines - head_n
        omitted = len(lines) - head_n - tail_n
        text = "".join(
            [*lines[:head_n], f"\n... [{omitted} lines truncated] ...\n\n", *lines[-tail_n:]]
        )
    if len(text) > max_chars:
        head_c = max_chars // 5
        tail_c = max_chars - head_c
        omitted = len(text) - head_c - tail_c
        text = f"{text[:head_c]}\n... [{omitted} characters truncated] ...\n{text[-tail_c:]}"
    return text, True
