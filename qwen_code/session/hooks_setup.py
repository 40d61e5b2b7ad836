"""The user's hooks in a session: which run, the approval of a repository's own, and
the session events (`SessionStart`, `SessionEnd`).

A project hook (`.qwen/settings.json` of a trusted folder, or Claude Code's
`.claude/settings.json` when the user opted in) is a command the repository wants to
run on every tool call. It runs only after the user approved that exact command once
(kept in `$QWEN_HOME/hook-approvals.json`, per project), or when this run was trusted
explicitly (`--trust-workspace`, `QWEN_CODE_TRUST_WORKSPACE`). A headless run cannot
ask, so an unapproved project hook is left out with a note. The user's own hooks
(their settings file, `--settings`) need no approval.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qwen_code.agent.approval import ApprovalRequest, Approver
from qwen_code.agent.events import ToolCall
from qwen_code.atomic import atomic_write
from qwen_code.config import project_root
from qwen_code.session.live import Session, SessionObserver

if TYPE_CHECKING:
    from qwen_code.hooks import Hooks, HookSpec

APPROVALS_FILE = "hook-approvals.json"
PROJECT_SOURCES = frozenset({"project", "claude-project"})


class ApprovedHooks:
    """Project hooks the user approved: `{project: [fingerprint, ...]}`."""

    def __init__(self, home: Path) -> None:
        self.path = home / APPROVALS_FILE

    def _load(self) -> dict[str, list[str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def approved(self, project: Path, spec: HookSpec) -> bool:
        known = self._load().get(str(project), [])
        return isinstance(known, list) and spec.fingerprint() in known

    def remember(self, project: Path, specs: list[HookSpec]) -> None:
        data = self._load()
        known = data.setdefault(str(project), [])
        known.extend(s.fingerprint() for s in specs if s.fingerprint() not in known)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, (json.dumps(data, indent=2) + "\n").encode())
        self.path.chmod(0o600)


async def add_hooks(session: Session, approver: Approver, *, headless: bool, source: str) -> None:
    """Load the hooks the settings define, keep the approved ones, wire them into the
    agent, and fire `SessionStart` (`source`: startup or resume)."""
    from qwen_code.hooks import Hooks, load_hooks

    settings = session.settings
    specs, notes = load_hooks(settings, cwd=session.cwd, home=session.home, flags=settings.flags)
    session.notes.extend(notes)
    if not specs:
        return
    specs = await _approved(session, specs, approver, headless=headless)
    env = session.tool_ctx.credentials.child_environment()
    hooks = Hooks(specs, cwd=session.cwd, env=env, base=lambda: base_fields(session))
    attach(session, hooks)
    session.observe(SessionEvents())
    await start(session, source)


def attach(session: Session, hooks: Hooks) -> None:
    """The session, its agent, its tools and its compression all consult `hooks`."""
    session.hooks = hooks
    session.agent.hooks = hooks
    session.runner.hooks = hooks
    session.agent.compressor.hooks = hooks
    session.closers.append(hooks.aclose)


def base_fields(session: Session) -> dict[str, Any]:
    """The fields every hook gets (Claude Code's names)."""
    from qwen_code.session.persistence import Persistence

    persistence = session.observer(Persistence)
    writer = persistence.writer if persistence is not None else None
    return {
        "session_id": session.id,
        "transcript_path": str(writer.path) if writer is not None else "",
        "cwd": str(session.cwd),
        "permission_mode": session.runner.mode,
    }


async def start(session: Session, source: str) -> None:
    """`SessionStart`: what the hooks print becomes context for the next message."""
    hooks = session.hooks
    if hooks is None or not hooks.active("SessionStart"):
        return
    fields = {"source": source, "model": session.model}
    outcome = await hooks.fire("SessionStart", fields, match=source)
    if outcome.context:
        from qwen_code.agent.hook_points import context_block

        session.agent.pending_context.append(context_block("SessionStart", outcome.context))
    session.notes.extend(f"SessionStart hook: {m}" for m in outcome.system_messages)
    session.notes.extend(f"SessionStart hook failed: {e}" for e in outcome.errors)


class SessionEvents(SessionObserver):
    """`SessionEnd` when the session closes or is cleared (then `SessionStart` again)."""

    async def on_cleared(self, session: Session) -> None:
        await _end(session, "clear")
        await start(session, "clear")

    async def on_close(self, session: Session) -> None:
        await _end(session, "other")


async def _end(session: Session, reason: str) -> None:
    hooks = session.hooks
    if hooks is not None and hooks.active("SessionEnd"):
        await hooks.fire("SessionEnd", {"reason": reason}, match=reason)


async def _approved(
    session: Session, specs: list[HookSpec], approver: Approver, *, headless: bool
) -> list[HookSpec]:
    """The hooks that may run: the user's own, and the project's the user approved."""
    store = ApprovedHooks(session.home)
    project = project_root(session.cwd)
    trust: Any = session.settings.trust
    explicit = trust is not None and trust.source in ("flag", "env")
    new = [
        s
        for s in specs
        if s.source in PROJECT_SOURCES and not explicit and not store.approved(project, s)
    ]
    if not new:
        return specs
    if not headless:
        answer = await approver(_request(new))
        if answer.approved:
            store.remember(project, new)
            return specs
    session.notes.append(
        f"{len(new)} hook(s) of this project were not run: they need your approval "
        "(start qwen-code interactively here, or pass --trust-workspace). See /hooks."
    )
    return [s for s in specs if s not in new]


def _request(specs: list[HookSpec]) -> ApprovalRequest:
    lines = [f"{s.event} [{s.matcher or '*'}]: {s.command}" for s in specs]
    where = specs[0].path.name if specs[0].path is not None else "the project"
    call = ToolCall(id="hooks-approval", name="hooks", arguments={"commands": lines})
    summary = "\n".join(lines)
    return ApprovalRequest(
        call=call,
        kind="execute",
        reason=f"this project ({where}) wants to run {len(specs)} hook command(s) at the "
        "agent's events",
        summary=summary,
        preview=summary,
        source="server",
    )
