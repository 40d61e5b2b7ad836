"""The folder trust question: what this folder would configure, and trust it or not.

Asked on the first interactive run in a folder whose own settings hold something that
applies only when trusted (an approval mode, allow rules, a provider URL, ...), and by
`/trust` at any time. Headless runs never ask (see `--trust-workspace`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from qwen_code import trust
from qwen_code.config import find_project_settings, project_root, read_settings_file
from qwen_code.errors import ConfigError

MAX_LISTED = 12


@dataclass(slots=True)
class FolderConfig:
    """What a folder configures for qwen-code, as the trust question lists it."""

    root: Path
    settings_file: Path | None = None
    gated: list[str] = field(default_factory=list)
    """`key = value` lines that apply only when the folder is trusted."""
    other: list[str] = field(default_factory=list)
    """Settings keys that apply either way."""
    commands: list[str] = field(default_factory=list)
    context_files: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)


def describe_folder(cwd: Path, home: Path) -> FolderConfig:
    """Read (never run) what the project at `cwd` would configure."""
    root = project_root(cwd)
    found = FolderConfig(root=root)
    path = find_project_settings(cwd, home)
    if path is not None:
        found.settings_file = path
        try:
            data = read_settings_file(path)
        except ConfigError as exc:
            found.other.append(f"(broken: {exc})")
            data = {}
        for key in trust.leaf_keys(data):
            line = f"{trust.dotted(key)} = {_preview(_value(data, key))}"
            (found.gated if trust.is_gated(key) else found.other).append(line)
    qwen_dir = root / ".qwen"
    found.commands = _files(qwen_dir / "commands", ("*.md", "*.toml"))
    found.prompts = _files(qwen_dir / "prompts", ("*.md",))
    found.context_files = [n for n in ("QWEN.md", "AGENTS.md") if (root / n).is_file()]
    return found


def _value(data: dict[str, Any], key: tuple[str, ...]) -> Any:
    node: Any = data
    for part in key:
        node = node[part]
    return node


def _preview(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _files(folder: Path, patterns: tuple[str, ...]) -> list[str]:
    if not folder.is_dir():
        return []
    names = {str(p.relative_to(folder)) for pattern in patterns for p in folder.rglob(pattern)}
    return sorted(names)


def show_folder(console: Console, found: FolderConfig) -> None:
    console.print(Text(f"Do you trust the files in {found.root}?", style="bold"))
    console.print(
        Text(
            "A folder's own settings can change what qwen-code may do there without asking. "
            "Trust only folders whose contents you (or people you trust) wrote.",
            style="dim",
        )
    )
    sections = (
        (f"Applied only if you trust it ({found.settings_file}):", found.gated),
        ("Applied either way:", found.other),
        ("Custom commands (.qwen/commands):", found.commands),
        ("Prompt templates (.qwen/prompts):", found.prompts),
        ("Context files:", found.context_files),
    )
    for title, lines in sections:
        if not lines:
            continue
        console.print(Text(title))
        for line in lines[:MAX_LISTED]:
            console.print(Text(f"  {line}", style="yellow" if "trust" in title else ""))
        if len(lines) > MAX_LISTED:
            console.print(Text(f"  ... and {len(lines) - MAX_LISTED} more", style="dim"))


CHOICES: tuple[tuple[str, trust.TrustLevel], ...] = (
    ("Trust this folder", "TRUST_FOLDER"),
    ("Trust the parent folder ({parent}) and everything in it", "TRUST_PARENT"),
    ("Don't trust (its settings that widen what qwen-code may do are ignored)", "DO_NOT_TRUST"),
)


async def ask_trust(console: Console, cwd: Path, home: Path) -> trust.TrustLevel | None:
    """Show the folder's configuration and record the user's answer. None: no answer
    (Esc); the folder stays untrusted for this run and the question comes back next time."""
    from qwen_code.ui.picker import pick

    found = describe_folder(cwd, home)
    show_folder(console, found)
    items = [label.format(parent=found.root.parent) for label, _ in CHOICES]
    chosen = await pick(items, title="Trust this folder?", cancel="decide later")
    if chosen is None:
        console.print(Text("Not trusted for now; you will be asked again.", style="dim"))
        return None
    level = CHOICES[chosen][1]
    path = trust.save_decision(found.root, level, home, os.environ)
    console.print(Text(f"Saved: {found.root} → {level} in {path}", style="dim"))
    return level
