"""Telling the model, in one plain sentence, what the sandbox blocked.

A sandboxed command that hits the sandbox fails the way the system makes it fail: a write
outside gets "Read-only file system", a connection with no network gets a name-resolution
error, a hidden credential file is simply not there. The model would otherwise guess (and
try `sudo`, or another path); this says what happened and what it may do about it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from qwen_code.sandbox.policy import Network, SandboxMode

_READ_ONLY = re.compile(r"read-only file system", re.IGNORECASE)
_PATH_NEAR = re.compile(
    r"""(?:['"‘`](/[^'"’`\n]+)['"’`]|(?<![\w/])(/[\w.@+-][^\s:'"]*)(?=:\s*[Rr]ead-only))"""
)
_NO_NETWORK = re.compile(
    r"could not resolve host|temporary failure in name resolution|name or service not known"
    r"|getaddrinfo (?:enotfound|eai_again)|network is unreachable|failed to resolve"
    r"|nodename nor servname|no address associated with hostname|name resolution"
    r"|connection refused|failed to establish a new connection",
    re.IGNORECASE,
)
_PROXY_REFUSED = re.compile(r"qwen-code sandbox: connections to|403 forbidden", re.IGNORECASE)
_MISSING = re.compile(r"no such file or directory|permission denied|not found", re.IGNORECASE)

ESCAPE_HINT = (
    "If the task really needs this, you may call run_shell_command again with "
    "dangerously_disable_sandbox=true: the user is asked to approve running it outside the "
    "sandbox (a non-interactive run refuses). Otherwise keep within the sandbox."
)


def explain(
    output: str,
    *,
    mode: SandboxMode,
    network: Network,
    denied: Sequence[str] = (),
    hidden: Sequence[Path] = (),
    failed: bool = True,
) -> str | None:
    """What the sandbox blocked, judging by the command's output and the proxy's
    refusals; None when nothing. For a command that did not fail only the refusals count
    (`curl … || true` still hears about them); the output patterns could be anything."""
    reasons = (
        (_write(output, mode), _network(output, network, denied), _hidden(output, hidden))
        if failed
        else (_network("", network, denied),)
    )
    found = [reason.rstrip(".") for reason in reasons if reason]
    if not found:
        return None
    return f"Blocked by the sandbox: {'; '.join(found)}. {ESCAPE_HINT}"


def _write(output: str, mode: SandboxMode) -> str | None:
    line = next((ln for ln in output.splitlines() if _READ_ONLY.search(ln)), None)
    if line is None:
        return None
    match = _PATH_NEAR.search(line)
    path = next((g for g in match.groups() if g), None) if match else None
    where = f" to {path}" if path else ""
    allowed = "the workspace and /tmp are" if mode == "workspace-write" else "only /tmp is"
    return f"a write{where} was refused ({mode} mode: {allowed} writable)."


def _network(output: str, network: Network, denied: Sequence[str]) -> str | None:
    if denied:
        hosts = ", ".join(denied)
        allowed = ", ".join(network) if isinstance(network, tuple) else network
        return (
            f"the network proxy refused connections to {hosts} (allowed domains: {allowed}; "
            "setting tools.sandbox.network)."
        )
    if network == "none" and _NO_NETWORK.search(output):
        return (
            "the command has no network access (tools.sandbox.network is none), so "
            "connections and name lookups fail; the host's localhost is not reachable either."
        )
    if isinstance(network, tuple) and _PROXY_REFUSED.search(output):
        return f"only these domains are reachable, through a proxy: {', '.join(network)}."
    return None


def _hidden(output: str, hidden: Sequence[Path]) -> str | None:
    if not _MISSING.search(output):
        return None
    named = [p for p in hidden if _mentioned(p, output)]
    if not named:
        return None
    paths = ", ".join(str(p) for p in named)
    return f"{paths} is hidden inside the sandbox (credentials are not readable by commands)."


def _mentioned(path: Path, output: str) -> bool:
    """The output names the path: in full, as `~/name`, or by a dot-name of its own
    (`.ssh/id_rsa`, `.netrc`) as commands run in the home directory print it."""
    if str(path) in output or f"~/{path.name}" in output:
        return True
    return (
        path.name.startswith(".")
        and re.search(rf"(?<![\w.]){re.escape(path.name)}\b", output) is not None
    )
