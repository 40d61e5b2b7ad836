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

from qwen_code.errors import ConfigError

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
    "hooks",
    "hooksConfig",
    "advanced",
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
    "tools.truncateToolOutputThreshold",
    "tools.truncateToolOutputLines",
    "context.fileName",
    "permissions.ask",
    "permissions.deny",
    "modelPricing",
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
    from qwen_code.tools.fileio import atomic_write

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
