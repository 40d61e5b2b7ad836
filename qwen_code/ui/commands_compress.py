"""`/compress`: compress the conversation now, to free room in the context window."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from qwen_code.agent.events import SideUsage
from qwen_code.errors import ConfigError, ModelError
from qwen_code.ui.commands import command

if TYPE_CHECKING:
    from qwen_code.ui.repl import Repl

METHODS = {
    "summary": "older messages summarized by the model",
    "elided": "old tool output elided",
    "dropped": "oldest turns dropped",
}


@command("compress", "Summarize older messages to free context: /compress [what to focus on]")
async def _compress(repl: Repl, args: str) -> None:
    agent = repl.session.agent
    try:
        with repl.console.status("Compressing the conversation…"):
            info = await agent.compress(focus=args)
    except (ModelError, ConfigError) as exc:
        repl.console.print(Text(f"Could not compress the conversation: {exc}", style="red"))
        return
    if info is None:
        repl.console.print("Nothing to compress yet: the conversation is still short.")
        return
    repl.stats.observe(info)  # counts the summary request's tokens and cost
    if isinstance(info, SideUsage):
        repl.console.print(
            "Nothing compressed: the model's summary was no shorter than the conversation "
            "it would replace."
        )
        return
    window = repl.session.context_window
    share = f" ({info.after_tokens / window:.0%} of the window)" if window else ""
    repl.console.print(
        f"Compressed the conversation ({METHODS[info.method]}): "
        f"{info.before_tokens:,} → {info.after_tokens:,} tokens{share}."
    )
