"""Skills: folders with a `SKILL.md` (YAML front matter `name`, `description`, optional
`allowed-tools`, `user-invocable`, `disable-model-invocation`; the body is the skill's
instructions), as Qwen Code and Claude Code write them.

Looked for in `.qwen/skills/` and `.claude/skills/` of the project, and in
`$QWEN_HOME/skills/` and `~/.claude/skills/`; a project skill wins over a personal one of
the same name. Only names and descriptions go into the system prompt; the `skill` tool
loads a body when the model decides to use it. A project skill is the repository's text: it
may instruct, but the tools it lists in `allowed-tools` are granted only in a trusted folder.
Front matter is parsed with PyYAML (skills use real YAML: lists, quoting, multi-line text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from qwen_code.front_matter import body_of, one_line, split_front_matter

Source: TypeAlias = Literal["project", "user"]

SKILL_FILE = "SKILL.md"
_NAME = re.compile(r"^[\w:.-]+$")
MAX_SKILL_BYTES = 256_000


@dataclass(frozen=True, slots=True)
class Skill:
    name: str
    description: str
    path: Path
    source: Source
    allowed_tools: tuple[str, ...] = ()
    user_invocable: bool = True
    model_invocable: bool = True

    @property
    def directory(self) -> Path:
        return self.path.parent

    def body(self) -> str:
        """The instructions (SKILL.md without its front matter)."""
        return body_of(self.path.read_text(encoding="utf-8", errors="replace"))

    def supporting_files(self, limit: int = 50) -> list[str]:
        """Other files of the skill folder (relative paths), for the model to read."""
        found = []
        for path in sorted(self.directory.rglob("*")):
            if path.is_file() and path != self.path and ".git" not in path.parts:
                found.append(str(path.relative_to(self.directory)))
            if len(found) >= limit:
                break
        return found


@dataclass(slots=True)
class SkillCatalog:
    skills: dict[str, Skill] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    project_trusted: bool = False

    def get(self, name: str) -> Skill | None:
        return self.skills.get(name)

    def for_model(self) -> list[Skill]:
        return [s for s in self.skills.values() if s.model_invocable]

    def grants(self, skill: Skill) -> bool:
        """Whether the skill's `allowed-tools` may be granted: a personal skill always, a
        project's only in a trusted folder."""
        return skill.source == "user" or self.project_trusted

    def prompt_section(self) -> str:
        """What the system prompt says about skills: names and descriptions only."""
        skills = self.for_model()
        if not skills:
            return ""
        lines = [
            "# Skills",
            "These skills are available. When one fits the task, call the `skill` tool with "
            "its name first; it returns the skill's instructions.",
            "",
        ]
        lines += [f"- {s.name}: {one_line(s.description)}" for s in skills]
        return "\n".join(lines)


def discover_skills(cwd: Path, home: Path, *, project_trusted: bool) -> SkillCatalog:
    """Every skill this session can use (see the module docstring)."""
    from qwen_code.settings_files import project_root

    root = project_root(cwd)
    catalog = SkillCatalog(project_trusted=project_trusted)
    places: list[tuple[Path, Source]] = [
        (Path.home() / ".claude" / "skills", "user"),
        (home / "skills", "user"),
        (root / ".claude" / "skills", "project"),
        (root / ".qwen" / "skills", "project"),
    ]
    for folder, source in places:  # later places win
        for skill in _skills_in(folder, source, catalog.problems):
            catalog.skills[skill.name] = skill
    return catalog


def _skills_in(folder: Path, source: Source, problems: list[str]) -> list[Skill]:
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob(f"*/{SKILL_FILE}")):
        try:
            found.append(parse_skill(path, source))
        except (OSError, ValueError) as exc:
            problems.append(f"{path}: {exc}")
    return found


def parse_skill(path: Path, source: Source) -> Skill:
    """A `SKILL.md` file → `Skill`; ValueError says what is wrong with it."""
    if path.stat().st_size > MAX_SKILL_BYTES:
        raise ValueError(f"larger than {MAX_SKILL_BYTES:,} bytes")
    meta, _ = split_front_matter(path.read_text(encoding="utf-8", errors="replace"))
    name = str(meta.get("name") or path.parent.name).strip()
    description = str(meta.get("description") or "").strip()
    if not _NAME.match(name):
        raise ValueError(f"name {name!r} may hold only letters, digits, _ : . -")
    if not description:
        raise ValueError("description is missing")
    return Skill(
        name=name,
        description=description,
        path=path,
        source=source,
        allowed_tools=_tool_list(meta.get("allowed-tools", meta.get("allowedTools"))),
        user_invocable=meta.get("user-invocable", True) is not False,
        model_invocable=meta.get("disable-model-invocation", False) is not True,
    )


def _tool_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in re.split(r",(?![^(]*\))", value) if part.strip())
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    raise ValueError("allowed-tools must be a list or a comma-separated string")
