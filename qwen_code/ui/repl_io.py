"""What the REPL and its approver share, made before the session exists.

The approver is a constructor argument of the session (`open_session(approver=...)`), and
the REPL's approver needs the REPL's console, its renderer (to pause live output before a
question), the prompt's input and output, and a way to cancel the running turn. These
live here, so the approver can be built first and the REPL later, around the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from rich.console import Console

from qwen_code.ui.approver import InteractiveApprover
from qwen_code.ui.render import EventRenderer


@dataclass(slots=True, kw_only=True)
class ReplIO:
    """The console, the event renderer, the prompt's input and output (None: the
    terminal), and the turn running now (Ctrl+C cancels it)."""

    console: Console
    input: Input | None = None
    output: Output | None = None
    renderer: EventRenderer = field(init=False)
    turn: asyncio.Future[Any] | None = None

    def __post_init__(self) -> None:
        self.renderer = EventRenderer(self.console)

    def approver(self, *, cwd: Path, project_trusted: bool) -> InteractiveApprover:
        """The approver to open the session with: asks on this console and input."""
        return InteractiveApprover(
            self.console,
            cwd=cwd,
            before_ask=self.renderer.pause,
            after_ask=self.renderer.resume,
            cancel_turn=self.cancel_turn,
            input=self.input,
            output=self.output,
            project_trusted=project_trusted,
        )

    def cancel_turn(self) -> None:
        if self.turn is not None and not self.turn.done():
            self.turn.cancel()

    async def run_cancellable(self, task: asyncio.Future[Any]) -> tuple[bool, Any]:
        """Await `task`; Ctrl+C (SIGINT) cancels it. Returns (finished, result); finished
        is False when it was cancelled."""
        loop = asyncio.get_running_loop()
        self.turn = task
        # NotImplementedError: no loop signal handlers on this platform (Windows); Ctrl+C
        # then arrives as KeyboardInterrupt and is handled by the caller.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, self.cancel_turn)
        try:
            await asyncio.wait({task})
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
            self.turn = None
        if task.cancelled():
            return False, None
        return True, task.result()
