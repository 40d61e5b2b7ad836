"""The REPL's `UserChannel`: the model's multiple-choice questions and plan approval.

A question is an inline list drawn below the cursor (as the session picker): ↑/↓ move,
Enter chooses, Space ticks options of a multi-select question, and the last row, "Other…",
asks for the user's own words. Esc dismisses the questions; Ctrl+C also cancels the turn.
A plan is printed as Markdown, then the same list asks whether to go ahead, and in which
approval mode, or to keep planning (with an optional line of feedback).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from prompt_toolkit import PromptSession
from prompt_toolkit.application import Application
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import FormattedTextControl, HSplit, Layout, Window
from prompt_toolkit.output import Output
from rich.console import Console
from rich.padding import Padding
from rich.text import Text

from qwen_code.tools.user_input import Answer, PlanMode, PlanReview, Question
from qwen_code.ui.markdown_stream import render_markdown
from qwen_code.ui.picker import STYLE
from qwen_code.ui.render import clean
from qwen_code.ui.terminal import symbols_for

if TYPE_CHECKING:
    from qwen_code.ui.repl_io import ReplIO

Stop = Literal["dismiss", "cancel"]
"""How a choice ends without one: Esc (or Ctrl+D), or Ctrl+C (which cancels the turn)."""
_BACK, _CANCEL = "\x00back", "\x00cancel"
"""What the text prompt returns for Esc and Ctrl+C (no typed line can hold a NUL)."""
PLAN_CHOICES: tuple[tuple[str, str, PlanMode | None], ...] = (
    ("Yes, and auto-accept edits", "edits run without asking; commands still ask", "auto-edit"),
    ("Yes, and approve each edit", "you approve every edit and command", "default"),
    ("No, keep planning", "tell the model what to change", None),
)


@dataclass(slots=True)
class ChoiceList:
    """The state of one list: its rows (label, description), the cursor and, for a
    multi-select question, the ticked rows. `other` makes the last row free text."""

    title: StyleAndTextTuples
    rows: list[tuple[str, str]]
    multi: bool = False
    other: bool = False
    cancel: str = "dismiss"
    index: int = 0
    ticked: set[int] = field(default_factory=set)

    def move(self, delta: int) -> None:
        self.index = max(0, min(len(self.rows) - 1, self.index + delta))

    def jump(self, digit: str) -> None:
        if 1 <= int(digit) <= len(self.rows):
            self.index = int(digit) - 1

    def toggle(self) -> None:
        if self.multi and not (self.other and self.index == len(self.rows) - 1):
            self.ticked ^= {self.index}

    def render(self) -> StyleAndTextTuples:
        lines: StyleAndTextTuples = [*self.title, ("", "\n")]
        for number, (label, description) in enumerate(self.rows, 1):
            row = number - 1
            selected = row == self.index
            lines.append(("", "❯ " if selected else "  "))
            if self.multi and not (self.other and row == len(self.rows) - 1):
                lines.append(("", "[x] " if row in self.ticked else "[ ] "))
            elif self.multi:
                lines.append(("", "    "))
            lines.append(("class:number", f"{number}. "))
            lines.append(("class:selected" if selected else "", label))
            if description:
                lines.append(("class:hint", f"  {description}"))
            lines.append(("", "\n"))
        keys = "Space select · Enter done" if self.multi else "Enter choose"
        lines.append(("class:hint", f"↑/↓ move · {keys} · Esc {self.cancel}"))
        return lines


def _bindings(state: ChoiceList) -> KeyBindings:
    keys = KeyBindings()
    for key, delta in {"up": -1, "k": -1, "down": 1, "j": 1}.items():
        keys.add(key)(lambda event, delta=delta: state.move(delta))
    for digit in "123456789":
        keys.add(digit)(lambda event, digit=digit: state.jump(digit))
    keys.add("space")(lambda event: state.toggle())
    keys.add("enter")(lambda event: event.app.exit(result=state.index))

    @keys.add("escape", eager=True)
    @keys.add("c-d")
    def _dismiss(event: KeyPressEvent) -> None:
        event.app.exit(result="dismiss")

    keys.add("c-c")(lambda event: event.app.exit(result="cancel"))
    return keys


async def choose(
    state: ChoiceList, *, input: Input | None = None, output: Output | None = None
) -> int | Stop:
    """The row chosen with Enter, or how the list was left without a choice."""
    control = FormattedTextControl(state.render, focusable=True, show_cursor=False)
    app: Application[int | Stop] = Application(
        layout=Layout(HSplit([Window(control, dont_extend_height=True, wrap_lines=True)])),
        key_bindings=_bindings(state),
        style=STYLE,
        full_screen=False,
        erase_when_done=True,
        mouse_support=False,
        input=input,
        output=output,
    )
    return await app.run_async()


def _text_bindings() -> KeyBindings:
    keys = KeyBindings()
    keys.add("escape", eager=True)(lambda event: event.app.exit(result=_BACK))
    keys.add("c-c")(lambda event: event.app.exit(result=_CANCEL))
    return keys


class ReplUserChannel:
    """Asks on the REPL's terminal. `before_ask` stops live output (the spinner) and
    `after_ask` lets it come back; `cancel_turn` is called on Ctrl+C; `waiting` gets a
    line saying what waits for the user (to notify). `lock` keeps one question on screen
    at a time (share the approver's: subagents may ask at once)."""

    def __init__(
        self,
        console: Console,
        *,
        before_ask: Callable[[], None] = lambda: None,
        after_ask: Callable[[], None] = lambda: None,
        cancel_turn: Callable[[], None] = lambda: None,
        waiting: Callable[[str], None] = lambda message: None,
        input: Input | None = None,
        output: Output | None = None,
        lock: asyncio.Lock | None = None,
    ) -> None:
        self.console = console
        self.before_ask, self.after_ask, self.cancel_turn = before_ask, after_ask, cancel_turn
        self.waiting = waiting
        self.input, self.output = input, output
        self.lock = lock or asyncio.Lock()
        self.symbols = symbols_for(console)
        self._text = PromptSession[str](key_bindings=_text_bindings(), input=input, output=output)

    @classmethod
    def on(cls, io: ReplIO, *, approver: object = None) -> ReplUserChannel:
        """The channel for the REPL's terminal pieces, sharing the approver's lock."""
        lock = getattr(approver, "_one_at_a_time", None)  # InteractiveApprover's
        return cls(
            io.console,
            before_ask=io.renderer.pause,
            after_ask=io.answered,
            cancel_turn=io.cancel_turn,
            waiting=io.needs_you,
            input=io.input,
            output=io.output,
            lock=lock if isinstance(lock, asyncio.Lock) else None,
        )

    async def ask(self, questions: Sequence[Question]) -> list[Answer] | None:
        async with self.lock:
            self.before_ask()
            try:
                first = questions[0].question if questions else ""
                self.waiting(f"A question for you: {first}".strip())
                answers: list[Answer] = []
                for number, question in enumerate(questions, 1):
                    answer = await self._ask_one(question, number, len(questions))
                    if answer is None:
                        return None
                    answers.append(answer)
                return answers
            finally:
                self.after_ask()

    async def review_plan(self, plan: str) -> PlanReview:
        async with self.lock:
            self.before_ask()
            try:
                self.waiting("A plan waits for your approval")
                return await self._review(plan)
            finally:
                self.after_ask()

    # --- questions -----------------------------------------------------------------------

    async def _ask_one(self, question: Question, number: int, total: int) -> Answer | None:
        title: StyleAndTextTuples = [("class:number", f"[{clean(question.header)}] ")]
        title.append(("class:title", clean(question.question)))
        if total > 1:
            title.append(("class:hint", f"  ({number}/{total})"))
        rows = [(clean(o.label), clean(o.description)) for o in question.options]
        rows.append((f"Other{self.symbols.ellipsis}", "type your own answer"))
        state = ChoiceList(title, rows, multi=question.multi_select, other=True)
        while True:
            picked = await choose(state, input=self.input, output=self.output)
            if not isinstance(picked, int):
                return self._stopped(picked)
            labels = tuple(question.options[i].label for i in sorted(state.ticked))
            if picked < len(question.options):
                answer = Answer(labels=labels or (question.options[picked].label,))
                break
            typed = await self._text.prompt_async("  Your answer (Esc to go back): ")
            if typed == _CANCEL:
                return self._stopped("cancel")
            if typed != _BACK and typed.strip():
                answer = Answer(labels=labels, other=typed.strip())
                break
        self.console.print(Text.assemble(("  ? ", "cyan"), clean(question.question)))
        return answer

    def _stopped(self, how: Stop) -> None:
        """No answer: Esc dismissed the questions, or Ctrl+C cancels the whole turn."""
        if how == "cancel":
            self.cancel_turn()

    # --- plans ---------------------------------------------------------------------------

    async def _review(self, plan: str) -> PlanReview:
        self.console.print(Text("  Plan", style="bold cyan"))
        self.console.print(Padding(render_markdown(clean(plan).strip()), (0, 0, 1, 4)))
        title: StyleAndTextTuples = [("class:title", "Would you like to proceed?")]
        rows = [(label, description) for label, description, _ in PLAN_CHOICES]
        state = ChoiceList(title, rows, cancel="keep planning")
        picked = await choose(state, input=self.input, output=self.output)
        if picked == "cancel":
            self.cancel_turn()
            return PlanReview(approved=False)
        if picked == "dismiss":
            return PlanReview(approved=False)
        mode = PLAN_CHOICES[picked][2]
        if mode is not None:
            return PlanReview(approved=True, mode=mode)
        typed = await self._text.prompt_async("  What should change? (optional) ")
        if typed == _CANCEL:
            self.cancel_turn()
            return PlanReview(approved=False)
        return PlanReview(approved=False, feedback="" if typed == _BACK else typed.strip())
