"""Where settings files are and how they are read and changed: `$QWEN_HOME`, the project
root, one file's JSON (a broken file is a clear error), atomic updates of one key."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeAlias

from qwen_code.errors import ConfigError


def qwen_home(env: Mapping[str, str] | None = None) -> Path:
    """Where user settings and state live: `$QWEN_HOME`, else `~/.qwen`."""
    env = os.environ if env is None else env
    home = env.get("QWEN_HOME")
    return Path(home).expanduser() if home else Path.home() / ".qwen"


def find_project_settings(cwd: Path, home: Path) -> Path | None:
    """The project's `.qwen/settings.json`: at the project root (the git root, or the
    working directory outside git) only, never in a folder above it, never the user's home
    (whose `.qwen` holds user settings, not a project's)."""
    root = project_root(cwd)
    if root == Path.home().resolve():
        return None
    candidate = root / ".qwen" / "settings.json"
    if candidate.parent.resolve() == home.resolve():
        return None
    return candidate if candidate.is_file() else None


def read_settings_file(path: Path) -> dict[str, Any]:
    """Parse one settings file; a broken file is an error naming the file (exit 52)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read settings file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"Settings file {path} is broken: it is not UTF-8 text (byte {exc.start})."
        ) from exc
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"Settings file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}): "
            f"{exc.msg}"
        ) from exc
    except RecursionError as exc:
        raise ConfigError(f"Settings file {path} is broken: it nests too deeply.") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"Settings file {path} must hold a JSON object.")
    if _depth_exceeds(data, MAX_SETTINGS_DEPTH):
        raise ConfigError(f"Settings file {path} is broken: it nests too deeply.")
    return data


MAX_SETTINGS_DEPTH = 64
"""Real settings nest a handful of levels; far deeper is a broken (or hostile) file."""


def _depth_exceeds(data: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        stack.extend((child, depth + 1) for child in children)
    return False


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `override` into a copy of `base`; nested objects merge, other values replace."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


SettingsScope: TypeAlias = Literal["project", "user"]


def project_root(cwd: Path) -> Path:
    """The git root above `cwd`, or `cwd` itself outside a repository.

    A `.git` owned by another user does not count (git itself calls such a repository
    "dubious"): otherwise anyone who can write `/tmp/.git` would make `/tmp` the project
    of every folder below it."""
    for directory in (cwd, *cwd.parents):
        marker = directory / ".git"
        if marker.exists() and _owned_by_us(marker):
            return directory
    return cwd


def _owned_by_us(path: Path) -> bool:
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return True
    try:
        return path.stat().st_uid == getuid()
    except OSError:
        return False


def project_id(cwd: Path) -> str:
    """A directory name for per-project state under `$QWEN_HOME/projects/`."""
    root = str(project_root(cwd).resolve())
    return re.sub(r"[^A-Za-z0-9._-]", "-", root).strip("-") or "root"


def settings_path(
    scope: SettingsScope,
    *,
    cwd: Path,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """The file a scope's settings are written to (`home`: `$QWEN_HOME` of `env` unless
    given)."""
    home = home if home is not None else qwen_home(env)
    if scope == "user":
        return home / "settings.json"
    return find_project_settings(cwd, home) or project_root(cwd) / ".qwen" / "settings.json"


def update_settings_file(path: Path, keys: tuple[str, ...], update: Any) -> None:
    """Change one value in a settings file, keeping everything else, atomically.

    `update` receives the current value (or None) and returns the new one.
    """
    from qwen_code.atomic import atomic_write

    data = read_settings_file(path) if path.is_file() else {}
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        node[key] = child = child if isinstance(child, dict) else {}
        node = child
    node[keys[-1]] = update(node.get(keys[-1]))
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    atomic_write(path, text.encode("utf-8"))


def add_allow_rule(
    rule: str,
    scope: SettingsScope,
    *,
    cwd: Path,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Persist an allow rule (`permissions.allow`, Qwen Code's current key) for the project
    or the user; returns the file."""
    path = settings_path(scope, cwd=cwd, home=home, env=env)

    def add(current: Any) -> list[Any]:
        rules = list(current) if isinstance(current, list) else []
        return rules if rule in rules else [*rules, rule]

    update_settings_file(path, ("permissions", "allow"), add)
    return path
