"""Server cards: what `qwen-code serve` knows about an engine it started, for the agent.

Some engines say little about themselves: llama-cpp-python's server has no `/props`, so
nothing tells a client that the model's chat template drops tools. `serve` reads the GGUF
itself, so it writes a card, `$QWEN_HOME/servers/<host>_<port>.json`, for the engine it
starts; a session on that address reads it when the server itself said nothing. The card
names the served model, so a card left by an engine that is gone is not believed for
another server on the same port. The cards are the user's own files (their home), written
only by their own `serve`.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from qwen_code.atomic import atomic_write

DIR = "servers"


@dataclass(frozen=True, slots=True)
class ServerCard:
    base_url: str
    model: str
    """The served model name clients see in /v1/models."""
    engine: str
    tools: bool | None = None
    """Whether the model's chat template can render tools (None: not known)."""
    context_window: int | None = None


def card_path(home: Path, base_url: str) -> Path:
    parts = urlsplit(base_url)
    name = re.sub(r"[^A-Za-z0-9.-]+", "-", parts.hostname or "local")
    return home / DIR / f"{name}_{parts.port or 80}.json"


def write_card(home: Path, card: ServerCard) -> Path:
    path = card_path(home, card.base_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(asdict(card), indent=2).encode())
    return path


def remove_card(home: Path, base_url: str) -> None:
    card_path(home, base_url).unlink(missing_ok=True)


def read_card(home: Path, base_url: str, model: str | None = None) -> ServerCard | None:
    """The card for `base_url` if there is one (and it names `model`, when given)."""
    try:
        data = json.loads(card_path(home, base_url).read_text(encoding="utf-8"))
        card = ServerCard(**data)
    except (OSError, ValueError, TypeError):
        return None
    if model is not None and card.model != model:
        return None
    return card
