"""Notifications (settings `general.notifications`): the terminal sequences, the desktop
notifier, sanitizing, and the `Notification` hook (`qwen_code.ui.notify`)."""

from __future__ import annotations

import asyncio
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text

from qwen_code.config import load_settings
from qwen_code.hooks.types import HookOutcome
from qwen_code.settings_model import Settings
from qwen_code.ui.notify import Alerts, Notifier, sanitize
from tests.helpers import TTYStringIO, write_json

XTERM = {"TERM": "xterm-256color"}


def settings(**general: Any) -> Settings:
    return Settings.model_validate({"general": general})


def notifier(environ: dict[str, str] | None = None, **general: Any) -> tuple[Notifier, io.StringIO]:
    out = TTYStringIO()
    return Notifier(settings(**general), out, environ=environ or XTERM, platform="linux"), out


# --- bell: BEL and the notification escapes -------------------------------------------------


def test_bell_writes_bel_and_osc_9() -> None:
    notify, out = notifier()
    assert notify.needs_you("Approve run_shell_command? make test")
    assert out.getvalue() == "\a\x1b]9;qwen-code: Approve run_shell_command? make test\a"


@pytest.mark.parametrize(
    "environ",
    [
        {"TERM": "rxvt-unicode-256color"},
        {"TERM": "foot"},
        {"TERM": "xterm-256color", "KONSOLE_VERSION": "230804"},
        {"TERM": "xterm-256color", "TERM_PROGRAM": "konsole"},
    ],
)
def test_osc_777_where_the_terminal_speaks_it(environ: dict[str, str]) -> None:
    notify, out = notifier(environ)
    notify.needs_you("A plan waits for your approval")
    assert out.getvalue() == (
        "\a\x1b]9;qwen-code: A plan waits for your approval\a"
        "\x1b]777;notify;qwen-code;A plan waits for your approval\a"
    )


def test_inside_tmux_the_osc_goes_through_its_passthrough() -> None:
    notify, out = notifier({"TERM": "tmux-256color", "TMUX": "/tmp/tmux-1000/default,42,0"})
    notify.needs_you("hi")
    assert out.getvalue() == "\a\x1bPtmux;\x1b\x1b]9;qwen-code: hi\a\x1b\\"


def test_no_tmux_wrapping_without_tmux() -> None:
    notify, out = notifier({"TERM": "screen-256color"})
    notify.needs_you("hi")
    assert "tmux;" not in out.getvalue()


def test_the_linux_console_gets_only_the_bell() -> None:
    notify, out = notifier({"TERM": "linux"})
    notify.needs_you("hi")
    assert out.getvalue() == "\a"


def test_model_text_cannot_inject_escape_sequences() -> None:
    notify, out = notifier()
    notify.needs_you(
        "Approve x? \x1b]0;evil\x07 title \x1b[2J\x9d8;;http://x\x9c\r\nrm -rf /\u202e"
    )
    written = out.getvalue()
    assert "\x1b]0;" not in written and "evil" not in written
    assert written.count("\x1b") == 1  # the notification's own OSC
    assert written.count("\a") == 2  # the bell and the OSC's terminator
    assert "\x9d" not in written and "\r" not in written and "\n" not in written
    assert written == "\a\x1b]9;qwen-code: Approve x? title 8;;http://x rm -rf /\a"


def test_sanitize_caps_and_collapses() -> None:
    assert sanitize("a\tb\n\nc") == "a b c"
    long = sanitize("word " * 100)
    assert len(long) == 180 and long.endswith("…")
    assert sanitize("x" * 50, limit=10) == "x" * 9 + "…"


# --- when, and when not ---------------------------------------------------------------------


def test_off_writes_nothing() -> None:
    notify, out = notifier(notifications="off")
    assert not notify.needs_you("hi")
    assert not notify.turn_done(1000, "done")
    assert out.getvalue() == ""


def test_terminal_bell_false_means_off(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_json(home / "settings.json", {"general": {"terminalBell": False}})
    loaded = load_settings(cwd=tmp_path, home=home, env={})
    assert loaded.general.notifications == "off"
    out = TTYStringIO()
    assert not Notifier(loaded, out, environ=XTERM).needs_you("hi")
    assert out.getvalue() == ""
    explicit = settings(terminalBell=False, notifications="bell")
    assert explicit.general.notifications == "bell"


def test_nothing_when_output_is_not_a_terminal() -> None:
    out = io.StringIO()
    notify = Notifier(settings(), out, environ=XTERM)
    assert not notify.needs_you("hi")
    assert out.getvalue() == ""


def test_a_turn_notifies_only_past_the_threshold() -> None:
    notify, out = notifier(notificationAfterSeconds=30)
    assert not notify.turn_done(12.0, "Quick answer.")
    assert out.getvalue() == ""
    assert notify.turn_done(95.4, "\nAll tests pass.\nDetails follow.")
    assert out.getvalue() == "\a\x1b]9;qwen-code: Done in 1m 35s: All tests pass.\a"
    out.truncate(0)
    out.seek(0)
    # 95 s in all, but the user answered a question 5 s ago: they are there.
    assert not notify.turn_done(95.0, "x", unattended=5.0)
    assert out.getvalue() == ""


def test_default_threshold_is_thirty_seconds() -> None:
    assert Settings().general.notification_after_seconds == 30
    assert Settings().general.notifications == "bell"


# --- desktop ---------------------------------------------------------------------------------


def fake_program(folder: Path, name: str) -> Path:
    """An executable `name` in `folder` that writes its arguments, one a line, to
    `folder/argv.json`."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / name
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys, pathlib\n"
        "out = pathlib.Path(sys.argv[0]).parent / 'argv.json'\n"
        "out.write_text(json.dumps(sys.argv[1:]))\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return folder / "argv.json"


def recorded(path: Path) -> list[str]:
    deadline = time.monotonic() + 10
    while not path.exists():
        assert time.monotonic() < deadline, "the notifier never ran"
        time.sleep(0.02)
    time.sleep(0.05)
    return json.loads(path.read_text(encoding="utf-8"))


def test_desktop_runs_notify_send_with_the_text_as_arguments(tmp_path: Path) -> None:
    argv_file = fake_program(tmp_path / "bin", "notify-send")
    environ = {"PATH": str(tmp_path / "bin"), "DISPLAY": ":0", **XTERM}
    notify, out = notifier(environ, notifications="desktop")
    message = "Approve run_shell_command? echo $(id) `x`; -rf \x1b]0;evil\x07"
    assert notify.needs_you(message)
    assert recorded(argv_file) == [
        "--",
        "qwen-code",
        "Approve run_shell_command? echo $(id) `x`; -rf",
    ]
    assert out.getvalue() == ""  # no bell besides


def test_desktop_on_macos_runs_osascript_with_the_text_as_arguments(tmp_path: Path) -> None:
    argv_file = fake_program(tmp_path / "bin", "osascript")
    out = TTYStringIO()
    environ = {"PATH": str(tmp_path / "bin"), **XTERM}
    notify = Notifier(settings(notifications="desktop"), out, environ=environ, platform="darwin")
    assert notify.needs_you('He said "hi" \\ then left')
    argv = recorded(argv_file)
    assert argv[-2:] == ['He said "hi" \\ then left', "qwen-code"]
    assert "display notification (item 1 of argv) with title (item 2 of argv)" in argv
    assert out.getvalue() == ""


def test_desktop_falls_back_to_the_bell_without_a_notifier(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    environ = {"PATH": str(tmp_path / "empty"), "DISPLAY": ":0", **XTERM}
    notify, out = notifier(environ, notifications="desktop")
    assert notify.needs_you("hi")
    assert out.getvalue() == "\a\x1b]9;qwen-code: hi\a"


def test_desktop_falls_back_to_the_bell_without_a_desktop_session(tmp_path: Path) -> None:
    argv_file = fake_program(tmp_path / "bin", "notify-send")
    environ = {"PATH": str(tmp_path / "bin"), **XTERM}  # an SSH session: no DISPLAY
    notify, out = notifier(environ, notifications="desktop")
    assert notify.needs_you("hi")
    assert out.getvalue() == "\a\x1b]9;qwen-code: hi\a"
    time.sleep(0.2)
    assert not argv_file.exists()


def test_desktop_notifier_that_cannot_start_falls_back_to_the_bell() -> None:
    out = TTYStringIO()
    notify = Notifier(
        settings(notifications="desktop"),
        out,
        environ={"DISPLAY": ":0", **XTERM},
        platform="linux",
        which=lambda name, path=None: "/nonexistent/notify-send",
    )
    assert notify.needs_you("hi")
    assert out.getvalue() == "\a\x1b]9;qwen-code: hi\a"


# --- the Notification hook -------------------------------------------------------------------


@dataclass
class FakeHooks:
    """Stands in for `qwen_code.hooks.Hooks`: records what was fired."""

    events: tuple[str, ...] = ("Notification",)
    outcome: HookOutcome = field(default_factory=HookOutcome)
    fired: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)

    def active(self, event: str) -> bool:
        return event in self.events

    async def fire(
        self, event: str, fields: dict[str, Any], *, match: str | None = None
    ) -> HookOutcome:
        self.fired.append((event, fields, match))
        return self.outcome


async def test_alerts_fire_the_notification_hook_and_show_what_it_says() -> None:
    hooks = FakeHooks(outcome=HookOutcome(system_messages=["paged"], errors=["h2: exit 1"]))
    shown: list[Text] = []
    notify, out = notifier(notificationAfterSeconds=30)
    alerts = Alerts(notify, show=shown.append, hooks=lambda: hooks)
    alerts.needs_you("Approve edit? calc.py")
    await alerts.settle()
    assert hooks.fired == [
        (
            "Notification",
            {
                "message": "Approve edit? calc.py",
                "title": "qwen-code",
                "notification_type": "permission_prompt",
            },
            "permission_prompt",
        )
    ]
    assert [line.plain for line in shown] == [
        "  Notification hook: paged",
        "  Notification hook failed: h2: exit 1",
    ]
    assert all(line.style == "dim" for line in shown)
    assert "qwen-code: Approve edit? calc.py" in out.getvalue()

    hooks.fired.clear()
    alerts.turn_done(5.0, "quick")  # under the threshold: neither
    await alerts.settle()
    assert hooks.fired == []
    alerts.turn_done(45.0, "Finished the refactor.")
    await alerts.settle()
    assert hooks.fired[0][1]["notification_type"] == "idle_prompt"
    assert hooks.fired[0][1]["message"] == "Done in 45s: Finished the refactor."
    assert hooks.fired[0][2] == "idle_prompt"


async def test_the_hook_fires_even_with_terminal_notifications_off() -> None:
    hooks = FakeHooks()
    notify, out = notifier(notifications="off")
    alerts = Alerts(notify, show=lambda line: None, hooks=lambda: hooks)
    alerts.needs_you("A question for you: which one?")
    await alerts.settle()
    assert len(hooks.fired) == 1
    assert out.getvalue() == ""


async def test_no_hook_without_notification_hooks() -> None:
    hooks = FakeHooks(events=("PreToolUse",))
    alerts = Alerts(notifier()[0], show=lambda line: None, hooks=lambda: hooks)
    alerts.needs_you("hi")
    await alerts.settle()
    assert hooks.fired == []


async def test_a_slow_hook_does_not_hold_up_the_question_and_is_stopped_at_exit() -> None:
    started = asyncio.Event()

    class SlowHooks(FakeHooks):
        async def fire(
            self, event: str, fields: dict[str, Any], *, match: str | None = None
        ) -> HookOutcome:
            started.set()
            await asyncio.sleep(60)
            return HookOutcome()

    alerts = Alerts(notifier()[0], show=lambda line: None, hooks=lambda: SlowHooks())
    begun = time.monotonic()
    alerts.needs_you("hi")
    assert time.monotonic() - begun < 1
    await asyncio.wait_for(started.wait(), 5)
    await alerts.settle(within=0.1)
    assert time.monotonic() - begun < 5
