"""Skills in the REPL: `/skills` lists them (and files that are not valid skills), and each
user-invocable skill is a slash command `/<skill-name> [args]` that sends the skill's
instructions (with the arguments) to the model. A built-in or custom command of the same
name wins."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from qwen_code.tools.skill import SKILLS_KEY
from qwen_code.ui.commands import COMMANDS, Command, command

if TYPE_CHECKING:
    from qwen_code.skills import Skill, SkillCatalog
    from qwen_code.ui.repl import Repl

_OWN: dict[str, Command] = {}


def catalog_of(repl: Repl) -> SkillCatalog | None:
    catalog: SkillCatalog | None = repl.session.tool_ctx.state.get(SKILLS_KEY)
    return catalog


def setup(repl: Repl) -> None:
    """Register the session's user-invocable skills as slash commands."""
    for name, entry in _OWN.items():
        if COMMANDS.get(name) is entry:
            del COMMANDS[name]
    _OWN.clear()
    catalog = catalog_of(repl)
    for skill in catalog.skills.values() if catalog else ():
        name = skill.name.lower()
        if not skill.user_invocable or name in COMMANDS:
            continue
        description = f"Skill: {' '.join(skill.description.split())}"  # /help prints it as text
        entry = Command(name, description[:200], _runner(skill))
        COMMANDS[name] = entry
        _OWN[name] = entry


def skill_message(skill: Skill, args: str) -> str:
    """What `/<skill> args` sends: the instructions, where the skill lives, the arguments."""
    parts = [
        f'Use the skill "{skill.name}" for this request.',
        f"Base directory for this skill: {skill.directory}",
        "",
        skill.body(),
    ]
    if args.strip():
        parts += ["", f"ARGUMENTS: {args.strip()}"]
    return "\n".join(parts)


def _runner(skill: Skill):  # type: ignore[no-untyped-def]
    async def run(repl: Repl, args: str) -> None:
        try:
            message = skill_message(skill, args)
        except OSError as exc:
            repl.console.print(Text(f"The skill {skill.name!r} cannot be read: {exc}", "red"))
            return
        await repl.send(message, echo=f"/{skill.name} {args}".strip())

    return run


@command("skills", "List the skills (model-invoked, or run with /<skill-name>)")
async def _skills(repl: Repl, args: str) -> None:
    catalog = catalog_of(repl)
    if catalog is None or (not catalog.skills and not catalog.problems):
        where = ".qwen/skills/NAME/SKILL.md or ~/.qwen/skills/"
        repl.console.print(Text(f"No skills found ({where}; see docs/skills.md)."))
        return
    for skill in catalog.skills.values():
        line = Text(f"  {skill.name}", style="bold")
        where = "project" if skill.source == "project" else "personal"
        flags = [] if skill.model_invocable else ["not for the model"]
        if not skill.user_invocable:
            flags.append("no slash command")
        line.append(f"  ({where}{', ' + ', '.join(flags) if flags else ''})  ", style="dim")
        line.append(" ".join(skill.description.split())[:160])
        repl.console.print(line)
    for problem in catalog.problems:
        repl.console.print(Text(f"  skipped {problem}", style="yellow"))
