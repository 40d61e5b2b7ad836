"""`/agents show N`: what a subagent of this session did, read back from its transcript
(`<session>/subagents/<agent>-<call id>.jsonl`): its task, each tool call with the first
lines of its result, and its final answer. The REPL shows a subagent as one live line
while it runs; this is the expanded view afterwards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

RESULT_LINES = 3


def read_messages(path: Path) -> list[dict[str, Any]]:
    """The messages of a transcript file; damaged lines (a crash mid-write) are skipped."""
    messages = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("type") == "message":
            message = record.get("message")
            if isinstance(message, dict):
                messages.append(message)
    return messages


def show_transcript(console: Console, path: Path) -> None:
    try:
        messages = read_messages(path)
    except OSError as exc:
        console.print(Text(f"Cannot read {path}: {exc.strerror}", style="red"))
        return
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if role == "user":
            console.print(Text.assemble(("Task: ", "bold"), str(content or "")))
        elif role == "assistant":
            if content:
                console.print(Text(str(content)))
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                line = Text.assemble(("● ", "cyan"), (str(function.get("name", "")), "bold"))
                line.append(f" {_short(function.get('arguments'))}", style="dim")
                console.print(line, no_wrap=True, overflow="ellipsis")
        elif role == "tool":
            lines = str(content or "").splitlines()
            for text in lines[:RESULT_LINES]:
                console.print(Text(f"  ⎿ {text}", style="dim"), no_wrap=True, overflow="ellipsis")
            if len(lines) > RESULT_LINES:
                console.print(Text(f"    … {len(lines) - RESULT_LINES} more lines", style="dim"))
    console.print(Text(f"Transcript: {path}", style="dim"))


def _short(arguments: Any, limit: int = 120) -> str:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
