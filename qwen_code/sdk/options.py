"""`Options`, and what they resolve to: settings, provider, working directory, home, limits.

Settings come from the same place as the command line's (`config.load_settings` with a
`Flags` built from the options), so a user's and a project's `settings.json` apply here
too; `env` stands in for `os.environ` where provider variables are read.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from qwen_code.errors import QwenCodeError
from qwen_code.sdk.errors import SdkError

if TYPE_CHECKING:
    from qwen_code.config import Flags, Provider, Settings
    from qwen_code.sdk.permissions import PermissionResult, ToolPermissionContext
    from qwen_code.sdk.tools import SdkTool
    from qwen_code.session.store import LoadedSession
    from qwen_code.ui.run_limits import RunLimits

    CanUseTool = Callable[[str, dict[str, Any], ToolPermissionContext], Awaitable[PermissionResult]]

PermissionMode = Literal["default", "plan", "auto-edit", "yolo", "acceptEdits", "bypassPermissions"]
"""qwen-code's approval modes, and the Claude Agent SDK's names for two of them."""
_MODES = {
    "default": "default",
    "plan": "plan",
    "auto-edit": "auto-edit",
    "yolo": "yolo",
    "acceptEdits": "auto-edit",
    "bypassPermissions": "yolo",
}


def approval_mode(mode: str) -> Literal["plan", "default", "auto-edit", "yolo"]:
    """qwen-code's name for a permission mode; SdkError for one it does not know."""
    if mode not in _MODES:
        known = ", ".join(get_args(PermissionMode))
        raise SdkError(f"permission_mode: {mode!r} is not a permission mode; use one of {known}.")
    return _MODES[mode]  # type: ignore[return-value]


@dataclass(kw_only=True)
class Options:
    """How a `query` or `Client` runs. Every field is optional; without `base_url`,
    `api_key` or `env`, the provider comes from the environment as on the command line
    (`OPENAI_BASE_URL`, `OPENAI_API_KEY`, `DASHSCOPE_API_KEY`, settings files)."""

    cwd: str | os.PathLike[str] | None = None
    """The workspace (default: the process's working directory)."""
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    system_prompt: str | None = None
    """Replaces the built-in system prompt."""
    append_system_prompt: str | None = None
    permission_mode: PermissionMode | None = None
    """plan, default, auto-edit, yolo (or acceptEdits = auto-edit, bypassPermissions = yolo);
    default: the settings' `tools.approvalMode`."""
    allowed_tools: Sequence[str] = ()
    """Allow rules, e.g. `"Bash(git status *)"`, `"Read"`, `"my_tool"`."""
    disallowed_tools: Sequence[str] = ()
    """Deny rules: refused in every mode."""
    tools: Sequence[SdkTool] = ()
    """Custom tools made with `@tool`."""
    can_use_tool: CanUseTool | None = None
    """Asked about every call that needs approval; without it such calls are denied."""
    max_turns: int | None = None
    """Model requests per prompt (`model.maxSessionTurns`)."""
    max_budget_usd: float | None = None
    """Stop a prompt's run once it has cost this much (checked before tools run)."""
    json_schema: dict[str, Any] | None = None
    """Each prompt ends with an answer matching this schema (`structured_output`)."""
    resume: str | None = None
    """Continue this saved session (its id)."""
    continue_conversation: bool = False
    """Continue the most recent saved session of `cwd`."""
    include_partial_messages: bool = False
    """Also yield `StreamEvent`s as the reply's text streams."""
    home: str | os.PathLike[str] | None = None
    """qwen-code's own directory (QWEN_HOME; default: `env`'s QWEN_HOME, else ~/.qwen)."""
    env: Mapping[str, str] | None = None
    """Read instead of `os.environ` for the provider and settings variables."""
    trust_workspace: bool = False
    """Trust the project's `.qwen/settings.json` for this session (as --trust-workspace)."""


@dataclass(slots=True, kw_only=True)
class Resolved:
    """What the options come to, checked, before a session opens."""

    settings: Settings
    provider: Provider
    cwd: Path
    home: Path
    limits: RunLimits
    resume: LoadedSession | None
    tools: list[SdkTool] = field(default_factory=list)


def resolve(options: Options) -> Resolved:
    """Check `options` and load what they name; SdkError saying what is wrong."""
    from qwen_code.config import load_settings, qwen_home, resolve_provider
    from qwen_code.session import resume

    env = os.environ if options.env is None else options.env
    cwd = _directory(options.cwd)
    home = Path(options.home).expanduser() if options.home is not None else qwen_home(env)
    limits = run_limits(options)
    tools = _custom_tools(options.tools)
    try:
        settings = load_settings(flags_for(options), cwd=cwd, home=home, env=env)
        _add_rules(settings, options)
        provider = resolve_provider(settings, home=home)
        saved = resume.resolve(
            home, cwd, latest=options.continue_conversation, session_id=options.resume
        )
    except QwenCodeError as exc:
        raise SdkError.wrap(exc) from exc
    return Resolved(
        settings=settings,
        provider=provider,
        cwd=cwd,
        home=home,
        limits=limits,
        resume=saved,
        tools=tools,
    )


def flags_for(options: Options) -> Flags:
    """The command-line flags these options stand for."""
    from qwen_code.config import Flags

    if options.max_turns is not None and options.max_turns < 1:
        raise SdkError(f"max_turns: {options.max_turns} is not a positive number of turns.")
    mode = options.permission_mode
    return Flags(
        model=options.model,
        base_url=options.base_url,
        api_key=options.api_key,
        approval_mode=None if mode is None else approval_mode(mode),
        max_session_turns=options.max_turns,
        system_prompt=options.system_prompt,
        append_system_prompt=options.append_system_prompt,
        trust_workspace=options.trust_workspace,
    )


def run_limits(options: Options) -> RunLimits:
    """`max_budget_usd` and `json_schema`, checked."""
    from qwen_code.tools.structured_output import SchemaProblem, make_validator
    from qwen_code.ui.run_limits import RunLimits

    budget = options.max_budget_usd
    if budget is not None and not budget > 0:
        raise SdkError(f"max_budget_usd: {budget} is not a positive amount of USD.")
    schema = options.json_schema
    if schema is not None:
        try:
            make_validator(schema)
        except SchemaProblem as exc:
            raise SdkError(f"json_schema: {exc}") from exc
    return RunLimits(max_budget_usd=budget, json_schema=schema)


def _directory(cwd: str | os.PathLike[str] | None) -> Path:
    path = Path(cwd).expanduser() if cwd is not None else Path.cwd()
    if not path.is_dir():
        raise SdkError(f"cwd: {str(path)!r} is not a directory.")
    return path.resolve()


def _custom_tools(tools: Sequence[Any]) -> list[SdkTool]:
    from qwen_code.sdk.tools import SdkTool

    found: list[SdkTool] = []
    for item in tools:
        if not isinstance(item, SdkTool):
            raise SdkError(
                f"tools: {item!r} is not a tool; make one with @tool(name, description)."
            )
        if any(t.name == item.name for t in found):
            raise SdkError(f"tools: two tools are named {item.name!r}.")
        found.append(item)
    return found


def _add_rules(settings: Settings, options: Options) -> None:
    """`allowed_tools` and `disallowed_tools` as `permissions.allow` and `.deny` rules (one
    rule per entry: a comma inside a rule stays in it)."""
    from qwen_code.agent.permission_rules import parse_rule

    given = {"allowed_tools": options.allowed_tools, "disallowed_tools": options.disallowed_tools}
    for name, rules in given.items():
        if isinstance(rules, str):
            raise SdkError(f"{name}: give a list of rules, not one string.")
        for rule in rules:
            if not isinstance(rule, str) or parse_rule(rule) is None:
                raise SdkError(
                    f"{name}: {rule!r} is not a permission rule; use Tool or Tool(specifier), "
                    'e.g. "Read" or "Bash(git status *)".'
                )
    settings.permissions.allow = [*settings.permissions.allow, *options.allowed_tools]
    settings.permissions.deny = [*settings.permissions.deny, *options.disallowed_tools]
