"""`skill`: load a skill's instructions when the model decides to use one (see
`qwen_code.skills`). A skill's `allowed-tools` become allow rules for the rest of the
session when the skill may grant them (a personal skill, or a trusted project's)."""

from __future__ import annotations

from qwen_code.skills import SkillCatalog
from qwen_code.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParams

SKILLS_KEY = "skills"
"""`ctx.state[SKILLS_KEY]`: the session's `SkillCatalog`."""


class SkillTool(Tool["SkillTool.Params"]):
    name = "skill"
    kind = "read"

    class Params(ToolParams):
        skill: str
        """The skill's name, exactly as listed in the system prompt."""
        args: str | None = None
        """What the skill should work on, when the user gave something."""

    def summary(self, params: SkillTool.Params) -> str:
        return params.skill

    async def run(self, params: SkillTool.Params, ctx: ToolContext) -> ToolOutput:
        catalog: SkillCatalog | None = ctx.state.get(SKILLS_KEY)
        skill = catalog.get(params.skill.strip()) if catalog else None
        if catalog is None or skill is None or not skill.model_invocable:
            names = ", ".join(s.name for s in catalog.for_model()) if catalog else ""
            raise ToolError(f"No skill named {params.skill!r}. Available: {names or 'none'}.")
        try:
            body = skill.body()
        except OSError as exc:
            raise ToolError(f"The skill {skill.name!r} cannot be read: {exc.strerror}.") from exc
        parts = [f"Skill: {skill.name}", f"Base directory for this skill: {skill.directory}"]
        parts += ["", body]
        files = skill.supporting_files()
        if files:
            parts += ["", "Supporting files (relative to the base directory):"]
            parts += [f"- {name}" for name in files]
        if params.args:
            parts += ["", f"ARGUMENTS: {params.args}"]
        grants: tuple[str, ...] = ()
        if skill.allowed_tools and catalog.grants(skill):
            grants = skill.allowed_tools
            parts += ["", f"Allowed without asking while you use this skill: {', '.join(grants)}."]
        elif skill.allowed_tools:
            parts += [
                "",
                f"(This project skill lists allowed-tools ({', '.join(skill.allowed_tools)}); "
                "they are not granted because the folder is not trusted.)",
            ]
        return ToolOutput(content="\n".join(parts), data={"skill": skill.name}, grant_rules=grants)
