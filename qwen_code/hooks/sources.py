"""Where hooks come from: each settings file that may define them, with its source.

The merged `Settings.hooks` cannot say which file a hook came from (and a project's list
for an event would replace the user's), so the files are read again here, as far as the
settings' own rules let them apply: the user's file; the project's `.qwen/settings.json`
only in a trusted folder; `--settings`; Claude Code's files only when the user's own
settings say `"hooksConfig": {"readClaudeSettings": true}` (a project cannot turn that
on), the project's again only in a trusted folder. `--setting-sources` leaves out the
user's files or the project's. Hooks of every file add up, in that order; the same hook
(event, matcher and command) twice runs once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qwen_code.errors import ConfigError
from qwen_code.hooks.config import HookSpec, Source, parse_hooks
from qwen_code.settings_files import find_project_settings, project_root, read_settings_file

if TYPE_CHECKING:
    from qwen_code.config import Flags
    from qwen_code.settings_model import Settings

CLAUDE_DIR_ENV = "CLAUDE_CONFIG_DIR"
"""Claude Code's variable for another location of `~/.claude`."""


@dataclass(frozen=True, slots=True)
class _Layer:
    source: Source
    path: Path | None
    data: Mapping[str, Any]


def load_hooks(
    settings: Settings,
    *,
    cwd: Path,
    home: Path,
    flags: Flags | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[list[HookSpec], list[str]]:
    """Every hook the settings define, with its source, and a notice for each entry
    skipped (malformed, an unsupported type or event, an unreadable Claude Code file).

    `home` is `$QWEN_HOME`; `flags` gives `--settings` (its file) and
    `--setting-sources`; without them the `--settings` hooks are taken from
    `settings.hooks` (source "flag", path None) and the user's file is read even when
    `--setting-sources` left it out. `env` (default: the process environment) gives
    `CLAUDE_CONFIG_DIR`. `disableAllHooks: true` in any file read, or in the
    merged settings: no hooks."""
    env = os.environ if env is None else env
    notices: list[str] = []
    layers = _layers(settings, cwd=cwd, home=home, flags=flags, env=env, notices=notices)
    if settings.disable_all_hooks or any(
        layer.data.get("disableAllHooks") is True for layer in layers
    ):
        return [], notices
    specs: list[HookSpec] = []
    seen: set[str] = set()
    for layer in layers:
        found, skipped = parse_hooks(layer.data.get("hooks"), source=layer.source, path=layer.path)
        notices.extend(skipped)
        for spec in found:
            if spec.fingerprint() not in seen:
                seen.add(spec.fingerprint())
                specs.append(spec)
    return specs, notices


def _layers(
    settings: Settings,
    *,
    cwd: Path,
    home: Path,
    flags: Flags | None,
    env: Mapping[str, str],
    notices: list[str],
) -> list[_Layer]:
    """The settings files that apply, lowest precedence first."""
    read_user, read_project = _sources_read(settings, flags)
    trusted = read_project and settings.trust is not None and settings.trust.granted
    user_path = home / "settings.json"
    user = read_settings_file(user_path) if read_user and user_path.is_file() else {}
    layers = [_Layer("user", user_path, user)]
    project = find_project_settings(cwd, home) if trusted else None
    if project is not None:
        layers.append(_Layer("project", project, read_settings_file(project)))
    if flags is not None and flags.settings is not None:
        from qwen_code.config import _settings_flag

        text = flags.settings.strip()
        path = None if text.startswith("{") else (cwd / Path(text).expanduser()).resolve()
        layers.append(_Layer("flag", path, _settings_flag(flags.settings, cwd)))
    elif flags is None:
        layers.append(_given_layer(settings, layers))
    if _reads_claude(user):
        layers.extend(_claude_layers(cwd, env, user=read_user, project=trusted, notices=notices))
    return layers


def _given_layer(settings: Settings, files: list[_Layer]) -> _Layer:
    """Without `flags`, the hooks `--settings` (or a caller building `Settings`) gave, as
    the merged settings show them: an event's merged list is the list of the last layer
    that has the event, so a list that is neither the user's nor the project's came from
    above them."""
    given: dict[str, Any] = {}
    for event, groups in settings.hooks.items():
        from_files = (_event_hooks(layer.data, event) for layer in files)
        if all(groups != found for found in from_files):
            given[event] = groups
    return _Layer("flag", None, {"hooks": given})


def _event_hooks(data: Mapping[str, Any], event: str) -> Any:
    hooks = data.get("hooks")
    return hooks.get(event) if isinstance(hooks, dict) else None


def _sources_read(settings: Settings, flags: Flags | None) -> tuple[bool, bool]:
    """Whether the user's files and the project's are read (`--setting-sources`)."""
    sources = flags.setting_sources if flags is not None else None
    read_user = sources is None or "user" in sources
    return read_user, settings.project_sources


def _reads_claude(user: Mapping[str, Any]) -> bool:
    config = user.get("hooksConfig")
    return isinstance(config, dict) and config.get("readClaudeSettings") is True


def claude_user_file(env: Mapping[str, str]) -> Path:
    """Claude Code's user settings: `$CLAUDE_CONFIG_DIR/settings.json`, else
    `~/.claude/settings.json`."""
    override = env.get(CLAUDE_DIR_ENV)
    base = Path(override).expanduser() if override else Path.home() / ".claude"
    return base / "settings.json"


def _claude_layers(
    cwd: Path, env: Mapping[str, str], *, user: bool, project: bool, notices: list[str]
) -> list[_Layer]:
    user_file = claude_user_file(env)
    candidates: list[tuple[Source, Path]] = [("claude-user", user_file)] if user else []
    if project:
        folder = project_root(cwd) / ".claude"
        for name in ("settings.json", "settings.local.json"):
            path = folder / name
            if path.resolve() != user_file.resolve():  # the home folder is no project
                candidates.append(("claude-project", path))
    layers: list[_Layer] = []
    for source, path in candidates:
        if not path.is_file():
            continue
        try:
            layers.append(_Layer(source, path, read_settings_file(path)))
        except ConfigError as exc:
            notices.append(f"hooks of {path} are off: {exc}")
    return layers
