"""Builds a ready-to-run session from settings: client, tools, workspace, agent.

Front ends (headless, REPL) call `open_session` and differ only in the approver they
pass and how they render the events.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from qwen_code.agent.approval import Approver, parse_rules
from qwen_code.agent.conversation import Conversation
from qwen_code.agent.loop import Agent
from qwen_code.agent.tool_runner import ToolRunner
from qwen_code.config import Provider, Settings, qwen_home
from qwen_code.errors import ConfigError
from qwen_code.llm.client import ChatClient
from qwen_code.llm.sampling import default_sampling
from qwen_code.llm.types import ModelConfig
from qwen_code.prompts import system_prompt
from qwen_code.tools.base import ToolContext, ToolLimits
from qwen_code.tools.registry import ToolRegistry, builtin_registry
from qwen_code.tools.shell import shutdown_background_jobs
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
    cwd: Path
    started_at: float = field(default_factory=time.monotonic)

    async def aclose(self) -> None:
        """Stop background jobs, close connections, remove the scratch directory."""
        try:
            await shutdown_background_jobs(self.tool_ctx)
        finally:
            await self.client.aclose()
            if self.tool_ctx.scratch_dir is not None:
                shutil.rmtree(self.tool_ctx.scratch_dir, ignore_errors=True)


def model_config(settings: Settings, provider: Provider, model: str) -> ModelConfig:
    generation = settings.model.generation_config
    sampling = {**default_sampling(model), **(generation.sampling_params or {})}
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
    )


async def pick_model(client: ChatClient, provider: Provider) -> str:
    """Nothing named a model: use the one the server serves, or say which to choose."""
    models = [m["id"] for m in await client.list_models()]
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
    allow_outside = settings.tools.approval_mode == "yolo"
    return Workspace(root=cwd, extra_roots=(*extra, scratch), allow_outside=allow_outside)


async def connect(settings: Settings, provider: Provider) -> ChatClient:
    """A client for the provider's model, asking the server for one when none is set."""
    client = ChatClient(model_config(settings, provider, provider.model or ""))
    if provider.model is None:
        try:
            model = await pick_model(client, provider)
        except BaseException:
            await client.aclose()
            raise
        client.config = model_config(settings, provider, model)
    return client


async def open_session(
    settings: Settings, provider: Provider, *, cwd: Path, approver: Approver
) -> Session:
    session_id = str(uuid.uuid4())
    home = qwen_home()
    scratch = home / "tmp" / session_id
    workspace = workspace_for(settings, cwd, scratch)
    limits = ToolLimits(
        max_output_chars=settings.tools.truncate_tool_output_threshold,
        max_output_lines=settings.tools.truncate_tool_output_lines,
    )
    tool_ctx = ToolContext(workspace=workspace, limits=limits, scratch_dir=scratch)
    client = await connect(settings, provider)
    registry = builtin_registry()
    runner = ToolRunner(
        registry=registry,
        ctx=tool_ctx,
        approver=approver,
        mode=settings.tools.approval_mode,
        rules=parse_rules(settings.tools.allowed),
    )
    included = list(workspace.extra_roots[:-1])
    prompt = system_prompt(workspace.root, user_dir=home, extra_roots=included)
    agent = Agent(
        model=client,
        tools=runner,
        conversation=Conversation.with_system(prompt),
        max_turns=settings.model.max_session_turns,
    )
    return Session(
        id=session_id,
        agent=agent,
        client=client,
        registry=registry,
        tool_ctx=tool_ctx,
        model=client.config.model,
        settings=settings,
        cwd=workspace.root,
    )
