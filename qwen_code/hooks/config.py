"""One hook as configured (`HookSpec`), and reading a settings file's `hooks` block.

The block is Claude Code's and Qwen Code's format:

    {"PreToolUse": [{"matcher": "Write|Edit",
                     "hooks": [{"type": "command", "command": "...", "timeout": 30}]}]}

Only `command` hooks run here; `http`, `prompt`, `agent` and `function` hooks, events
qwen-code does not fire, and malformed entries are skipped, each with a notice naming
the file. Qwen Code's `name`, `description`, `statusMessage`, `sequential` and `once`
are accepted and ignored (hooks always run in parallel); a hook's own `env` is not
supported (a notice says so).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias

from qwen_code.hooks.types import EVENTS

Source: TypeAlias = Literal["user", "project", "flag", "claude-user", "claude-project"]

DEFAULT_TIMEOUT_S = 60.0
MILLISECONDS_FROM = 1000
"""Qwen Code read command hook timeouts in milliseconds once: a value this large still
is (`10000` = 10 s)."""


@dataclass(frozen=True, slots=True)
class HookSpec:
    """One command hook of one event."""

    event: str
    matcher: str
    """"" or "*" match everything; see `qwen_code.hooks.matching`."""
    command: str
    timeout_s: float
    source: str
    """"user", "project", "flag" (--settings), "claude-user" or "claude-project"."""
    path: Path | None
    """The settings file it came from (None for --settings JSON text)."""
    async_: bool = False
    """`"async": true`: started and not waited for; its output is ignored."""
    callback: str | None = None
    """A hook of the program driving qwen-code (the Claude Agent SDK's `hooks`): its
    callback id, answered over the control protocol instead of running `command`."""
    blocks_on_failure: bool = False
    """A callback hook whose failure blocks (the SDK's `on_failure="block"`)."""

    def fingerprint(self) -> str:
        """What a user approves: the event, matcher and command (a sha256 hex digest), so
        a changed command needs approving again while a moved file does not."""
        text = json.dumps([self.event, self.matcher, self.command], ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_hooks(block: Any, *, source: str, path: Path | None) -> tuple[list[HookSpec], list[str]]:
    """The hooks of one settings file's `hooks` value, and a notice per entry skipped."""
    where = str(path) if path is not None else "--settings"
    if block is None:
        return [], []
    if not isinstance(block, dict):
        return [], [f"hooks in {where} must be an object; ignored."]
    specs: list[HookSpec] = []
    notices: list[str] = []
    for event, groups in block.items():
        if event not in EVENTS:
            notices.append(f"{where}: hook event {event!r} is not supported; its hooks are off.")
            continue
        if not isinstance(groups, list):
            notices.append(f"{where}: hooks.{event} must be a list; ignored.")
            continue
        for index, group in enumerate(groups):
            found, skipped = _group(group, event=event, source=source, path=path)
            specs.extend(found)
            notices.extend(f"{where}: hooks.{event}[{index}]{note}" for note in skipped)
    return specs, notices


def _group(
    group: Any, *, event: str, source: str, path: Path | None
) -> tuple[list[HookSpec], list[str]]:
    """One `{"matcher": ..., "hooks": [...]}` entry; notices are suffixes of its place."""
    if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
        return [], [': must be an object with a "hooks" list; skipped.']
    matcher = group.get("matcher", "")
    matcher = "" if matcher is None else matcher
    if not isinstance(matcher, str):
        return [], [": matcher must be a string; skipped."]
    specs: list[HookSpec] = []
    notices: list[str] = []
    for index, entry in enumerate(group["hooks"]):
        spec, note = _hook(entry, event=event, matcher=matcher, source=source, path=path)
        if spec is not None:
            specs.append(spec)
        if note:
            notices.append(f".hooks[{index}]: {note}")
    return specs, notices


def _hook(
    entry: Any, *, event: str, matcher: str, source: str, path: Path | None
) -> tuple[HookSpec | None, str]:
    """One hook entry, and a notice (why it is skipped, or what of it is ignored)."""
    if not isinstance(entry, dict):
        return None, "must be an object; skipped."
    kind = entry.get("type", "command")
    if kind != "command":
        return None, f"hooks of type {kind!r} are not supported here; skipped."
    command = entry.get("command")
    if not isinstance(command, str) or not command.strip():
        return None, "needs a command (a non-empty string); skipped."
    if entry.get("shell") not in (None, "bash"):
        return None, f"shell {entry.get('shell')!r} is not supported (bash is); skipped."
    timeout, note = _timeout(entry.get("timeout"))
    if entry.get("env") is not None:
        note = (note + " " if note else "") + "its env is not supported; ignored."
    spec = HookSpec(
        event=event,
        matcher=matcher,
        command=command,
        timeout_s=timeout,
        source=source,
        path=path,
        async_=entry.get("async") is True,
    )
    return spec, note


def _timeout(value: Any) -> tuple[float, str]:
    """Seconds, from a `timeout` in seconds (or, from 1000 up, in milliseconds)."""
    if value is None:
        return DEFAULT_TIMEOUT_S, ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return DEFAULT_TIMEOUT_S, f"timeout {value!r} is not a number; 60 s apply."
    if not math.isfinite(value) or value <= 0:
        return DEFAULT_TIMEOUT_S, f"timeout {value!r} is not positive; 60 s apply."
    return (value / 1000 if value >= MILLISECONDS_FROM else float(value)), ""
