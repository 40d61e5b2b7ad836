"""Model-facing text lives in template files, rendered strictly.

Lookup order: project `.qwen/prompts/NAME` > user `$QWEN_HOME/prompts/NAME` > the
templates shipped in the package. Templates use `string.Template` syntax (`$name`,
`${name}`); a placeholder without a value is an error, never an empty string.
"""

from __future__ import annotations

import os
import platform
import string
from collections.abc import Mapping
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from qwen_code import memory
from qwen_code.errors import ConfigError

if TYPE_CHECKING:
    from qwen_code.config import Settings
    from qwen_code.memory import ContextFile


def shipped_dir() -> Path:
    """The packaged templates; in an editable install, the repository's `prompts/`."""
    packaged = Path(str(files("qwen_code") / "prompts"))
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "prompts"


def export_templates(directory: str | Path, *, force: bool = False) -> list[tuple[Path, bool]]:
    """Copy the shipped templates into `directory`; (path, written) for each."""
    from qwen_code.atomic import atomic_write

    target = Path(directory).expanduser()
    results = []
    for source in sorted(shipped_dir().rglob("*.md")):
        dest = target / source.relative_to(shipped_dir())
        if dest.exists() and not force:
            results.append((dest, False))
            continue
        atomic_write(dest, source.read_bytes())
        results.append((dest, True))
    return results


def find_template(name: str, *, project_dir: Path | None, user_dir: Path | None) -> Path:
    for base in (
        project_dir / ".qwen" / "prompts" if project_dir else None,
        user_dir / "prompts" if user_dir else None,
        shipped_dir(),
    ):
        if base is not None and (base / name).is_file():
            return base / name
    raise ConfigError(
        f"Prompt template {name!r} was not found (looked in .qwen/prompts, "
        f"$QWEN_HOME/prompts and the shipped templates)."
    )


def render(template_text: str, values: Mapping[str, str], *, source: str = "template") -> str:
    """Substitute every placeholder; a missing value raises `ConfigError`."""
    template = string.Template(template_text)
    missing = sorted({name for name in template.get_identifiers() if name not in values})
    if missing:
        raise ConfigError(f"{source} uses undefined placeholder(s): {', '.join(missing)}")
    try:
        return template.substitute(values)
    except ValueError as exc:
        raise ConfigError(f"{source} is not a valid template: {exc}") from exc


def load(
    name: str,
    values: Mapping[str, str],
    *,
    project_dir: Path | None = None,
    user_dir: Path | None = None,
) -> str:
    path = find_template(name, project_dir=project_dir, user_dir=user_dir)
    return render(path.read_text(encoding="utf-8"), values, source=str(path))


def git_description(cwd: Path) -> str:
    """One line about version control, read from `.git` directly (no subprocess)."""
    for directory in (cwd, *cwd.parents):
        git = directory / ".git"
        if git.is_dir():
            head = git / "HEAD"
            try:
                ref = head.read_text(encoding="utf-8").strip()
            except OSError:
                ref = ""
            branch = ref.removeprefix("ref: refs/heads/") if ref.startswith("ref:") else ""
            where = f" rooted at {directory}" if directory != cwd else ""
            on = f", on branch {branch}" if branch else ", detached HEAD"
            return f"This is a git repository{where}{on}."
        if git.is_file():
            return f"This is a git worktree or submodule rooted at {directory}."
    return "This directory is not a git repository."


def environment_values(cwd: Path, extra_roots: list[Path] | None = None) -> dict[str, str]:
    """Facts about the machine stated once at session start (so the prefix never changes)."""
    extra = "".join(f"- Also in the workspace: {p}\n" for p in extra_roots or ())
    system = platform.system()
    return {
        "cwd": str(cwd),
        "workspace_extra": extra,
        "platform": f"{system} {platform.release()}" if system else "unknown",
        "shell": os.environ.get("SHELL", "/bin/sh"),
        "git": git_description(cwd),
        "date": date.today().isoformat(),
    }


def system_prompt(
    cwd: Path,
    *,
    user_dir: Path | None = None,
    extra_roots: list[Path] | None = None,
    context: str = "",
) -> str:
    """The shipped (or overridden) template, then the user's context files."""
    base = load(
        "system.md",
        environment_values(cwd, extra_roots),
        project_dir=cwd,
        user_dir=user_dir,
    ).strip()
    return f"{base}\n\n{context}" if context else base


def build_system_prompt(
    settings: Settings, cwd: Path, *, home: Path, extra_roots: list[Path] | None = None
) -> tuple[str, list[ContextFile]]:
    """The session's system prompt and the context files in it.

    `--system-prompt` / `QWEN_SYSTEM_MD` replace the template (context files are still
    added, as in Qwen Code); `--append-system-prompt` goes last. Built once per session:
    it never changes between turns, so every request extends the previous one.

    The files include entries for what was left out (`ContextFile.skipped`: outside the
    project, over the size limit, a refused `context.fileName`); `memory.notices(files)`
    are the lines front ends show the user.
    """
    files = memory.discover(cwd, home, settings.context.file_names())
    context = memory.render(files)
    if settings.system_prompt is not None:
        base = "\n\n".join(p for p in (settings.system_prompt.strip(), context) if p)
    else:
        base = system_prompt(cwd, user_dir=home, extra_roots=extra_roots, context=context)
    extra = (settings.append_system_prompt or "").strip()
    return (f"{base}\n\n{extra}" if extra else base), files
