"""Builds a ready-to-run session from settings: client, tools, workspace, agent, and the
observers that keep its transcript and checkpoints.

Front ends (headless, REPL) call `open_session` and differ only in the approver they
pass and how they render the events.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qwen_code.agent.approval import SHELL_TOOL, Approver, Permissions
from qwen_code.agent.compress import Compressor
from qwen_code.agent.context import ContextBudget
from qwen_code.agent.conversation import Conversation
from qwen_code.agent.loop import Agent
from qwen_code.agent.loop_detection import LoopDetector
from qwen_code.agent.tool_runner import ToolRunner
from qwen_code.config import Provider, Settings
from qwen_code.credentials import Credentials
from qwen_code.errors import ConfigError
from qwen_code.llm.client import ChatClient
from qwen_code.llm.modalities import MODALITIES_KEY, SessionModalities
from qwen_code.llm.pricing import load_pricing
from qwen_code.memory import memory_file_name
from qwen_code.prompts import build_system_prompt
from qwen_code.sandbox.manager import Sandbox
from qwen_code.sandbox.policy import CREDENTIAL_PATHS, expand_paths, parse_network
from qwen_code.session.hooks_setup import add_hooks
from qwen_code.session.live import Session, SessionObserver
from qwen_code.session.mcp_setup import McpLifecycle, mcp_manager, server_approval, skipped_notes
from qwen_code.session.models import (
    context_window_for,
    max_output_tokens,
    model_config,
    pick_model,
)
from qwen_code.session.persistence import Persistence
from qwen_code.session.server_info import start_probe, use_server_info
from qwen_code.session.side_model import SessionSideModel
from qwen_code.session.store import LoadedSession, SessionWriter
from qwen_code.skills import discover_skills
from qwen_code.subagents.definitions import discover_agents
from qwen_code.subagents.runner import SUBAGENTS_KEY, Subagents
from qwen_code.subagents.tool import AgentTool
from qwen_code.tools.base import ToolContext, ToolLimits
from qwen_code.tools.registry import ToolRegistry, builtin_registry
from qwen_code.tools.shell_watch import SHELL_OPTIONS_KEY, ShellOptions
from qwen_code.tools.skill import SKILLS_KEY, SkillTool
from qwen_code.tools.web_search import CONFIG_KEY as SEARCH_KEY
from qwen_code.tools.web_search import SearchConfig
from qwen_code.tools.workspace import Workspace

__all__ = ["Session", "SessionObserver", "model_config", "open_session"]


def workspace_for(settings: Settings, cwd: Path, scratch: Path) -> Workspace:
    """The directories tools may use: cwd, `--include-directories`, and the scratch space
    (where full shell output is saved, so the model can read it back)."""
    extra = []
    for raw in settings.context.include_directories:
        path = (cwd / Path(raw).expanduser()).resolve()
        if not path.is_dir():
            raise ConfigError(f"--include-directories: {raw!r} is not a directory.")
        extra.append(path)
    return Workspace(root=cwd, extra_roots=(*extra, scratch))


async def connect(
    settings: Settings, provider: Provider
) -> tuple[ChatClient, list[dict[str, Any]]]:
    """A client for the provider's model, asking the server for one when none is set.
    Also returns the server's model list when it was fetched (else [])."""
    cache_control = settings.model.generation_config.enable_cache_control
    client = ChatClient(
        model_config(settings, provider, provider.model or ""), cache_control=cache_control
    )
    served: list[dict[str, Any]] = []
    if provider.model is None:
        try:
            served = await client.list_models()
            model = pick_model(provider, served)
        except BaseException:
            await client.aclose()
            raise
        client.config = model_config(settings, provider, model)
    return client, served


async def open_session(
    settings: Settings,
    provider: Provider,
    *,
    cwd: Path,
    home: Path,
    approver: Approver,
    resume: LoadedSession | None = None,
    observers: Sequence[SessionObserver] | None = None,
    headless: bool = False,
    session_id: str | None = None,
    fork: bool = False,
) -> Session:
    """Everything one conversation needs; `approver` answers the tool calls that need
    the user. With `resume`, the saved conversation continues (same id, same transcript
    file) after being checked and repaired. `observers` default to the transcript and
    checkpoints as the settings ask (`persistence_for`); pass [] for none. `headless`:
    nobody can be asked (the `auto` sandbox turns on when rules let commands through).
    `session_id`: the id of a new session (`--session-id`); `fork`: a resumed conversation
    continues under a new id, in a new transcript (`--fork-session`)."""
    session_id = resume.info.id if resume and not fork else session_id or str(uuid.uuid4())
    tool_ctx = _tool_context(settings, cwd, home, home / "tmp" / session_id, provider=provider)
    client, served = await connect(settings, provider)
    probe = start_probe(client, served)  # runs while the rest of start-up goes on
    try:
        registry = builtin_registry(project_dir=tool_ctx.workspace.root, user_dir=home)
        runner = _runner(settings, registry, tool_ctx, approver, home=home, headless=headless)
        root, included = tool_ctx.workspace.root, list(tool_ctx.workspace.extra_roots[:-1])
        prompt, files = build_system_prompt(settings, root, home=home, extra_roots=included)
        prompt = _with_skills(prompt, settings, tool_ctx, registry)
        session = Session(
            id=session_id,
            agent=_agent(settings, client, runner, prompt, served, resume, home=home),
            settings=settings,
            provider=provider,
            home=home,
            system_prompt=prompt,
            context_files=files,
            pricing=load_pricing(settings.model_pricing, base_url=provider.base_url),
        )
        if observers is None:
            observers = persistence_for(session, None if fork else resume)
        for observer in observers:
            session.observe(observer)
        await _extend(session, approver, served, headless=headless, resumed=resume is not None)
        use_server_info(session, await probe)
    except BaseException:
        probe.cancel()
        raise
    return session


def _agent(
    settings: Settings,
    client: ChatClient,
    runner: ToolRunner,
    prompt: str,
    served: list[dict[str, Any]],
    resume: LoadedSession | None,
    *,
    home: Path,
) -> Agent:
    """The agent: the conversation (a resumed one continues), its compressor and loop
    detector."""
    window = context_window_for(settings, client.config.model, served)
    conversation = Conversation.with_system(prompt)
    conversation.reset(resume.messages if resume else ())
    return Agent(
        model=client,
        tools=runner,
        conversation=conversation,
        max_turns=settings.model.max_session_turns,
        compressor=Compressor(
            budget=_budget(settings, client, window),
            project_dir=runner.ctx.workspace.root,
            user_dir=home,
        ),
        loops=LoopDetector(enabled=not settings.model.skip_loop_detection),
    )


async def _extend(
    session: Session,
    approver: Approver,
    served: list[dict[str, Any]],
    *,
    headless: bool,
    resumed: bool,
) -> None:
    """What joins the agent once it exists: subagents, tool services, MCP, hooks."""
    _add_subagents(session, headless=headless)
    _add_tool_services(session, session.client, served)
    _keep_only(session.registry, session.settings.tools_only)
    await _start_mcp(session, approver, headless=headless)
    await add_hooks(session, approver, headless=headless, source="resume" if resumed else "startup")


def _keep_only(registry: ToolRegistry, names: list[str] | None) -> None:
    """`--tools`: drop the built-in tools not named (`default` keeps them all)."""
    if names is None or "default" in names:
        return
    from qwen_code.tool_names import tool_names

    keep = tool_names(names)
    for name in registry.names():
        if name not in keep:
            registry.unregister(name)


def _add_tool_services(session: Session, client: ChatClient, served: list[dict[str, Any]]) -> None:
    """What tools use beyond files and commands: the side model (web_fetch's summaries,
    image descriptions), whether the model takes images, the web search providers."""
    settings, provider, ctx = session.settings, session.provider, session.tool_ctx
    ctx.side_model = side = SessionSideModel(settings, provider, client)
    session.closers.append(side.aclose)
    ctx.state[MODALITIES_KEY] = SessionModalities(settings, lambda: client.config.model, served)
    ctx.state[SEARCH_KEY] = SearchConfig.from_session(settings, provider)


async def _start_mcp(session: Session, approver: Approver, *, headless: bool) -> None:
    """Start the configured MCP servers (none: nothing is imported) and register their
    tools; failures become notes (`session.mcp.notes`), never errors."""
    manager = mcp_manager(
        session.settings,
        cwd=session.cwd,
        registry=session.registry,
        env=os.environ,
        log_dir=session.tool_ctx.scratch(),
    )
    if manager is None:
        return
    session.mcp = manager
    session.observe(McpLifecycle(manager))
    approve = server_approval(
        session.settings, cwd=session.cwd, home=session.home, approver=approver, headless=headless
    )
    try:
        await manager.start(approve)
    except BaseException:
        await manager.aclose()
        raise
    manager.notes.extend(skipped_notes(manager))


def _add_subagents(session: Session, *, headless: bool) -> None:
    """The `agent` tool and what runs its agents; subagent transcripts are saved beside
    the session's (`<id>/subagents/<agent>-<call id>.jsonl`) when the session is."""
    settings = session.settings
    catalog = discover_agents(session.cwd, session.home)
    persistence = session.observer(Persistence)
    writer = persistence.writer if persistence is not None else None

    def transcript(name: str, call_id: str) -> SessionWriter | None:
        if writer is None:
            return None
        folder = writer.path.with_suffix("") / "subagents"
        return SessionWriter(
            folder / f"{name}-{call_id}.jsonl",
            session_id=session.id,
            cwd=session.cwd,
            model=session.model,
        )

    def client_for(model: str) -> ChatClient:
        cache = settings.model.generation_config.enable_cache_control
        return ChatClient(model_config(settings, session.provider, model), cache_control=cache)

    agents = Subagents(
        parent=session.agent,
        catalog=catalog,
        max_depth=settings.model.max_subagent_depth,
        max_concurrent=settings.model.max_concurrent_subagents,
        fast_model=settings.fast_model,
        client_for=client_for,
        transcripts=transcript,
        wait_for_background=headless,
    )
    tool = AgentTool(catalog)
    session.registry.register(tool)
    agents.reloaders.append(
        lambda new: session.registry.register(_described(tool, new), replace=True)
    )
    session.tool_ctx.state[SUBAGENTS_KEY] = agents
    session.subagents = agents


def _described(tool: AgentTool, catalog: Any) -> AgentTool:
    tool.describe(catalog)
    return tool


def persistence_for(session: Session, resume: LoadedSession | None) -> list[SessionObserver]:
    """The transcript and checkpoints the settings ask for (none when both are off)."""
    persistence = Persistence.create(
        session.settings,
        home=session.home,
        cwd=session.cwd,
        session_id=session.id,
        model=session.model,
    )
    if persistence.writer is None and persistence.checkpoints is None:
        return []
    if resume is not None and persistence.writer is not None:
        persistence.writer.adopt(resume.messages)
    return [persistence]


def _with_skills(prompt: str, settings: Settings, ctx: ToolContext, registry: ToolRegistry) -> str:
    """Find the session's skills; with any the model may use, the `skill` tool joins the
    registry and their names and descriptions the system prompt."""
    trust: Any = settings.trust
    catalog = discover_skills(
        ctx.workspace.root,
        ctx.home or Path(),
        project_trusted=bool(trust is not None and trust.granted),
    )
    ctx.state[SKILLS_KEY] = catalog
    section = catalog.prompt_section()
    if not section:
        return prompt
    registry.register(SkillTool())
    return f"{prompt}\n\n{section}"


def _runner(
    settings: Settings,
    registry: ToolRegistry,
    ctx: ToolContext,
    approver: Approver,
    *,
    home: Path,
    headless: bool,
) -> ToolRunner:
    """The tool runner with the session's rules, and the sandbox its commands run in."""
    permissions = Permissions.from_settings(settings, workspace=ctx.workspace, home=home)
    ctx.sandbox = sandbox_for(settings, home, headless=headless, permissions=permissions)
    return ToolRunner(
        registry=registry,
        ctx=ctx,
        approver=approver,
        mode=settings.tools.approval_mode,
        permissions=permissions,
    )


def sandbox_for(
    settings: Settings, home: Path, *, headless: bool, permissions: Permissions
) -> Sandbox:
    """The session's command sandbox, from `tools.sandbox` (see `qwen_code.sandbox`)."""
    conf = settings.tools.sandbox
    env = dict(os.environ)
    hidden = expand_paths([*CREDENTIAL_PATHS, *conf.hidden_paths], Path.home(), env)
    network = parse_network(conf.network)
    if isinstance(network, tuple):
        from qwen_code.sandbox.proxy import Rule

        try:
            for entry in network:
                Rule.parse(entry)
        except ValueError as exc:
            raise ConfigError(f"tools.sandbox.network: {exc}") from exc
    return Sandbox(
        setting=conf.mode,
        network=network,
        hosts=dict(conf.hosts),
        hidden=(*hidden, home),
        headless=headless,
        shell_preapproved=any(rule.names(SHELL_TOOL) for rule in permissions.allow),
    )


def _budget(settings: Settings, client: ChatClient, window: int | None) -> ContextBudget:
    return ContextBudget(
        window=window,
        threshold=settings.model.chat_compression.context_percentage_threshold,
        max_output_tokens=max_output_tokens(client.config),
    )


def _tool_context(
    settings: Settings, cwd: Path, home: Path, scratch: Path, *, provider: Provider
) -> ToolContext:
    limits = ToolLimits(
        max_output_chars=settings.tools.truncate_tool_output_threshold,
        max_output_lines=settings.tools.truncate_tool_output_lines,
    )
    ctx = ToolContext(
        workspace=workspace_for(settings, cwd, scratch),
        limits=limits,
        scratch_dir=scratch,
        home=home,
        memory_file_name=memory_file_name(settings.context.file_names()),
        credentials=Credentials.collect(
            api_key=provider.api_key,
            api_key_source=provider.api_key_source,
            pass_to_commands=settings.security.pass_credentials_to_commands,
        ),
    )
    shell = settings.tools.shell
    ctx.state[SHELL_OPTIONS_KEY] = ShellOptions(
        input_wait_s=shell.input_wait_seconds, auto_background_s=shell.auto_background_seconds
    )
    return ctx
