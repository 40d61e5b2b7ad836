"""Answers to the control requests of `--input-format stream-json` that only read or set
the session (`initialize`, `get_context_usage`, `mcp_status`, `set_model`, ...).

Each handler takes the session and the request body and returns the response body, or
raises `Unsupported` / `BadRequest`, which the loop sends back as an error response. The
requests that touch the running turn (`interrupt`, `set_permission_mode`,
`rewind_files`) are handled by the loop itself (`stream_input`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from qwen_code import __version__
from qwen_code.llm.tokens import estimate_tokens

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from qwen_code.session.live import Session

    SendRequest = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class BadRequest(Exception):
    """A control request that cannot be done as asked; the text says why."""


def initialize(
    session: Session, body: dict[str, Any], program: SendRequest | None = None
) -> dict[str, Any]:
    """The handshake: what this process offers. The program's hook callbacks join the
    session's hooks (each answered with a `hook_callback` request through `program`);
    SDK-defined agents join its subagents."""
    hooks = body.get("hooks")
    if hooks:
        if program is None:
            raise BadRequest("hook callbacks need the control protocol")
        _add_callback_hooks(session, hooks, program)
    agents = body.get("agents")
    if agents:
        _add_agents(session, agents)
    applied = {"hook_on_failure_supported": True, "hooks_applied": True} if hooks else {}
    return {
        **applied,
        "commands": _commands(session),
        "agents": _agent_list(session),
        "output_style": "default",
        "available_output_styles": ["default"],
        "models": [{"value": session.model, "displayName": session.model, "description": ""}],
        "account": {},
        "pid": os.getpid(),
        "qwen_code_version": __version__,
    }


def _commands(session: Session) -> list[dict[str, str]]:
    """The custom commands a user message may start with (`/name args`)."""
    from qwen_code.custom_commands import discover

    home = session.tool_ctx.home
    if home is None:
        return []
    return [
        {
            "name": c.name,
            "description": c.description,
            "argumentHint": str(c.metadata.get("argument-hint", "")),
        }
        for c in discover(session.cwd, home).commands.values()
    ]


def _add_callback_hooks(session: Session, config: Any, program: SendRequest) -> None:
    """`{"PreToolUse": [{"matcher", "hookCallbackIds", "timeout", "onFailure"}]}`: hooks
    answered by the program (the Claude Agent SDK's `hooks` option)."""
    from qwen_code.hooks import EVENTS, Hooks, HookSpec
    from qwen_code.session.hooks_setup import attach, base_fields

    if not isinstance(config, dict):
        raise BadRequest("`hooks` must be an object of events")
    specs = []
    for event, matchers in config.items():
        if event not in EVENTS:
            raise BadRequest(f"qwen-code has no hook event {event!r}")
        for entry in matchers if isinstance(matchers, list) else ():
            failure = entry.get("onFailure")
            for callback in entry.get("hookCallbackIds") or ():
                specs.append(
                    HookSpec(
                        event=event,
                        matcher=str(entry.get("matcher") or ""),
                        command=f"(the program's callback {callback})",
                        timeout_s=float(entry.get("timeout") or 60),
                        source="sdk",
                        path=None,
                        callback=str(callback),
                        blocks_on_failure=failure is not None and failure != "continue",
                    )
                )
    hooks = session.hooks
    if hooks is None:
        env = session.tool_ctx.credentials.child_environment()
        hooks = Hooks([], cwd=session.cwd, env=env, base=lambda: base_fields(session))
        attach(session, hooks)
    hooks.add(specs)
    hooks.program = program


def _agent_list(session: Session) -> list[dict[str, str]]:
    if session.subagents is None:
        return []
    catalog = session.subagents.catalog
    return [{"name": a.name, "description": a.description} for a in catalog.agents.values()]


def _add_agents(session: Session, agents: Any) -> None:
    """`{"name": {"description", "prompt", "tools", "model"}}` from the SDK's options."""
    import dataclasses

    from qwen_code.subagents.definitions import sdk_agent

    if session.subagents is None:
        raise BadRequest("this session has no `agent` tool, so agents cannot be added")
    if not isinstance(agents, dict):
        raise BadRequest("`agents` must be an object of agent definitions")
    catalog = session.subagents.catalog
    added = dict(catalog.agents)
    for name, spec in agents.items():
        try:
            added[name] = sdk_agent(str(name), spec)
        except ValueError as exc:
            raise BadRequest(f"agent {name!r}: {exc}") from None
    session.subagents.reload(dataclasses.replace(catalog, agents=added))


def context_usage(session: Session) -> dict[str, Any]:
    """How full the context window is, by part (Claude's `get_context_usage` fields)."""
    budget = session.agent.budget
    messages = session.agent.conversation.messages
    schemas = session.registry.schemas()
    system = estimate_tokens(messages[:1], budget.chars_per_token)
    tools = budget.schema_tokens(schemas)
    total = budget.estimate(messages, schemas)
    window = budget.window or 0
    categories = [
        {"name": "System prompt", "tokens": system, "color": "gray"},
        {"name": "Tools", "tokens": tools, "color": "cyan"},
        {"name": "Messages", "tokens": max(0, total - system - tools), "color": "purple"},
    ]
    if window:
        categories.append(
            {"name": "Free space", "tokens": max(0, window - total), "color": "white"}
        )
    files = [{"path": str(f.path), "type": "Project"} for f in session.context_files]
    return {
        "categories": categories,
        "totalTokens": total,
        "maxTokens": budget.hard_limit or window,
        "rawMaxTokens": window,
        "percentage": round(100 * total / window, 2) if window else 0.0,
        "model": session.model,
        "isAutoCompactEnabled": True,
        "memoryFiles": files,
        "mcpTools": [
            {"name": name, "serverName": name.split("__")[1], "isLoaded": True}
            for name in session.registry.names()
            if name.startswith("mcp__") and name.count("__") >= 2
        ],
        "agents": _agent_list(session),
    }


_MCP_STATUS = {"timeout": "failed"}


def mcp_status(session: Session) -> dict[str, Any]:
    """Each MCP server's status and tools (Claude's `mcp_status` shape)."""
    if session.mcp is None:
        return {"mcpServers": []}
    servers = []
    for status in session.mcp.statuses():
        entry: dict[str, Any] = {
            "name": status.name,
            "status": _MCP_STATUS.get(status.status, status.status),
            "scope": status.source,
            "tools": [{"name": tool} for tool in status.tools],
        }
        if status.error:
            entry["error"] = status.error
        servers.append(entry)
    return {"mcpServers": servers}


def set_model(session: Session, body: dict[str, Any]) -> dict[str, Any]:
    """Use another model from the next request on; no model: the configured one."""
    model = body.get("model") or session.settings.model.name
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("set_model needs a model name")
    session.switch_model(model.strip())
    return {}
