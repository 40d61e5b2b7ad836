"""Hooks: the user's commands run at points of a session (before a tool runs, after it,
when a prompt is submitted, when a turn stops...), in Claude Code's and Qwen Code's
format, so a `hooks` block written for either works unchanged.

`load_hooks` reads them from the settings files with where each came from;
`Hooks.fire(event, fields, match=...)` runs the hooks of an event whose matcher matches,
in parallel, and answers one merged `HookOutcome`. The modules: `config` (a hook as
configured), `sources` (which files), `matching`, `process` (running one hook) and
`outcome` (what its output means, and merging).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from qwen_code.hooks.config import HookSpec
from qwen_code.hooks.matching import TOOL_EVENTS, Matcher, compile_matcher
from qwen_code.hooks.outcome import hook_outcome, label, merge
from qwen_code.hooks.process import HookRun, run_hook
from qwen_code.hooks.sources import load_hooks
from qwen_code.hooks.types import EVENTS, HookOutcome
from qwen_code.settings_files import project_root

__all__ = ["EVENTS", "HookOutcome", "HookSpec", "Hooks", "load_hooks"]

MAX_ASYNC = 10
"""`async` hooks running at once; while that many run, a new one is skipped."""
PROJECT_DIR_VARIABLES = ("QWEN_PROJECT_DIR", "CLAUDE_PROJECT_DIR", "GEMINI_PROJECT_DIR")


class Hooks:
    """The hooks of one session, ready to fire."""

    def __init__(
        self,
        specs: Sequence[HookSpec],
        *,
        cwd: Path,
        env: Mapping[str, str],
        base: Callable[[], dict[str, Any]],
    ) -> None:
        """`env`: the environment for hook processes (the caller passes the scrubbed
        one); the project directory variables are added. `base()`: the input fields every
        event has at the moment of firing (session_id, transcript_path, cwd,
        permission_mode)."""
        self._specs = list(specs)
        self._cwd = cwd
        root = str(project_root(cwd))
        self._env = {**env, **dict.fromkeys(PROJECT_DIR_VARIABLES, root)}
        self._base = base
        self._matchers: dict[str, Matcher] = {
            spec.matcher: compile_matcher(spec.matcher) for spec in self._specs
        }
        self._reported: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self.program: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = None
        """Sends a control request to the program driving qwen-code (callback hooks)."""

    def active(self, event: str) -> bool:
        """Whether any hook is configured for `event`."""
        return any(spec.event == event for spec in self._specs)

    def specs(self) -> list[HookSpec]:
        return list(self._specs)

    async def fire(
        self, event: str, fields: dict[str, Any], *, match: str | None = None
    ) -> HookOutcome:
        """Run every hook of `event` whose matcher matches `match` (None: events without
        a matcher; every hook of the event runs), in parallel, each within its timeout,
        with `base() + hook_event_name + fields` as JSON on stdin; the merged outcome.
        Never raises for a hook's failure; cancelling the caller kills the hooks."""
        notes = HookOutcome()
        chosen = self._select(event, match, notes.errors)
        if not chosen:
            return notes
        payload = {**self._base(), "hook_event_name": event, **fields}
        stdin = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
        waited = [spec for spec in chosen if not spec.async_]
        for spec in chosen:
            if spec.async_:
                self._start_background(spec, stdin, notes)
        runs = await asyncio.gather(*(self._run(spec, stdin) for spec in waited))
        return merge([notes, *(hook_outcome(s, r) for s, r in zip(waited, runs, strict=True))])

    def _select(self, event: str, match: str | None, errors: list[str]) -> list[HookSpec]:
        """The hooks to run, in configuration order, each command once; a matcher that is
        not a valid regex is reported the first time it is consulted."""
        chosen: list[HookSpec] = []
        commands: set[str] = set()
        for spec in self._specs:
            if spec.event != event or spec.command in commands:
                continue
            if match is not None and not self._matches(spec, match, errors):
                continue
            commands.add(spec.command)
            chosen.append(spec)
        return chosen

    def _matches(self, spec: HookSpec, value: str, errors: list[str]) -> bool:
        matcher = self._matchers[spec.matcher]
        if matcher.error and spec.matcher not in self._reported:
            self._reported.add(spec.matcher)
            errors.append(f"{label(spec)}: {matcher.error}; it never matches")
        return matcher.matches(value, tool_event=spec.event in TOOL_EVENTS)

    def add(self, specs: Sequence[HookSpec]) -> None:
        """More hooks (the program's own callbacks, given after the session opened)."""
        self._specs.extend(specs)
        for spec in specs:
            self._matchers.setdefault(spec.matcher, compile_matcher(spec.matcher))

    async def _run(self, spec: HookSpec, stdin: bytes) -> HookRun:
        if spec.callback is not None:
            return await self._call_program(spec, stdin)
        return await run_hook(
            spec.command, stdin=stdin, cwd=self._cwd, env=self._env, timeout_s=spec.timeout_s
        )

    async def _call_program(self, spec: HookSpec, stdin: bytes) -> HookRun:
        """A callback hook: the program's answer is read as a command hook's JSON output;
        a failure or a timeout is a hook failure (blocking when it was set to block)."""
        failed = 2 if spec.blocks_on_failure else None
        if self.program is None:
            return HookRun(failed, stderr="no program to answer", error="could not run:")
        payload = json.loads(stdin)
        request = {
            "subtype": "hook_callback",
            "callback_id": spec.callback,
            "input": payload,
            "tool_use_id": payload.get("tool_use_id"),
        }
        try:
            async with asyncio.timeout(spec.timeout_s):
                answer = await self.program(request)
        except TimeoutError:
            return HookRun(
                failed, stderr=f"no answer within {spec.timeout_s:g} s", error="timed out:"
            )
        except Exception as exc:  # the program answered with an error, or went away
            return HookRun(failed, stderr=str(exc), error="failed:")
        return HookRun(0, stdout=json.dumps(answer))

    def _start_background(self, spec: HookSpec, stdin: bytes, notes: HookOutcome) -> None:
        """Start an `async` hook and do not wait for it (its output is ignored)."""
        if len(self._background) >= MAX_ASYNC:
            notes.errors.append(f"{label(spec)} skipped: {MAX_ASYNC} async hooks still run")
            return
        task = asyncio.create_task(self._run(spec, stdin))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        notes.ran += 1

    async def aclose(self) -> None:
        """Kill the `async` hooks still running (each with its process group)."""
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
