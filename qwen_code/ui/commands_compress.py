"""`/compress`: compress the conversation now, to free room in the context window."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qwen_code.errors import ModelError
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
    except ModelError as exc:
        repl.console.print(f"[red]Could not compress the conversation: {exc}[/red]")
        return
    if info is None:
        repl.console.print("Nothing to compress yet: the conversation is still short.")
        return
    repl.stats.observe(info)  # counts the summary request's tokens and cost
    window = repl.session.context_window
    share = f" ({info.after_tokens / window:.0%} of the window)" if window else ""
    repl.console.print(
        f"Compressed the conversation ({METHODS[info.method]}): "
        f"{info.before_tokens:,} → {info.after_tokens:,} tokens{share}."
    )
