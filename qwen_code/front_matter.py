"""Markdown files with YAML front matter (skills, agent definitions, as Qwen Code and
Claude Code write them): the metadata parsed with PyYAML (real YAML: lists, quoting,
multi-line text), and the body after it."""

from __future__ import annotations

import re
from typing import Any

_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(metadata, body); ValueError says what is wrong with the front matter."""
    import yaml

    match = _FRONT.match(text)
    if match is None:
        raise ValueError("no front matter (--- name/description --- at the top)")
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"front matter is not valid YAML ({one_line(str(exc))})") from exc
    if not isinstance(meta, dict):
        raise ValueError("front matter must be a mapping of keys")
    return meta, text[match.end() :]


def body_of(text: str) -> str:
    """The text after the front matter (all of it when there is none)."""
    match = _FRONT.match(text)
    return (text[match.end() :] if match else text).strip()


def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
