"""Folder trust: whether a folder's own configuration may widen what qwen-code does there.

A repository is text written by someone else. Its `.qwen/settings.json` may set harmless
things (a model, a context file name, compression) or things that hand it power over the
user: an approval mode, allow rules, extra directories, a provider URL that would receive
the user's API key, environment, shell settings, and later MCP servers and hooks. The
second kind applies only in a folder the user trusts.

Decisions live in `$QWEN_HOME/trustedFolders.json` in Qwen Code's format, so a Qwen Code
user's file works as is: `{"/abs/path": "TRUST_FOLDER" | "TRUST_PARENT" | "DO_NOT_TRUST"}`.
`TRUST_PARENT` trusts the folder's parent (and so every folder under it). The deepest
matching rule wins; on a tie, "do not trust" wins. Unlike Qwen Code, trust is on by
default (`security.folderTrust.enabled`, read from the user's settings only).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel

from qwen_code.errors import ConfigError
from qwen_code.settings_files import find_project_settings, project_root, read_settings_file
from qwen_code.settings_model import Settings

TrustLevel: TypeAlias = Literal["TRUST_FOLDER", "TRUST_PARENT", "DO_NOT_TRUST"]
LEVELS: tuple[TrustLevel, ...] = ("TRUST_FOLDER", "TRUST_PARENT", "DO_NOT_TRUST")
FILE_NAME = "trustedFolders.json"
PATH_ENV = "QWEN_CODE_TRUSTED_FOLDERS_PATH"
"""Qwen Code's variable for another location of the trust file."""
OPT_IN_ENV = "QWEN_CODE_TRUST_WORKSPACE"
"""Set to `true` (or `1`) to trust the working folder for this run (headless CI)."""
OPT_IN_FLAG = "--trust-workspace"

Source: TypeAlias = Literal["file", "flag", "env", "disabled", "none"]

GATED_KEYS: tuple[str, ...] = (
    "tools.approvalMode",
    "tools.allowed",
    "tools.core",
    "tools.shell",
    "tools.sandbox",
    "tools.discoveryCommand",
    "tools.callCommand",
    "permissions.allow",
    "context.includeDirectories",
    "security",
    "modelProviders",
    "model.generationConfig.customHeaders",
    "model.generationConfig.extra_body",
    "env",
    "mcpServers",
    "mcp",
    "model.maxSubagentDepth",
    "model.maxConcurrentSubagents",
    "hooks",
    "hooksConfig",
    "disableAllHooks",
    "advanced",
    "webSearch.provider",
    "proxy",
)
"""Project keys that widen power or redirect credentials: applied only in a trusted
folder (and `security.folderTrust` never from a project). A key counts when it equals
one of these or lies below it."""

SAFE_KEYS: tuple[str, ...] = (
    "general",
    "model.name",
    "model.maxSessionTurns",
    "model.skipLoopDetection",
    "model.chatCompression",
    "model.generationConfig.timeout",
    "model.generationConfig.maxRetries",
    "model.generationConfig.maxRetryTime",
    "model.generationConfig.streamStallTimeout",
    "model.generationConfig.samplingParams",
    "model.generationConfig.contextWindowSize",
    "model.generationConfig.enableCacheControl",
    "model.generationConfig.modalities",
    "tools.truncateToolOutputThreshold",
    "tools.truncateToolOutputLines",
    "context.fileName",
    "permissions.ask",
    "permissions.deny",
    "modelPricing",
    "fastModel",
    "visionModel",
    "webSearch.default",
    "webSearch.maxResults",
    "webSearch.timeout",
    "ui",
)
"""Project keys that apply everywhere: they change how qwen-code looks or talks to the
model the user chose, or they narrow what it may do (ask and deny rules)."""


@dataclass(frozen=True, slots=True)
class Trust:
    """The trust of one folder, and where the answer came from."""

    trusted: bool | None
    """True or False when decided; None when nobody has decided yet (treated as not trusted)."""
    source: Source
    rule: str = ""
    """The `trustedFolders.json` entry that decided, as `path: LEVEL`."""

    @property
    def granted(self) -> bool:
        return self.trusted is True


@dataclass(slots=True)
class TrustFile:
    """The user's trust decisions."""

    path: Path
    rules: dict[str, TrustLevel] = field(default_factory=dict)

    def decide(self, folder: Path) -> Trust:
        """The deepest rule containing `folder` decides; a tie goes to "do not trust"."""
        best: tuple[int, bool, str] | None = None
        candidates = _variants(folder)
        for raw, level in self.rules.items():
            base = Path(raw).expanduser()
            base = base.parent if level == "TRUST_PARENT" else base
            for variant in _variants(base):
                if not any(c == variant or c.is_relative_to(variant) for c in candidates):
                    continue
                depth, trusted = len(variant.parts), level != "DO_NOT_TRUST"
                if best is None or depth > best[0] or (depth == best[0] and not trusted):
                    best = (depth, trusted, f"{raw}: {level}")
        if best is None:
            return Trust(None, "none")
        return Trust(best[1], "file", best[2])


def _variants(path: Path) -> set[Path]:
    """The path as written (made absolute) and with symlinks resolved, as Qwen Code does."""
    return {Path(os.path.normpath(path.absolute())), Path(os.path.realpath(path))}


def trust_file_path(home: Path, env: Mapping[str, str]) -> Path:
    override = env.get(PATH_ENV)
    return Path(override).expanduser() if override else home / FILE_NAME


def load_trust_file(home: Path, env: Mapping[str, str]) -> TrustFile:
    """Read the decisions; a broken file is a clear error (exit 52), not a silent "trusted"."""
    path = trust_file_path(home, env)
    if not path.is_file():
        return TrustFile(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ConfigError(f"Trusted folders file {path} cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"Trusted folders file {path} must hold a JSON object.")
    rules: dict[str, TrustLevel] = {}
    for key, value in data.items():
        if value not in LEVELS:
            raise ConfigError(
                f"Trusted folders file {path}: {key!r} has level {value!r}; "
                f"use one of {', '.join(LEVELS)}."
            )
        rules[str(key)] = value
    return TrustFile(path, rules)


def save_decision(folder: Path, level: TrustLevel, home: Path, env: Mapping[str, str]) -> Path:
    """Record a decision for `folder` (keeping every other entry), atomically. The file is
    not followed through a symlink: a link planted there could redirect the write."""
    from qwen_code.atomic import atomic_write

    current = load_trust_file(home, env)
    if current.path.is_symlink():
        raise ConfigError(f"Trusted folders file {current.path} is a symlink; not writing it.")
    rules = {**current.rules, str(Path(os.path.normpath(folder.absolute()))): level}
    atomic_write(current.path, (json.dumps(rules, indent=2) + "\n").encode("utf-8"))
    with contextlib.suppress(OSError):
        current.path.chmod(0o600)
    return current.path


def opt_in_from_env(env: Mapping[str, str]) -> bool:
    return env.get(OPT_IN_ENV, "").strip().lower() in ("1", "true", "yes")


def folder_trust(
    folder: Path,
    *,
    home: Path,
    env: Mapping[str, str],
    enabled: bool = True,
    opt_in: bool = False,
) -> Trust:
    """How far `folder` (the project root) is trusted. `opt_in` is the command-line flag."""
    if not enabled:
        return Trust(True, "disabled")
    if opt_in:
        return Trust(True, "flag")
    if opt_in_from_env(env):
        return Trust(True, "env")
    return load_trust_file(home, env).decide(folder)


# --- what a project's settings may set --------------------------------------------------

KeyPath: TypeAlias = tuple[str, ...]


def leaf_keys(data: Mapping[str, Any], prefix: KeyPath = ()) -> Iterator[KeyPath]:
    """The key paths of the values in a settings object (`("tools", "approvalMode")`).
    Paths, not dotted strings: model ids in `modelPricing` contain dots."""
    for key, value in data.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and value:
            yield from leaf_keys(value, path)
        else:
            yield path


def dotted(path: KeyPath) -> str:
    return ".".join(path)


def _under(path: KeyPath, prefixes: tuple[str, ...]) -> bool:
    return any(tuple(p.split(".")) == path[: p.count(".") + 1] for p in prefixes)


def is_gated(path: KeyPath) -> bool:
    """True for a project key that applies only in a trusted folder. Keys not known to be
    safe count as gated, so a new setting is never applied from an untrusted folder by
    accident."""
    return _under(path, GATED_KEYS) or not _under(path, SAFE_KEYS)


NEVER_FROM_PROJECT = ("security.folderTrust", "security.passCredentialsToCommands")
"""Decisions only the user makes: a project cannot turn trust off or take the keys."""


def split_project_settings(
    data: Mapping[str, Any], *, trusted: bool
) -> tuple[dict[str, Any], list[str]]:
    """The part of a project settings object that applies, and the (dotted) keys left out.
    In a folder that is not trusted, every gated key is left out."""
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for path in leaf_keys(data):
        if _under(path, NEVER_FROM_PROJECT) or (not trusted and is_gated(path)):
            dropped.append(dotted(path))
            continue
        _set(kept, path, _get(data, path))
    return kept, dropped


def _get(data: Mapping[str, Any], path: KeyPath) -> Any:
    node: Any = data
    for part in path:
        node = node[part]
    return node


def _set(data: dict[str, Any], path: KeyPath, value: Any) -> None:
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


# --- the project's settings, as far as trust lets them apply ------------------------------


@dataclass(slots=True)
class ProjectLayer:
    """The project's settings file, what of it applies, and what was left out."""

    path: Path | None
    applied: dict[str, Any]
    trust: Trust
    notices: list[str]
    """One line per key left out, for the user."""
    reported: list[str]
    """The keys left out (each gated section once)."""


def project_layer(
    cwd: Path, home: Path, env: Mapping[str, str], user: Mapping[str, Any], *, opt_in: bool
) -> ProjectLayer:
    """Read the project's settings and keep what the folder's trust lets apply. `user` is
    the user's own settings (only they can turn folder trust off); `opt_in` is
    `--trust-workspace`."""
    trust = folder_trust(
        project_root(cwd), home=home, env=env, enabled=_trust_enabled(user), opt_in=opt_in
    )
    path = find_project_settings(cwd, home)
    if path is None:
        return ProjectLayer(None, {}, trust, [], [])
    applied, dropped = split_project_settings(read_settings_file(path), trusted=trust.granted)
    reported = _reportable(dropped)
    notices = [_ignored_notice(key, path, trust.granted) for key in reported]
    return ProjectLayer(path, applied, trust, notices, reported)


def _trust_enabled(user: Mapping[str, Any]) -> bool:
    security = user.get("security")
    folder = security.get("folderTrust") if isinstance(security, dict) else None
    return not isinstance(folder, dict) or folder.get("enabled", True) is not False


FREE_FORM_KEYS = (
    "env",
    "proxy",
    "mcpServers",
    "mcp",
    "hooks",
    "hooksConfig",
    "modelProviders",
    "model.generationConfig.customHeaders",
    "model.generationConfig.extra_body",
)
"""Gated sections whose entries are the user's own names: reported as one key."""


def _reportable(dropped: list[str]) -> list[str]:
    """The dropped keys worth a notice: a free-form section once (`mcpServers`, not every
    server's every field), other keys by name (`security.auth.baseUrl`); keys qwen-code
    would ignore anyway are not reported."""
    seen: list[str] = []
    for key in dropped:
        free = next((g for g in FREE_FORM_KEYS if key == g or key.startswith(g + ".")), None)
        gated = any(key == g or key.startswith(g + ".") for g in GATED_KEYS)
        if free is None and not gated and not _known_key(tuple(key.split("."))):
            continue
        shown = free or key
        if shown not in seen:
            seen.append(shown)
    return seen


def _known_key(path: tuple[str, ...]) -> bool:
    """True when `Settings` has this (camelCase) key path."""
    model: Any = Settings
    for part in path:
        fields = {(f.alias or name): f for name, f in model.model_fields.items()}
        field_info = fields.get(part)
        if field_info is None:
            return False
        annotation = field_info.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return True  # a leaf, or a free-form dict (prices, headers)
        model = annotation
    return True


def _ignored_notice(key: str, path: Path, trusted: bool) -> str:
    if trusted:
        return f"ignoring {key} from {path}: only your own settings can set it."
    return (
        f"ignoring {key} from {path}: this folder is not trusted "
        f"(trust it with /trust in an interactive session, or pass --trust-workspace)."
    )
