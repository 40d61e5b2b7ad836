"""Notifications and hooks in the REPL: the terminal notification when an approval waits
or a long turn ends (in a real pseudo-terminal), the `Notification` hook at those moments,
and `/hooks` (in-process, the `repl` fixture)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.input import PipeInput

from qwen_code.hooks.types import HookOutcome
from qwen_code.ui import commands
from qwen_code.ui.repl import Repl
from tests.fakeserver import FakeLLM, call, text, tool_turn
from tests.helpers import StartRepl, output, repl_in, write_json

OSC_9 = "\x1b]9;qwen-code: "


def user_settings(data: dict[str, Any]) -> None:
    write_json(Path(os.environ["QWEN_HOME"]) / "settings.json", data)


@pytest.fixture(autouse=True)
def no_tmux(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sequences are the plain ones, whatever terminal runs the tests."""
    for name in ("TMUX", "TERM_PROGRAM", "KONSOLE_VERSION"):
        monkeypatch.delenv(name, raising=False)


# --- in a pseudo-terminal ---------------------------------------------------------------------


def test_an_approval_rings_and_notifies(
    start_repl: StartRepl, project: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(tool_turn(call("run_shell_command", command="touch made")), text("Made it."))
    repl = start_repl()
    repl.send("make a file")
    repl.expect("$ touch made")
    repl.expect(f"\a{OSC_9}Approve run_shell_command? touch made\a")
    repl.expect("[y/n/a/p/u]")
    repl.child.send("y")
    repl.expect("Made it.")
    repl.prompt()
    assert (project / "made").exists()


def test_a_finished_turn_notifies_past_the_threshold(
    start_repl: StartRepl, fake_llm: FakeLLM
) -> None:
    user_settings({"general": {"notificationAfterSeconds": 0}})
    fake_llm.script(text("The answer is 42.\n\nMore below."))
    repl = start_repl()
    repl.send("what is the answer?")
    repl.expect("The answer is 42.")
    repl.expect(f"\a{OSC_9}Done in ")
    repl.expect("s: The answer is 42.\a")
    repl.prompt()


def test_notifications_off_write_no_bell(start_repl: StartRepl, fake_llm: FakeLLM) -> None:
    user_settings({"general": {"notifications": "off", "notificationAfterSeconds": 0}})
    fake_llm.script(text("First."), text("Second."))
    repl = start_repl()
    repl.send("one")
    repl.expect("First.")
    repl.prompt()
    repl.send("two")
    repl.expect("Second.")
    repl.prompt()
    assert OSC_9 not in (repl.child.before or "")


# --- the Notification hook, in-process --------------------------------------------------------


@dataclass
class FakeHooks:
    """Stands in for the session's `qwen_code.hooks.Hooks`, with Notification hooks only."""

    outcome: HookOutcome = field(default_factory=HookOutcome)
    fired: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)

    def active(self, event: str) -> bool:
        return event == "Notification"

    def specs(self) -> list[Any]:
        return []

    async def fire(
        self, event: str, fields: dict[str, Any], *, match: str | None = None
    ) -> HookOutcome:
        self.fired.append((event, fields, match))
        return self.outcome


async def test_the_notification_hook_fires_when_an_approval_waits(
    repl: tuple[Repl, PipeInput], fake_llm: FakeLLM
) -> None:
    r, pipe = repl
    hooks = FakeHooks(outcome=HookOutcome(system_messages=["sent to your phone"]))
    r.session.hooks = hooks  # type: ignore[assignment]
    fake_llm.script(tool_turn(call("run_shell_command", command="touch made")), text("Done."))
    pipe.send_text("y")
    await r.send("make a file")
    assert r.io.alerts is not None
    await r.io.alerts.settle()
    assert [(f[0], f[1]["notification_type"], f[2]) for f in hooks.fired] == [
        ("Notification", "permission_prompt", "permission_prompt")
    ]
    assert hooks.fired[0][1]["message"] == "Approve run_shell_command? touch made"
    assert hooks.fired[0][1]["title"] == "qwen-code"
    assert "Notification hook: sent to your phone" in output(r)


async def test_the_notification_hook_fires_when_a_long_turn_ends(
    repl: tuple[Repl, PipeInput], fake_llm: FakeLLM
) -> None:
    r, _ = repl
    hooks = FakeHooks(outcome=HookOutcome(errors=["notify.sh: exit 3"]))
    r.session.hooks = hooks  # type: ignore[assignment]
    fake_llm.script(text("Quick."))
    await r.send("hi")
    assert r.io.alerts is not None
    await r.io.alerts.settle()
    assert hooks.fired == []  # under notificationAfterSeconds (30)
    r.io.alerts.notifier.after_seconds = 0
    fake_llm.script(text("All tests pass."))
    await r.send("run them")
    await r.io.alerts.settle()
    assert len(hooks.fired) == 1
    _, fields, match = hooks.fired[0]
    assert match == "idle_prompt" and fields["notification_type"] == "idle_prompt"
    assert fields["message"].startswith("Done in ") and fields["message"].endswith(
        ": All tests pass."
    )
    assert "Notification hook failed: notify.sh: exit 3" in output(r)


async def test_a_question_from_the_model_fires_the_hook(
    repl: tuple[Repl, PipeInput], fake_llm: FakeLLM
) -> None:
    r, pipe = repl
    hooks = FakeHooks()
    r.session.hooks = hooks  # type: ignore[assignment]
    question = {
        "question": "Which database?",
        "header": "DB",
        "options": [
            {"label": "Postgres", "description": "relational"},
            {"label": "SQLite", "description": "a file"},
        ],
        "multiSelect": False,
    }
    fake_llm.script(tool_turn(call("ask_user_question", questions=[question])), text("Noted."))
    pipe.send_text("\r")
    await r.send("set up a database")
    assert r.io.alerts is not None
    await r.io.alerts.settle()
    assert [f[1]["message"] for f in hooks.fired] == ["A question for you: Which database?"]
    assert hooks.fired[0][2] == "permission_prompt"


# --- /hooks ------------------------------------------------------------------------------------


async def test_hooks_lists_the_configured_hooks_by_event(project: Path, fake_llm: FakeLLM) -> None:
    user_settings(
        {
            "hooks": {
                "PreToolUse": [
                    {
                        "matcher": "Bash|[red]x[/red]",
                        "hooks": [{"type": "command", "command": "echo '[bold]hi[/bold]'"}],
                    }
                ],
                "Notification": [
                    {"hooks": [{"type": "command", "command": "notify-me", "timeout": 5}]}
                ],
            }
        }
    )
    async with repl_in(project) as (r, _):
        await commands.dispatch(r, "/hooks")
        shown = output(r)
    settings_file = str(Path(os.environ["QWEN_HOME"]) / "settings.json")
    assert "Hooks (2 active)" in shown
    assert shown.index("PreToolUse") < shown.index("Notification")
    assert "Bash|[red]x[/red]" in shown  # markup shown as written
    assert "echo '[bold]hi[/bold]'" in shown
    assert "notify-me" in shown and "5s" in shown and "60s" in shown
    assert f"user settings ({settings_file})" in shown
    notification_line = next(line for line in shown.splitlines() if "notify-me" in line)
    assert notification_line.strip().startswith("*")  # no matcher: every notification


async def test_hooks_marks_those_waiting_for_approval(project: Path, fake_llm: FakeLLM) -> None:
    hook = {"hooks": [{"type": "command", "command": "./check.sh"}]}
    write_json(project / ".qwen" / "settings.json", {"hooks": {"Stop": [hook]}})
    write_json(
        Path(os.environ["QWEN_HOME"]) / "trustedFolders.json", {str(project): "TRUST_FOLDER"}
    )

    async def opener(approver: Any) -> Any:
        from tests.helpers import session_for

        async def deny(request: Any) -> Any:
            from qwen_code.agent.approval import ApprovalAnswer

            return ApprovalAnswer(approved=False)

        return await session_for(project, deny)

    async with repl_in(project, opener) as (r, _):
        await commands.dispatch(r, "/hooks")
        shown = output(r)
    assert "Hooks (0 active, 1 not approved)" in shown
    line = next(line for line in shown.splitlines() if "./check.sh" in line)
    assert "project settings" in line and "not approved" in line
    assert "--trust-workspace" in shown


async def test_hooks_without_any(repl: tuple[Repl, PipeInput]) -> None:
    r, _ = repl
    await commands.dispatch(r, "/hooks")
    shown = output(r)
    assert "No hooks configured" in shown and "docs/hooks.md" in shown
    await commands.dispatch(r, "/help")
    assert "/hooks" in output(r)


async def test_hooks_when_all_are_disabled(project: Path, fake_llm: FakeLLM) -> None:
    hook = {"hooks": [{"type": "command", "command": "notify-me"}]}
    user_settings({"disableAllHooks": True, "hooks": {"Notification": [hook]}})
    async with repl_in(project) as (r, _):
        assert getattr(r.session, "hooks", None) is None
        await commands.dispatch(r, "/hooks")
        shown = output(r)
    assert "Hooks are turned off (disableAllHooks" in shown
    assert "notify-me" not in shown
