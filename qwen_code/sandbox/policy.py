"""What a sandboxed command may touch, and when the sandbox is on.

Modes (as Codex names them): `workspace-write` (the workspace roots and a private /tmp
writable, the rest of the file system read-only), `read-only` (only the private /tmp
writable), `off`. The setting `auto` (the default) means `workspace-write` where nobody
looks at each command before it runs (yolo mode, or a headless run whose rules let shell
commands through), `off` otherwise.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

SandboxMode: TypeAlias = Literal["off", "workspace-write", "read-only"]
SandboxSetting: TypeAlias = Literal["auto", "off", "workspace-write", "read-only"]
Network: TypeAlias = Literal["none", "all"] | tuple[str, ...]

_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")

MODES: tuple[SandboxSetting, ...] = ("auto", "off", "workspace-write", "read-only")

CREDENTIAL_PATHS = (
    "~/.ssh",
    "~/.aws",
    "~/.config/gcloud",
    "~/.azure",
    "~/.kube",
    "~/.docker",
    "~/.gnupg",
    "~/.netrc",
    "~/.git-credentials",
    "~/.config/gh",
    "~/.pypirc",
    "~/.npmrc",
    "~/.qwen",
    "~/.claude",
    "~/.claude.json",
    "~/.config/qwen-code",
)
"""Hidden from sandboxed commands (plus `$QWEN_HOME` and `tools.sandbox.hiddenPaths`):
keys, tokens and the agents' own settings and transcripts."""

SYSTEM_SOCKETS = (
    "/run/user/{uid}",
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/podman",
    "/run/containerd",
    "/run/dbus",
    "/run/snapd.socket",
    "/run/snapd-snap.socket",
)
"""Hidden too: sockets that would let a command act outside the sandbox whatever its file
system view (the Docker daemon is root; the user's D-Bus and systemd can start programs;
gpg-agent and ssh-agent sign with the user's keys). `/tmp` is private anyway."""

AGENT_VARIABLES = (
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
    "GPG_AGENT_INFO",
    "DBUS_SESSION_BUS_ADDRESS",
    "DOCKER_HOST",
)
"""Left out of a sandboxed command's environment: they point at the agents above."""

PROTECTED_NAMES = (".git/hooks", ".git/config", ".qwen", ".claude", ".mcp.json", ".vscode")
"""Kept read-only inside writable roots, where they exist: a command that could write
them would run code outside the sandbox later (git hooks, `core.fsmonitor`, project
settings with hooks or MCP servers, editor tasks)."""


def effective_mode(
    setting: SandboxSetting, *, approval_mode: str, headless: bool, shell_preapproved: bool
) -> SandboxMode:
    """The mode for the next command. `auto` is on where commands run without asking:
    yolo mode, or a headless run whose allow rules let shell commands through."""
    if setting != "auto":
        return setting
    if approval_mode == "yolo" or (headless and shell_preapproved):
        return "workspace-write"
    return "off"


def parse_network(value: object) -> Network:
    """`none`, `all`, or a list of allowed domains (an empty list is `none`)."""
    if isinstance(value, str):
        if value in ("none", "all"):
            return value  # type: ignore[return-value]
        value = [value]
    domains = tuple(str(d).strip().lower().rstrip(".") for d in value or () if str(d).strip())
    return domains or "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxPolicy:
    """Everything the bubblewrap command line is built from, for one command."""

    mode: SandboxMode
    writable: tuple[Path, ...] = ()
    """Directories writable inside (the workspace roots in workspace-write)."""
    readable: tuple[Path, ...] = ()
    """Directories re-exposed read-only even under a hidden one (the scratch directory,
    where full command output is kept for the model to read back)."""
    private_tmp: Path
    """Host directory mounted as /tmp inside (kept for the session, so one command can
    leave a file there for the next)."""
    hidden: tuple[Path, ...] = ()
    exposed: tuple[Path, ...] = ()
    """Directories under the host's /tmp shown read-only inside, where the private /tmp
    would otherwise hide them: the Python and the `PATH` entries commands run from (a
    virtual environment in a checkout under /tmp, as in CI)."""
    network: Network = "none"
    proxy_socket: Path | None = None
    """The allow-list proxy's Unix socket (mounted inside), when `network` is a list."""
    env: Mapping[str, str] = field(default_factory=dict)


def expand_paths(raw: Sequence[str], home: Path, env: Mapping[str, str]) -> tuple[Path, ...]:
    """`~` and `$VAR` expanded against the given home and environment; relative paths
    are taken from the home directory."""
    values = {**env, "HOME": str(home)}
    out = []
    for item in raw:
        text = _VAR.sub(lambda m: values.get(m[1] or m[2], m[0]), item)
        if text.startswith("~"):
            text = str(home) + text[1:]
        path = Path(text)
        out.append(path if path.is_absolute() else home / path)
    return tuple(out)


def system_sockets(uid: int) -> tuple[str, ...]:
    return tuple(path.format(uid=uid) for path in SYSTEM_SOCKETS)


def tools_under_tmp(path_variable: str, interpreters: Sequence[Path]) -> tuple[Path, ...]:
    """What the private /tmp would hide that commands need: `PATH` entries and the given
    interpreter prefixes that live under /tmp (a virtual environment whole, when a `PATH`
    entry is its `bin`)."""
    found: list[Path] = []
    candidates = [Path(p) for p in path_variable.split(os.pathsep) if p] + list(interpreters)
    for candidate in candidates:
        try:
            real = Path(os.path.realpath(candidate))
        except OSError:
            continue
        if not real.is_relative_to("/tmp") or real == Path("/tmp") or not real.is_dir():
            continue
        if (real.parent / "pyvenv.cfg").exists():
            real = real.parent
        found.append(real)
    return existing(found)


def existing(paths: Sequence[Path]) -> tuple[Path, ...]:
    """The paths that exist, resolved (symlinks followed), without repeats."""
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            real = Path(os.path.realpath(path))
        except OSError:
            continue
        if real.exists() and str(real) not in seen:
            seen[str(real)] = real
    return tuple(seen.values())
