"""`--help` for command groups: each subcommand's whole first sentence, wrapped.

click cuts a subcommand's description to the width left on its line and ends it with
"..." (`Size every engine and parallel layout (TP, DP, EP, PP) for a...`); this group
lists the first sentence in full and lets the formatter wrap it under the description
column instead.
"""

from __future__ import annotations

from typing import Any

import click
from typer.core import TyperGroup

_NO_LIMIT = 10_000


class HelpGroup(TyperGroup):
    """A typer group whose command list is never cut off."""

    def format_commands(self, ctx: click.Context, formatter: Any) -> None:  # type: ignore[override]
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=_NO_LIMIT)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
