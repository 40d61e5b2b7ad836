"""Asking the user about a tool call: show what will happen, take one key.

y yes · n no (then an optional note for the model) · a always, this session ·
p always, this project (saved to .qwen/settings.json) · u always, this user. The "always"
keys save the exact rule shown (`permissions.allow`); protected paths and ask rules offer
none (a/p/u then allow once). Ctrl+C denies and cancels the turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from prompt_toolkit import PromptSession
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.output import Output
from rich.console import Console
from rich.padding import Padding
from rich.text import Text

from qwen_code.agent.approval import ApprovalAnswer, ApprovalRequest
from qwen_code.config import add_allow_rule
from qwen_code.ui.render import render_diff

Choice = Literal["y", "n", "a", "p", "u", "cancel"]
_KEYS: dict[str, Choice] = {"y": "y", "n": "n", "a": "a", "p": "p", "u": "u", "escape": "n"}
_SCOPES = {"a": "session", "p": "project", "u": "user"}
_ECHO = {
    "y": "allowed",
    "n": "denied",
    "a": "allowed for this session",
    "p": "allowed in this project",
    "u": "allowed for this user",
    "cancel": "cancelled",
}


_ONCE_ONLY = {
    "protected": "changes to protected paths are asked about every time",
    "rule": "an ask rule in your settings asks about this every time",
    "mode": "no rule can cover exactly this command",
    "escalation": "running outside the sandbox is asked about every time",
    "server": "a yes is remembered for this exact command line",
}
"""Why an "always" answer cannot be offered, per `ApprovalRequest.source`."""


def _choices(request: ApprovalRequest) -> str:
    """The keys, and the exact rule an "always" answer saves (or why there is none)."""
    if not request.rememberable:
        return f"y yes · n no ({_ONCE_ONLY[request.source]})"
    return (
        f"y yes · n no · always allow {request.suggested_rule}: a this session, "
        f"p this project, u this user"
    )


def _answer(event: KeyPressEvent, choice: Choice) -> None:
    """Write the answer on the question's line (so the scrollback shows it), then return it."""
    event.app.current_buffer.insert_text(_ECHO[choice])
    event.app.exit(result=choice)


def _choice_bindings() -> KeyBindings:
    bindings = KeyBindings()
    for key, choice in _KEYS.items():
        bindings.add(key, eager=True)(lambda event, c=choice: _answer(event, c))
        if len(key) == 1:
            bindings.add(key.upper())(lambda event, c=choice: _answer(event, c))
    bindings.add("c-c")(lambda event: _answer(event, "cancel"))
    bindings.add("<any>")(lambda event: None)
    return bindings


def _indented(line: str, style: str) -> Padding:
    """A line two columns in, whose wrapped continuation lines keep that indent (a narrow
    terminal must not fold the legend back to the margin)."""
    return Padding(Text(line, style=style), (0, 0, 0, 2), expand=False)


def _waiting_line(request: ApprovalRequest) -> str:
    """What the notification says: which call waits for approval."""
    who = f"{request.agent} (subagent) " if request.agent else ""
    return f"Approve {who}{request.call.name}? {request.summary}".strip()


class InteractiveApprover:
    """The REPL's approver. `before_ask` lets the REPL stop live output first;
    `cancel_turn` is called when the user presses Ctrl+C at the question; `waiting` gets
    a line saying what waits for the user, once the question is on screen (to notify)."""

    def __init__(
        self,
        console: Console,
        *,
        cwd: Path,
        before_ask: Callable[[], None] = lambda: None,
        after_ask: Callable[[], None] = lambda: None,
        cancel_turn: Callable[[], None] = lambda: None,
        waiting: Callable[[str], None] = lambda message: None,
        input: Input | None = None,
        output: Output | None = None,
        project_trusted: bool = True,
    ) -> None:
        self.console = console
        self.cwd = cwd
        self.project_trusted = project_trusted
        """False in a folder not trusted: its project allow rules are ignored at start-up."""
        self.before_ask = before_ask
        self.after_ask = after_ask
        self.cancel_turn = cancel_turn
        self.waiting = waiting
        self._keys = PromptSession[Choice](
            key_bindings=_choice_bindings(), input=input, output=output
        )
        self._note = PromptSession[str](input=input, output=output)
        self._one_at_a_time = asyncio.Lock()
        """Subagents running at once may ask at once: one question on screen at a time."""

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        async with self._one_at_a_time:
            try:
                return await self._ask(request)
            finally:
                self.after_ask()

    async def _ask(self, request: ApprovalRequest) -> ApprovalAnswer:
        self.before_ask()
        self._show(request)
        self.waiting(_waiting_line(request))
        choice = await self._keys.prompt_async(self._question(request))
        if choice == "cancel":
            self.cancel_turn()
            return ApprovalAnswer(approved=False, message="The user cancelled this turn.")
        if choice == "n":
            note = (await self._note.prompt_async("  Tell the model why (optional): ")).strip()
            message = f"The user denied this call. {note}" if note else ""
            return ApprovalAnswer(approved=False, message=message)
        if choice == "y":
            return ApprovalAnswer(approved=True)
        if not request.rememberable:
            self.console.print(Text(f"  Allowed once: {_ONCE_ONLY[request.source]}.", style="dim"))
            return ApprovalAnswer(approved=True)
        scope = _SCOPES[choice]
        rule = request.suggested_rule
        if scope != "session":
            path = add_allow_rule(rule, scope, cwd=self.cwd)  # type: ignore[arg-type]
            self.console.print(Text(f"  Saved allow rule {rule} to {path}", style="dim"))
            if scope == "project" and not self.project_trusted:
                self.console.print(
                    Text(
                        "  This folder is not trusted, so its allow rules apply in later "
                        "sessions only once you trust it (/trust).",
                        style="yellow",
                    )
                )
        return ApprovalAnswer(approved=True, remember=scope, rule=rule)  # type: ignore[arg-type]

    def _show(self, request: ApprovalRequest) -> None:
        call = request.call
        if request.agent:  # the main agent's calls are on screen already; a subagent's not
            line = Text.assemble(("  ", ""), (request.agent, "bold magenta"), " (subagent): ")
            line.append(f"{call.name} {request.summary}".rstrip())
            self.console.print(line)
        if call.name == "run_shell_command":
            command = str(call.arguments.get("command", ""))
            self.console.print(_indented(f"$ {command}", "bold"))
            where = call.arguments.get("directory")
            if where:
                self.console.print(_indented(f"in {where}", "dim"))
        elif request.preview:
            self.console.print(render_diff(request.preview))
        if request.source != "mode":
            self.console.print(_indented(request.reason, "yellow"))
        self.console.print(_indented(_choices(request), "dim"))

    @staticmethod
    def _question(request: ApprovalRequest) -> str:
        keys = "y/n/a/p/u" if request.rememberable else "y/n"
        return f"  Allow {request.call.name}? [{keys}] "
