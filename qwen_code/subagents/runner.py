"""Running subagents: each one an `Agent` of its own (fresh conversation, its own system
prompt, the tools its definition allows) on the session's client, tool context, approver,
mode and rules, with the same compression and loop detection as the main agent.

One `Subagents` per agent that may start subagents (the session's, and one per nesting
level below it, up to `model.maxSubagentDepth`). It bounds how many run at once
(`model.maxConcurrentSubagents`), passes each step on to the front ends while the `agent`
call runs (`SubagentEvent`, through the tool runner's progress channel), runs
`run_in_background` agents as tasks whose results arrive later as messages (it is the
parent agent's `Inbox`), and keeps each subagent's transcript beside the session's.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

from qwen_code.agent.compress import Compressor
from qwen_code.agent.context import ContextBudget
from qwen_code.agent.conversation import Conversation
from qwen_code.agent.events import (
    ApprovalRequested,
    AssistantMessage,
    Compressed,
    Event,
    SubagentEvent,
    ToolCallStarted,
    ToolResult,
    TurnEnd,
    UsageInfo,
)
from qwen_code.agent.hook_points import on_subagent_start
from qwen_code.agent.loop import Agent
from qwen_code.agent.loop_detection import LoopDetector
from qwen_code.subagents.definitions import AgentCatalog, SubagentDef
from qwen_code.tools.base import ToolOutput
from qwen_code.tools.events import PROGRESS
from qwen_code.tools.todo import TODOS_KEY

if TYPE_CHECKING:
    from qwen_code.llm.types import ChatModel

SUBAGENTS_KEY = "subagents"
"""`ctx.state[SUBAGENTS_KEY]`: the `Subagents` of the agent whose tools see that context."""
USER_ONLY_TOOLS = frozenset({"ask_user_question", "exit_plan_mode", "structured_output"})
"""Tools that talk to the person at the keyboard (a subagent has nobody to ask), and the
run's `--json-schema` answer (only the main agent's call ends the run)."""

Status: TypeAlias = Literal["running", "completed", "failed", "cancelled"]


class TranscriptSink(Protocol):
    """Where a subagent's conversation is saved as it grows (`SessionWriter`)."""

    path: Path

    def sync(self, messages: list[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


TranscriptFactory: TypeAlias = Callable[[str, str], "TranscriptSink | None"]
"""(agent name, call id) → where its transcript goes (None: not saved)."""


@dataclass(slots=True)
class SubagentTask:
    """One subagent run, for live lines, `/agents` and reports."""

    name: str
    description: str
    call_id: str
    background: bool
    started: float = field(default_factory=time.monotonic)
    status: Status = "running"
    ended: float | None = None
    current: str = ""
    """The tool it is running now ("" while it waits for the model)."""
    tool_calls: int = 0
    usage: UsageInfo = field(default_factory=UsageInfo)
    transcript: Path | None = None

    @property
    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started


@dataclass(slots=True)
class _Outcome:
    end: TurnEnd
    denials: list[str]


class Subagents:
    """The subagents one agent may start (see the module docstring)."""

    def __init__(
        self,
        *,
        parent: Agent,
        catalog: AgentCatalog,
        max_depth: int = 2,
        max_concurrent: int = 4,
        depth: int = 1,
        fast_model: str = "",
        client_for: Callable[[str], ChatModel] | None = None,
        transcripts: TranscriptFactory | None = None,
        wait_for_background: bool = False,
    ) -> None:
        self.parent = parent
        self.catalog = catalog
        self.max_depth, self.max_concurrent, self.depth = max_depth, max_concurrent, depth
        self.fast_model = fast_model
        self.client_for = client_for
        self.transcripts = transcripts
        self.wait_for_background = wait_for_background
        """Whether the parent's turn waits for background agents before it ends (headless,
        and every subagent: its result must include what it started)."""
        self.tasks: list[SubagentTask] = []
        self.watchers: list[Callable[[SubagentEvent], None]] = []
        """Told about the steps of background agents (the REPL's live lines)."""
        self.reloaders: list[Callable[[AgentCatalog], None]] = []
        self._inbox: list[str] = []
        self._arrived = asyncio.Event()
        self._slots = asyncio.Semaphore(max_concurrent)
        self._background: set[asyncio.Task[None]] = set()
        self._clients: dict[str, ChatModel] = {}
        parent.inbox = self

    # --- the catalog --------------------------------------------------------------------

    def reload(self, catalog: AgentCatalog) -> None:
        """Use re-read agent definitions (after `/agents create`)."""
        self.catalog = catalog
        for reload in self.reloaders:
            reload(catalog)

    def running(self) -> list[SubagentTask]:
        return [t for t in self.tasks if t.status == "running"]

    # --- the parent's inbox --------------------------------------------------------------

    def take(self) -> list[str]:
        notes, self._inbox = self._inbox, []
        self._arrived.clear()
        return notes

    def waiting(self) -> bool:
        return self.wait_for_background and (bool(self._inbox) or bool(self._background))

    async def wait(self) -> None:
        while not self._inbox and self._background:
            await self._arrived.wait()
            self._arrived.clear()

    # --- running ------------------------------------------------------------------------

    async def run(
        self,
        agent: SubagentDef,
        prompt: str,
        description: str,
        *,
        call_id: str,
        background: bool = False,
    ) -> ToolOutput:
        """Run `agent` on `prompt`; its final answer (and nothing else of its history) is
        the result. In the background: return at once, deliver the result later."""
        task = SubagentTask(agent.name, description, call_id, background)
        self.tasks.append(task)
        if background:
            return self._start_background(agent, prompt, task)
        emit = PROGRESS.get()
        async with self._slots:
            outcome = await self._drive(agent, prompt, task, emit)
        return self._output(agent, task, outcome)

    def _start_background(self, agent: SubagentDef, prompt: str, task: SubagentTask) -> ToolOutput:
        # A fresh context: the steps must not go to the progress channel of a call that
        # is about to return.
        job = asyncio.create_task(
            self._in_background(agent, prompt, task), context=contextvars.Context()
        )
        self._background.add(job)
        job.add_done_callback(self._job_done)
        return ToolOutput(
            content=(
                f"The {agent.name} agent is working in the background (id {task.call_id}). "
                "Its result will arrive as a message when it finishes; go on meanwhile, and do "
                "not start it again."
            ),
            data={"agent": agent.name, "background": True},
        )

    async def _in_background(self, agent: SubagentDef, prompt: str, task: SubagentTask) -> None:
        try:
            async with self._slots:
                outcome = await self._drive(agent, prompt, task, self._watch)
            output = self._output(agent, task, outcome)
            text = output.content
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not vanish with the task: report it
            task.status, text = "failed", f"The agent failed: {exc}"
        self._inbox.append(
            f"<agent-notification>\nThe background agent {agent.name} ({task.description}, "
            f"id {task.call_id}) has finished ({task.status}).\n\n{text}\n</agent-notification>"
        )
        self._arrived.set()

    def _job_done(self, job: asyncio.Task[None]) -> None:
        self._background.discard(job)
        self._arrived.set()  # a waiter re-checks what is left

    def _watch(self, event: SubagentEvent) -> None:
        """A background agent's step: its usage counts now (no `agent` call carries
        it), and the watchers see it."""
        self.parent.count_subagent(event)
        for watcher in self.watchers:
            watcher(event)

    async def _drive(
        self,
        definition: SubagentDef,
        prompt: str,
        task: SubagentTask,
        emit: Callable[[Any], None] | None,
    ) -> _Outcome:
        """Run the subagent to its end, passing its events on; cancellation (Ctrl+C)
        propagates after the transcript is saved."""
        agent = self._build(definition)
        sink = self.transcripts(definition.name, task.call_id) if self.transcripts else None
        task.transcript = sink.path if sink is not None else None

        def send(event: Event | None) -> None:
            if emit is not None:
                emit(
                    SubagentEvent(
                        parent_call_id=task.call_id,
                        agent=definition.name,
                        description=task.description,
                        event=event,
                    )
                )

        send(None)
        outcome = _Outcome(TurnEnd(reason="error", error="the agent did not start"), [])
        agent.hook_fields = {"agent_id": task.call_id, "agent_type": definition.name}
        context, said = await on_subagent_start(agent.hooks, task.call_id, definition.name)
        for notice in said:
            send(notice)
        agent.pending_context.extend([context] if context else [])
        try:
            async with asyncio.timeout(definition.max_time_s):
                async for event in agent.run(prompt):
                    _track(task, event, outcome)
                    if sink is not None and isinstance(event, _SAVED):
                        _save(sink, agent)
                    send(event)
            task.status = "completed" if outcome.end.reason == "completed" else "failed"
        except TimeoutError:
            minutes = (definition.max_time_s or 0) / 60
            outcome.end = TurnEnd(
                reason="error",
                error=f"it ran past its time limit ({minutes:g} min)",
                final_text=outcome.end.final_text,
            )
            task.status = "failed"
            send(outcome.end)
        except asyncio.CancelledError:
            task.status = "cancelled"
            raise
        finally:
            task.ended, task.usage = time.monotonic(), agent.usage
            task.current = ""
            if sink is not None:
                _save(sink, agent)
                sink.close()
        return outcome

    def _build(self, definition: SubagentDef) -> Agent:
        """The subagent's `Agent`: its own conversation and context copy, the parent's
        approver, rules and checkpoints hook, a mode no wider than the parent's."""
        parent = self.parent
        runner = parent.tools
        nested = self.depth < self.max_depth
        names = [
            name
            for name in runner.registry.names()
            if name not in USER_ONLY_TOOLS
            and (name != "agent" or nested)
            and definition.allows(name)
        ]
        state = {k: v for k, v in runner.ctx.state.items() if k not in (TODOS_KEY, SUBAGENTS_KEY)}
        ctx = dataclasses.replace(runner.ctx, state=state, user=None)
        mode = "plan" if definition.plan_only else runner.mode
        tools = runner.restricted(names, ctx=ctx, mode=mode, agent_label=definition.name)
        budget = parent.budget
        agent = Agent(
            model=self._model(definition.model),
            tools=tools,
            conversation=Conversation.with_system(_system_prompt(definition, ctx.workspace.root)),
            max_turns=definition.max_turns or parent.max_turns,
            compressor=Compressor(
                budget=ContextBudget(
                    window=budget.window,
                    threshold=budget.threshold,
                    max_output_tokens=budget.max_output_tokens,
                ),
                project_dir=parent.compressor.project_dir,
                user_dir=parent.compressor.user_dir,
            ),
            loops=LoopDetector(enabled=parent.loops.enabled),
        )
        agent.hooks, agent.prompt_hooks, agent.stop_event = parent.hooks, False, "SubagentStop"
        children = Subagents(
            parent=agent,
            catalog=self.catalog,
            max_depth=self.max_depth,
            max_concurrent=self.max_concurrent,
            depth=self.depth + 1,
            fast_model=self.fast_model,
            client_for=self.client_for,
            transcripts=self.transcripts,
            wait_for_background=True,
        )
        if nested:
            ctx.state[SUBAGENTS_KEY] = children
        return agent

    def _model(self, wanted: str) -> ChatModel:
        """The client for an agent's `model`: the parent's for `inherit` (and for `fast`
        when no `fastModel` is set), else one per model id, closed with the session."""
        current = self.parent.model
        model_id = self.fast_model if wanted == "fast" else wanted
        config = getattr(current, "config", None)
        if (
            model_id in ("", "inherit")
            or self.client_for is None
            or (config is not None and model_id == config.model)
        ):
            return current
        if model_id not in self._clients:
            self._clients[model_id] = self.client_for(model_id)
        return self._clients[model_id]

    def _output(self, agent: SubagentDef, task: SubagentTask, outcome: _Outcome) -> ToolOutput:
        end = outcome.end
        text = end.final_text.strip()
        is_error = False
        if end.reason == "completed":
            content = text or "(The agent finished without a final message.)"
        elif end.reason == "max_turns":
            content = f"The agent stopped at its limit of {end.num_turns} model requests."
            content += f" Its last message:\n\n{text}" if text else ""
        else:
            content = f"The agent stopped with an error: {end.error or 'unknown'}."
            content += f" Its last message:\n\n{text}" if text else ""
            is_error = not text
        if outcome.denials:
            content += "\n\n(Refused while the agent worked: " + "; ".join(outcome.denials) + ")"
        usage = task.usage
        return ToolOutput(
            content=content,
            is_error=is_error,
            data={
                "agent": agent.name,
                "status": task.status,
                "turns": end.num_turns,
                "tool_calls": task.tool_calls,
                "total_tokens": usage.total_tokens,
                "duration_s": round(task.elapsed, 1),
                "transcript": str(task.transcript) if task.transcript else None,
            },
        )

    async def aclose(self) -> None:
        """Cancel background agents and close the clients opened for other models."""
        jobs = list(self._background)
        for job in jobs:
            job.cancel()
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)
        for client in self._clients.values():
            close = getattr(client, "aclose", None)
            if close is not None:
                await close()
        self._clients.clear()


_SAVED = (AssistantMessage, ToolResult, TurnEnd, Compressed)


def _track(task: SubagentTask, event: Event, outcome: _Outcome) -> None:
    match event:
        case ToolCallStarted(call=call, summary=summary):
            task.current = f"{call.name} {summary}".strip()
            task.tool_calls += 1
        case ToolResult():
            task.current = ""
        case ApprovalRequested(call=call, decision="denied", message=message):
            outcome.denials.append(f"{call.name}: {message or 'denied'}")
        case TurnEnd():
            outcome.end = event


def _save(sink: TranscriptSink, agent: Agent) -> None:
    # A full disk is reported by the main transcript; the subagent's is a copy.
    with contextlib.suppress(OSError):
        sink.sync(agent.conversation.messages[1:])


def _system_prompt(definition: SubagentDef, cwd: Path) -> str:
    return (
        f"{definition.system_prompt}\n\n# Environment\n"
        f"- Working directory: {cwd}\n"
        f"- Platform: {platform.system().lower()}\n"
        f"- Today's date: {date.today().isoformat()}"
    )
