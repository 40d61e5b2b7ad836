"""`/trust`: whether this folder's own settings may widen what qwen-code does, and change it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from qwen_code import trust
from qwen_code.config import project_root
from qwen_code.ui.commands import command

if TYPE_CHECKING:
    from qwen_code.ui.repl import Repl


def describe(state: trust.Trust | None) -> str:
    """One line on the folder's trust and where it comes from."""
    if state is None:
        return "unknown"
    why = {
        "disabled": "folder trust is off (security.folderTrust.enabled: false)",
        "flag": "--trust-workspace",
        "env": f"{trust.OPT_IN_ENV}=true",
        "file": state.rule,
        "none": "not decided yet",
    }[state.source]
    verdict = {True: "trusted", False: "not trusted", None: "not trusted"}[state.trusted]
    return f"{verdict} ({why})"


@command("trust", "Show or change whether this folder's own settings are trusted")
async def _trust(repl: Repl, args: str) -> None:
    from qwen_code.ui.trust_dialog import ask_trust

    settings = repl.session.settings
    root = project_root(repl.session.cwd)
    repl.console.print(Text(f"{root}: {describe(settings.trust)}"))
    for key in settings.untrusted_keys:
        repl.console.print(Text(f"  ignored here: {key}", style="yellow"))
    level = await ask_trust(repl.console, repl.session.cwd, repl.home)
    if level is None:
        return
    now_trusted = level != "DO_NOT_TRUST"
    if settings.trust is not None and settings.trust.granted == now_trusted:
        return
    repl.console.print(
        Text(
            "The folder's settings apply as decided from the next start: leave and run "
            "`qwen-code -c` to continue this conversation with them.",
            style="yellow",
        )
    )


@command("permissions", "The allow, ask and deny rules in effect, and this folder's trust")
async def _permissions(repl: Repl, args: str) -> None:
    permissions = repl.session.runner.permissions
    console = repl.console
    console.print(Text(f"Approval mode: {repl.session.runner.mode}"))
    for tier, rules in (
        ("deny", permissions.deny),
        ("ask", permissions.ask),
        ("allow", permissions.allow),
    ):
        shown = ", ".join(rule.raw for rule in rules) or "(none)"
        console.print(Text(f"{tier:>5}: {shown}"))
    settings = repl.session.settings
    root = project_root(repl.session.cwd)
    console.print(Text(f"This folder ({root}): {describe(settings.trust)}", style="dim"))
    for key in settings.untrusted_keys:
        console.print(Text(f"  ignored here: {key}", style="yellow"))
    console.print(
        Text(
            "Rules live in permissions.allow/ask/deny of ~/.qwen/settings.json and "
            ".qwen/settings.json; /trust changes the folder's trust.",
            style="dim",
        )
    )
