"""`agent`: start a subagent (see `qwen_code.subagents.runner`). Parameters as Qwen Code's
`agent` tool: `description`, `prompt`, `subagent_type`, `run_in_background`. The agents
available are listed in the tool's description, so the model can choose."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qwen_code.subagents.definitions import GENERAL_PURPOSE, AgentCatalog
from qwen_code.subagents.runner import SUBAGENTS_KEY
from qwen_code.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParams
from qwen_code.tools.events import CURRENT_CALL

if TYPE_CHECKING:
    from qwen_code.subagents.runner import Subagents


class AgentTool(Tool["AgentTool.Params"]):
    name = "agent"
    kind = "think"
    """Starting an agent changes nothing: each of its own calls is approved as usual."""

    class Params(ToolParams):
        description: str
        """A short (3-5 word) description of the task, shown to the user."""
        prompt: str
        """The complete task for the agent."""
        subagent_type: str | None = None
        """The agent to use (one of those listed); general-purpose when omitted."""
        run_in_background: bool = False
        """Return at once; the agent's report arrives later as a message."""

    def __init__(self, catalog: AgentCatalog) -> None:
        self.describe(catalog)

    def describe(self, catalog: AgentCatalog) -> None:
        """The description lists the agents of `catalog`."""
        from qwen_code import prompts

        self.use_description(prompts.load("tools/agent.md", {"agents": catalog.prompt_list()}))

    def summary(self, params: AgentTool.Params) -> str:
        return f"{params.subagent_type or GENERAL_PURPOSE}: {params.description}"

    async def run(self, params: AgentTool.Params, ctx: ToolContext) -> ToolOutput:
        agents: Subagents | None = ctx.state.get(SUBAGENTS_KEY)
        if agents is None:
            raise ToolError("No more agents can be started from here (nesting limit).")
        name = (params.subagent_type or GENERAL_PURPOSE).strip()
        definition = agents.catalog.get(name)
        if definition is None:
            known = ", ".join(agents.catalog.names())
            raise ToolError(f"No agent named {name!r}. Available: {known}.")
        if not params.prompt.strip():
            raise ToolError("The prompt is empty: give the agent its complete task.")
        return await agents.run(
            definition,
            params.prompt,
            params.description.strip() or name,
            call_id=CURRENT_CALL.get() or "agent",
            background=params.run_in_background,
        )
