"""Builds a ready-to-run session from settings: client, tools, workspace, agent.

Front ends (headless, REPL) call `open_session` and differ only in the approver they
pass and how they render the events.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_code.agent.approval import Approver, Permissions
from qwen_code.agent.compress import Compressor
from qwen_code.agent.context import ContextBudget
from qwen_code.agent.conversation import Conversation
from qwen_code.agent.events import Event, ToolCall
from qwen_code.agent.loop import Agent
from qwen_code.agent.loop_detection import LoopDetector
from qwen_code.agent.tool_runner import ToolRunner
from qwen_code.config import Provider, Settings, qwen_home
from qwen_code.credentials import Credentials
from qwen_code.errors import ConfigError
from qwen_code.llm.client import ChatClient
from qwen_code.llm.models import default_output_tokens, known_context_window
from qwen_code.llm.pricing import PriceTable, load_pricing
from qwen_code.llm.sampling import default_sampling
from qwen_code.llm.types import ModelConfig
from qwen_code.memory import ContextFile, memory_file_name
from qwen_code.prompts import build_system_prompt
from qwen_code.session.persistence import Persistence
from qwen_code.session.store import LoadedSession
from qwen_code.tools.base import ToolContext, ToolKind, ToolLimits
from qwen_code.tools.registry import ToolRegistry, builtin_registry
from qwen_code.tools.shell import shutdown_background_jobs
from qwen_code.tools.shell_watch import SHELL_OPTIONS_KEY, ShellOptions
from qwen_code.tools.workspace import Workspace


@dataclass(slots=True, kw_only=True)
class Session:
    """One conversation with its model client, tools and scratch space."""

    id: str
    agent: Agent
    client: ChatClient
    registry: ToolRegistry
    tool_ctx: ToolContext
    model: str
    settings: Settings
    provider: Provider
    cwd: Path
    system_prompt: str
    context_files: list[ContextFile] = field(default_factory=list)
    context_window: int | None = None
    """Tokens the model accepts, when known (settings, server, or the built-in table)."""
    pricing: PriceTable | None = None
    """Token prices (settings `modelPricing` over the built-in table), for cost display."""
    persistence: Persistence | None = None
    """The transcript file and the checkpoints (None when both are turned off)."""
    started_at: float = field(default_factory=time.monotonic)

    def attach_persistence(self, home: Path, resume: LoadedSession | None = None) -> None:
        self.persistence = Persistence.create(
            self.settings, home=home, cwd=self.cwd, session_id=self.id, model=self.model
        )
        if resume is not None and self.persistence.writer is not None:
            self.persistence.writer.adopt(resume.messages)
        conversation = lambda: self.agent.conversation  # noqa: E731 (it is replaced by /clear)
        persistence = self.persistence

        async def before_change(call: ToolCall, kind: ToolKind) -> None:
            await persistence.before_change(call, kind, conversation())

        self.runner.before_change = before_change

    def run(self, prompt: str) -> AsyncIterator[Event]:
        """`agent.run(prompt)`, with the transcript saved and checkpoints made as it goes."""
        events = self.agent.run(prompt)
        if self.persistence is None:
            return events
        return self.persistence.run(self.agent.conversation, events)

    def replace_conversation(self, messages: list[dict[str, Any]]) -> None:
        """Continue from other messages (a restored checkpoint, a saved chat)."""
        conversation = Conversation.with_system(self.system_prompt)
        conversation.messages.extend(messages)
        conversation.repair()
        self.agent.conversation = conversation
        self.agent.budget.reset()
        if self.persistence is not None:
            self.persistence.sync(conversation)

    @property
    def runner(self) -> ToolRunner:
        return self.agent.tools

    def clear(self) -> None:
        """Start a new conversation, with a new id and transcript (same system prompt, so
        server prefix caches still hit). The old session can still be resumed."""
        self.id = str(uuid.uuid4())
        if self.persistence is not None:
            self.persistence.restart(self.id, home=qwen_home(), cwd=self.cwd, model=self.model)
        self.replace_conversation([])

    def switch_model(self, model: str, served: list[dict[str, Any]] | None = None) -> None:
        """Use another model from the next request on."""
        self.client.config = model_config(self.settings, self.provider, model)
        self.model = model
        self.context_window = context_window_for(self.settings, model, served)
        self.agent.budget.window = self.context_window
        self.agent.budget.max_output_tokens = max_output_tokens(self.client.config)

    async def aclose(self) -> None:
        """Stop background jobs, close connections, remove the scratch directory."""
        try:
            await shutdown_background_jobs(self.tool_ctx)
        finally:
            if self.persistence is not None:
                self.persistence.sync(self.agent.conversation)
                self.persistence.close()
            await self.client.aclose()
            if self.tool_ctx.scratch_dir is not None:
                shutil.rmtree(self.tool_ctx.scratch_dir, ignore_errors=True)


def model_config(settings: Settings, provider: Provider, model: str) -> ModelConfig:
    """The client's settings for `model`. The reply's token limit: the settings'
    `samplingParams.max_tokens` when set, else one that suits the model (`output_limit`)."""
    generation = settings.model.generation_config
    sampling = {**default_sampling(model), **(generation.sampling_params or {})}
    window = generation.context_window_size or known_context_window(model)
    return ModelConfig(
        base_url=provider.base_url,
        api_key=provider.api_key,
        model=model,
        api_key_source=provider.api_key_source,
        timeout_s=generation.timeout / 1000,
        max_retries=generation.max_retries,
        sampling={k: v for k, v in sampling.items() if v is not None},
        headers=dict(generation.custom_headers),
        extra_body=dict(generation.extra_body),
        max_retry_time_s=generation.max_retry_time / 1000,
        stall_timeout_s=generation.stream_stall_timeout / 1000,
        output_limit=default_output_tokens(model, window),
        context_window=window,
    )


def max_output_tokens(config: ModelConfig) -> int | None:
    """The reply's token limit when the request sets one."""
    value = config.max_tokens or config.sampling.get("max_tokens")
    return value if isinstance(value, int) and value > 0 else None


def context_window_for(
    settings: Settings, model: str, served: list[dict[str, Any]] | None = None
) -> int | None:
    """The context window: settings, else what the server reported, else the known table."""
    configured = settings.model.generation_config.context_window_size
    if configured:
        return configured
    for entry in served or ():
        if entry.get("id") == model and isinstance(entry.get("max_model_len"), int):
            return int(entry["max_model_len"])
    return known_context_window(model)


def pick_model(provider: Provider, served: list[dict[str, Any]]) -> str:
    """Nothing named a model: use the one the server serves, or say which to choose."""
    models = [m["id"] for m in served]
    if len(models) == 1:
        return models[0]
    served = ", ".join(models) if models else "none"
    raise ConfigError(
        f"No model is set and the server at {provider.base_url} serves {served}. "
        "Set OPENAI_MODEL or pass --model."
    )


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
    approver: Approver,
    resume: LoadedSession | None = None,
) -> Session:
    """Everything one conversation needs. With `resume`, the saved conversation continues
    (same id, same transcript file) after being checked and repaired."""
    session_id = resume.info.id if resume else str(uuid.uuid4())
    pricing = load_pricing(settings.model_pricing, base_url=provider.base_url)
    home = qwen_home()
    tool_ctx = _tool_context(settings, cwd, home, home / "tmp" / session_id, provider=provider)
    workspace = tool_ctx.workspace
    client, served = await connect(settings, provider)
    registry = builtin_registry(project_dir=workspace.root, user_dir=home)
    runner = ToolRunner(
        registry=registry,
        ctx=tool_ctx,
        approver=approver,
        mode=settings.tools.approval_mode,
        permissions=Permissions.from_settings(settings, workspace=workspace, home=home),
    )
    included = list(workspace.extra_roots[:-1])
    prompt, files = build_system_prompt(settings, workspace.root, home=home, extra_roots=included)
    window = context_window_for(settings, client.config.model, served)
    budget = _budget(settings, client, window)
    conversation = Conversation.with_system(prompt)
    if resume:
        conversation.messages.extend(resume.messages)
        conversation.repair()
    agent = Agent(
        model=client,
        tools=runner,
        conversation=conversation,
        max_turns=settings.model.max_session_turns,
        compressor=Compressor(budget=budget, project_dir=workspace.root, user_dir=home),
        loops=LoopDetector(enabled=not settings.model.skip_loop_detection),
    )
    session = Session(
        id=session_id,
        agent=agent,
        client=client,
        registry=registry,
        tool_ctx=tool_ctx,
        model=client.config.model,
        settings=settings,
        provider=provider,
        cwd=workspace.root,
        system_prompt=prompt,
        context_files=files,
        context_window=window,
        pricing=pricing,
    )
    session.attach_persistence(home, resume)
    return session


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
