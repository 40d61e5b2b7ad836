"""`exit_plan_mode`: in plan mode, the model presents its plan for the user's approval.

The front end shows the plan and asks whether to proceed (`UserChannel.review_plan`).
Approved: the result switches the session to the mode the user chose (`switch_mode`,
applied by the tool runner) and tells the model to go ahead. Not approved: the session
stays in plan mode and the model gets the user's feedback. With nobody to ask (headless)
the plan itself is the answer: the model is told to end its turn with it.
"""

from __future__ import annotations

from pydantic import Field

from qwen_code.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParams
from qwen_code.tools.user_input import PlanMode

NO_USER = (
    "Nobody can approve a plan in this run (it is non-interactive), so you stay in plan "
    "mode and change nothing. End your turn now with the full plan as your answer."
)
_MODE_MEANS: dict[PlanMode, str] = {
    "auto-edit": "file edits run without asking, commands still ask the user",
    "default": "the user approves each edit and command",
}


class ExitPlanModeTool(Tool["ExitPlanModeTool.Params"]):
    name = "exit_plan_mode"
    kind = "think"

    class Params(ToolParams):
        plan: str = Field(min_length=1)
        """The plan to run by the user, in concise Markdown."""

    async def run(self, params: ExitPlanModeTool.Params, ctx: ToolContext) -> ToolOutput:
        mode = ctx.approval_mode
        if mode != "plan":
            return ToolOutput(
                content=f"You are not in plan mode (the approval mode is {mode}): "
                "exit_plan_mode is only for plan mode. Do not call it again; carry on.",
                display=f"Not in plan mode ({mode}).",
            )
        if not params.plan.strip():
            raise ToolError("`plan` is empty: pass the plan itself, in Markdown.")
        if ctx.user is None:
            return ToolOutput(content=NO_USER, display="No user to approve the plan.")
        review = await ctx.user.review_plan(params.plan)
        if review.approved and review.mode is not None:
            return ToolOutput(
                content=f"The user approved the plan. The approval mode is now {review.mode} "
                f"({_MODE_MEANS[review.mode]}). Go ahead and carry out the plan; update the "
                "todo list first if it has several steps.",
                display=f"Plan approved · {review.mode} mode",
                data={"mode": review.mode},
                switch_mode=review.mode,
            )
        if review.feedback:
            return ToolOutput(
                content="The user did not approve the plan; you are still in plan mode. "
                f"Their feedback:\n{review.feedback}\n"
                "Revise the plan and call exit_plan_mode again.",
                display=f"Keep planning: {review.feedback}",
            )
        return ToolOutput(
            content="The user did not approve the plan; you are still in plan mode. End "
            "your turn and wait for their instructions.",
            display="Keep planning.",
        )
