"""Telling you that the REPL wants you: a long turn finished, or a question waits.

`Notifier` is the terminal side (settings `general.notifications`): "bell" writes the
terminal bell and a notification escape sequence (OSC 9, which iTerm2, Windows Terminal,
WezTerm, kitty and Ghostty show as a desktop notification; OSC 777 as well on urxvt, foot
and Konsole; inside tmux both travel in its passthrough), "desktop" runs `notify-send`
(Linux) or `osascript` (macOS) and falls back to "bell" without one, "off" does nothing.
It writes only to a terminal, and only the REPL makes one (never a headless run). Text is
sanitized first: a model's words cannot smuggle escape sequences into the terminal.

`Alerts` is what the REPL calls at those moments: the `Notifier`, and the user's
`Notification` hooks, which run in the background (the question is not held up) and whose
messages are shown dimmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, Any, Literal

from rich.text import Text

from qwen_code.textsafe import clean_text
from qwen_code.ui.render import clean

if TYPE_CHECKING:
    from qwen_code.hooks import Hooks

NotificationType = Literal["permission_prompt", "idle_prompt"]

TITLE = "qwen-code"
BEL = "\a"
ESC = "\x1b"
MAX_TEXT = 180
"""The longest notification text; longer ones end with `…`."""
MAX_HOOK_TEXT = 1000

_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS, SOS, PM, APC
    r"|\x1b[ -/]*[0-~]?"  # two-character sequences, and a lone ESC
)
_DESKTOP_SESSION = ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS")
"""Without one of these (an SSH session, a console) notify-send has nowhere to show."""
_OSASCRIPT = "display notification (item 1 of argv) with title (item 2 of argv)"


def sanitize(text: str, limit: int = MAX_TEXT) -> str:
    """`text` as one line of plain characters: escape sequences and control (and bidi
    format) characters removed, whitespace collapsed, at most `limit` characters."""
    text = _ESCAPE_SEQUENCE.sub(" ", clean_text(text))
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if category == "Cc":
            kept.append(" ")
        elif category != "Cf":
            kept.append(char)
    line = " ".join("".join(kept).split())
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line


def duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds}s" if seconds < 60 else f"{seconds // 60}m {seconds % 60:02d}s"


def done_message(seconds: float, summary: str = "") -> str:
    """What a finished turn's notification says."""
    first = next((line.strip() for line in summary.splitlines() if line.strip()), "")
    return f"Done in {duration(seconds)}: {first}" if first else f"Done in {duration(seconds)}"


def tmux_passthrough(sequence: str) -> str:
    """`sequence` wrapped so that tmux hands it to the outer terminal (needs tmux's
    `allow-passthrough on`): `ESC P tmux; <sequence, each ESC doubled> ESC \\`."""
    return f"{ESC}Ptmux;{sequence.replace(ESC, ESC + ESC)}{ESC}\\"


class Notifier:
    """Notifications on the terminal `out` for the settings' `general` section (or the
    section itself). `environ`, `platform` and `which` are there for tests."""

    def __init__(
        self,
        settings: Any,
        out: IO[str] | None,
        *,
        environ: Mapping[str, str] | None = None,
        platform: str | None = None,
        which: Callable[..., str | None] = shutil.which,
    ) -> None:
        general = getattr(settings, "general", settings)
        self.mode: str = general.notifications
        self.after_seconds: float = general.notification_after_seconds
        self.out = out
        self.environ = os.environ if environ is None else environ
        self.platform = sys.platform if platform is None else platform
        self._which = which
        self._children: list[subprocess.Popen[bytes]] = []

    @property
    def enabled(self) -> bool:
        """Notifications are on and `out` is a terminal."""
        if self.mode == "off" or self.out is None:
            return False
        try:
            return bool(self.out.isatty())
        except (AttributeError, ValueError, OSError):
            return False

    def due(self, seconds: float) -> bool:
        """Whether a turn that ran `seconds` unattended is long enough to notify."""
        return seconds > self.after_seconds

    def turn_done(
        self, seconds: float, summary: str = "", *, unattended: float | None = None
    ) -> bool:
        """A turn ended after `seconds` (`summary`: the start of its answer). It notifies
        when the turn ran longer than `notificationAfterSeconds`: all of it, or the part
        after you last answered a question (`unattended`). True when it notified."""
        if not self.due(seconds if unattended is None else unattended):
            return False
        return self.notify(done_message(seconds, summary))

    def needs_you(self, message: str) -> bool:
        """A question or an approval waits for you (always notifies)."""
        return self.notify(message)

    def notify(self, message: str) -> bool:
        if not self.enabled:
            return False
        body = sanitize(message)
        if self.mode == "desktop" and self._desktop(body):
            return True
        self._write(self.sequences(body))
        return True

    # --- bell ----------------------------------------------------------------------------

    def sequences(self, body: str) -> str:
        """BEL, then the notification escapes this terminal may show (`body` sanitized)."""
        term = self.environ.get("TERM", "").lower()
        if term in ("dumb", "linux"):  # the Linux console prints an unknown OSC
            return BEL
        oscs = [f"{ESC}]9;{TITLE}: {body}{BEL}"]
        if self._speaks_osc777():
            oscs.append(f"{ESC}]777;notify;{TITLE};{body}{BEL}")
        if self.environ.get("TMUX"):
            oscs = [tmux_passthrough(osc) for osc in oscs]
        return BEL + "".join(oscs)

    def _speaks_osc777(self) -> bool:
        term = self.environ.get("TERM", "").lower()
        program = self.environ.get("TERM_PROGRAM", "").lower()
        return (
            term.startswith(("rxvt", "foot"))
            or program in ("foot", "konsole", "urxvt")
            or bool(self.environ.get("KONSOLE_VERSION"))
        )

    def _write(self, text: str) -> None:
        assert self.out is not None
        with contextlib.suppress(OSError, ValueError):
            self.out.write(text)
            self.out.flush()

    # --- desktop -------------------------------------------------------------------------

    def desktop_command(self, body: str) -> list[str] | None:
        """The notifier program's argv (never a shell line), or None when there is none."""
        path = self.environ.get("PATH", os.defpath)
        if self.platform == "darwin":
            osascript = self._which("osascript", path=path)
            if osascript is None:
                return None
            script = ["-e", "on run argv", "-e", _OSASCRIPT, "-e", "end run"]
            return [osascript, *script, body, TITLE]
        if self.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
            if not any(self.environ.get(name) for name in _DESKTOP_SESSION):
                return None
            notify_send = self._which("notify-send", path=path)
            return [notify_send, "--", TITLE, body] if notify_send else None
        return None

    def _desktop(self, body: str) -> bool:
        """Start the desktop notifier and leave it (failures ignored); False: none here."""
        argv = self.desktop_command(body)
        if argv is None:
            return False
        self._children = [child for child in self._children if child.poll() is None]
        try:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=True,
                start_new_session=True,
            )
        except (OSError, ValueError):
            return False
        self._children.append(child)
        return True


class Alerts:
    """The REPL's notifications: the terminal's (`notifier`) and the `Notification` hook
    of the hooks `hooks()` returns (None: no hooks). A hook runs in the background; what
    it says (and a failure) goes to `show`, dimmed."""

    def __init__(
        self,
        notifier: Notifier,
        *,
        show: Callable[[Text], None],
        hooks: Callable[[], Hooks | None] = lambda: None,
    ) -> None:
        self.notifier = notifier
        self.show = show
        self.hooks = hooks
        self._tasks: set[asyncio.Task[None]] = set()

    def needs_you(self, message: str) -> None:
        """An approval, a question or a plan waits for the user."""
        self.notifier.needs_you(message)
        self._fire(message, "permission_prompt")

    def turn_done(
        self, seconds: float, summary: str = "", *, unattended: float | None = None
    ) -> None:
        """A turn ended; notifies (and fires the hook) only when it ran long enough."""
        if not self.notifier.due(seconds if unattended is None else unattended):
            return
        self.notifier.turn_done(seconds, summary, unattended=unattended)
        self._fire(done_message(seconds, summary), "idle_prompt")

    def _fire(self, message: str, kind: NotificationType) -> None:
        hooks = self.hooks()
        if hooks is None or not hooks.active("Notification"):
            return
        task = asyncio.get_running_loop().create_task(self._run_hook(hooks, message, kind))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_hook(self, hooks: Hooks, message: str, kind: NotificationType) -> None:
        fields = {
            "message": sanitize(message, MAX_HOOK_TEXT),
            "title": TITLE,
            "notification_type": kind,
        }
        try:
            outcome = await hooks.fire("Notification", fields, match=kind)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken hook never breaks the REPL
            self.show(Text(f"  Notification hook failed: {clean(str(exc))}", style="dim"))
            return
        for said in outcome.system_messages:
            self.show(Text(f"  Notification hook: {clean(said)}", style="dim"))
        for error in outcome.errors:
            self.show(Text(f"  Notification hook failed: {clean(error)}", style="dim"))

    async def settle(self, within: float = 5.0) -> None:
        """Let the hooks still running finish (at most `within` seconds), then stop them."""
        if not self._tasks:
            return
        pending = set(self._tasks)
        _, late = await asyncio.wait(pending, timeout=within)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
