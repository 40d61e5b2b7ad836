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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from rich.console import Console
from rich.text import Text

from qwen_code.ui.approver import InteractiveApprover
from qwen_code.ui.notify import Alerts
from qwen_code.ui.render import EventRenderer


@dataclass(slots=True, kw_only=True)
class ReplIO:
    """The console, the event renderer, the prompt's input and output (None: the
    terminal), the turn running now (Ctrl+C cancels it), and the notifications (`alerts`,
    set once the session's settings are known)."""

    console: Console
    input: Input | None = None
    output: Output | None = None
    renderer: EventRenderer = field(init=False)
    turn: asyncio.Future[Any] | None = None
    alerts: Alerts | None = None
    last_answer: float = 0.0
    """When the user last answered a question (time.monotonic)."""

    def __post_init__(self) -> None:
        self.renderer = EventRenderer(self.console)

    def approver(self, *, cwd: Path, project_trusted: bool) -> InteractiveApprover:
        """The approver to open the session with: asks on this console and input."""
        return InteractiveApprover(
            self.console,
            cwd=cwd,
            before_ask=self.renderer.pause,
            after_ask=self.answered,
            cancel_turn=self.cancel_turn,
            waiting=self.needs_you,
            input=self.input,
            output=self.output,
            project_trusted=project_trusted,
        )

    def needs_you(self, message: str) -> None:
        """A question is on screen and waits for the user: notify (`alerts`)."""
        if self.alerts is not None:
            self.alerts.needs_you(message)

    def answered(self) -> None:
        """A question was answered: live output may come back."""
        self.last_answer = time.monotonic()
        self.renderer.resume()

    def show_note(self, line: Text) -> None:
        """Print a line from outside the turn's events: above a prompt that is showing,
        within the turn's output, or plainly between turns."""
        from prompt_toolkit.application import get_app_or_none, run_in_terminal

        app = get_app_or_none()
        if app is not None and app.is_running:
            run_in_terminal(lambda: self.console.print(line))
        elif self.turn is not None:
            self.renderer.note(line)
        else:
            self.console.print(line)

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
