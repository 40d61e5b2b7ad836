"""An inline list picker: arrow keys (or j/k) move, Enter chooses, Esc cancels.

Used by `qwen-code -r` and `/resume` to choose a saved session. It draws below the
cursor (not full screen) and erases itself when done, so the scrollback keeps only what
the caller prints about the choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prompt_toolkit.application import Application
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import FormattedTextControl, HSplit, Layout, Window
from prompt_toolkit.styles import Style
from rich.console import Console
from rich.text import Text

HINT = "↑/↓ move · Enter choose · Esc {cancel} · or type a number"
PAGE = 10
STYLE = Style.from_dict(
    {"title": "bold", "selected": "reverse", "hint": "#888888", "number": "#888888"}
)


class Picker:
    """The state of one pick: the cursor, and digits typed so far."""

    def __init__(self, items: Sequence[str], title: str, cancel: str) -> None:
        self.items = list(items)
        self.title = title
        self.cancel = cancel
        self.index = 0
        self.typed = ""

    def move(self, delta: int) -> None:
        self.index = max(0, min(len(self.items) - 1, self.index + delta))
        self.typed = ""

    def type_digit(self, digit: str) -> None:
        typed = self.typed + digit
        if typed.isdigit() and 1 <= int(typed) <= len(self.items):
            self.typed, self.index = typed, int(typed) - 1
        elif 1 <= int(digit) <= len(self.items):
            self.typed, self.index = digit, int(digit) - 1

    def render(self) -> StyleAndTextTuples:
        lines: StyleAndTextTuples = [("class:title", self.title + "\n")]
        width = len(str(len(self.items)))
        for number, item in enumerate(self.items, 1):
            selected = number - 1 == self.index
            lines.append(("", "❯ " if selected else "  "))
            lines.append(("class:number", f"{number:>{width}}. "))
            lines.append(("class:selected" if selected else "", item))
            lines.append(("", "\n"))
        lines.append(("class:hint", HINT.format(cancel=self.cancel)))
        return lines


def _bindings(picker: Picker) -> KeyBindings:
    keys = KeyBindings()
    moves = {"up": -1, "k": -1, "down": 1, "j": 1, "pageup": -PAGE, "pagedown": PAGE}
    for key, delta in moves.items():
        keys.add(key)(lambda event, delta=delta: picker.move(delta))
    keys.add("home")(lambda event: picker.move(-len(picker.items)))
    keys.add("end")(lambda event: picker.move(len(picker.items)))
    for digit in "0123456789":
        keys.add(digit)(lambda event, digit=digit: picker.type_digit(digit))

    @keys.add("enter")
    def _choose(event: KeyPressEvent) -> None:
        event.app.exit(result=picker.index)

    @keys.add("escape", eager=True)
    @keys.add("c-c")
    @keys.add("c-d")
    @keys.add("q")
    def _cancel(event: KeyPressEvent) -> None:
        event.app.exit(result=None)

    return keys


async def pick(items: Sequence[str], *, title: str, cancel: str = "cancel") -> int | None:
    """The index of the chosen item, or None when the user cancels (or there are none)."""
    if not items:
        return None
    picker = Picker(items, title, cancel)
    control = FormattedTextControl(picker.render, focusable=True, show_cursor=False)
    app: Application[int | None] = Application(
        layout=Layout(HSplit([Window(control, dont_extend_height=True)])),
        key_bindings=_bindings(picker),
        style=STYLE,
        full_screen=False,
        erase_when_done=True,
        mouse_support=False,
    )
    return await app.run_async()


async def pick_session(
    console: Console,
    home: Path,
    cwd: Path,
    *,
    none: str = "No saved sessions for this project; starting a new one.",
) -> str | None:
    """Let the user choose one of this project's saved sessions (None: start a new one, or
    there is none: `none` says so)."""
    from qwen_code.session.resume import describe
    from qwen_code.session.store import list_sessions

    sessions = list_sessions(home, cwd, limit=50)
    if not sessions:
        console.print(Text(none, style="dim"))
        return None
    title = "Resume which session? (newest first)"
    chosen = await pick([describe(info) for info in sessions], title=title, cancel="new session")
    return sessions[chosen].id if chosen is not None else None
