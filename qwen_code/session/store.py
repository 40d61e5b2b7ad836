"""Session transcripts: one append-only JSONL file per session, written as it happens.

`$QWEN_HOME/projects/<project-id>/sessions/<session-id>.jsonl`. The first line describes
the session; then one line per conversation message (the system prompt is not stored:
a resumed session gets a fresh one). When the history is rewritten (compression,
`/clear`, `/restore`), a `replace` line carries the whole new history. Each line is
written with one `write` on an O_APPEND descriptor, so a process killed at any moment
leaves at most one torn last line, which loading skips. API keys are never written.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwen_code import __version__
from qwen_code.config import project_id

Message = dict[str, Any]


def sessions_dir(home: Path, cwd: Path) -> Path:
    return home / "projects" / project_id(cwd) / "sessions"


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    path: Path
    created: float
    modified: float
    size: int
    first_message: str
    messages: int
    model: str = ""


@dataclass(slots=True)
class LoadedSession:
    info: SessionInfo
    messages: list[Message]
    torn_lines: int = 0


class SessionWriter:
    """Appends a session's messages to its file as the conversation grows."""

    def __init__(self, path: Path, *, session_id: str, cwd: Path, model: str) -> None:
        self.path = path
        self._saved: list[Message] = []
        new = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if new:
            header = {
                "type": "session",
                "id": session_id,
                "cwd": str(cwd),
                "model": model,
                "created": time.time(),
                "version": __version__,
            }
            self._write(header)

    def adopt(self, messages: list[Message]) -> None:
        """Messages already in the file (a resumed session): not written again."""
        self._saved = list(messages)

    def sync(self, messages: list[Message]) -> None:
        """Write what changed since the last call: new messages, or a full replacement
        when earlier messages were rewritten. `messages` excludes the system prompt."""
        saved = self._saved
        prefix_kept = len(messages) >= len(saved) and all(
            a is b or a == b for a, b in zip(saved, messages, strict=False)
        )
        if prefix_kept:
            for message in messages[len(saved) :]:
                self._write({"type": "message", "message": message})
        else:
            self.replace(messages)
            return
        self._saved = list(messages)

    def replace(self, messages: list[Message]) -> None:
        """Record that the whole history is now `messages`."""
        self._write({"type": "replace", "messages": messages})
        self._saved = list(messages)

    def _write(self, record: dict[str, Any]) -> None:
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        os.write(self._fd, data)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def load(path: Path) -> LoadedSession:
    """Replay a session file. A torn or malformed line (a kill mid-write) is skipped."""
    header: dict[str, Any] = {}
    messages: list[Message] = []
    torn = 0
    with path.open("rb") as fh:
        for raw in fh:
            try:
                record = json.loads(raw)
            except ValueError:
                torn += 1
                continue
            kind = record.get("type") if isinstance(record, dict) else None
            if kind == "session":
                header = record
            elif kind == "message" and isinstance(record.get("message"), dict):
                messages.append(record["message"])
            elif kind == "replace" and isinstance(record.get("messages"), list):
                messages = [m for m in record["messages"] if isinstance(m, dict)]
            else:
                torn += 1
    return LoadedSession(_info(path, header, messages), messages, torn)


def _info(path: Path, header: dict[str, Any], messages: list[Message]) -> SessionInfo:
    first = next((_text(m) for m in messages if m.get("role") == "user"), "")
    return _describe(path, header, first, len(messages))


def _describe(path: Path, header: dict[str, Any], first: str, messages: int) -> SessionInfo:
    stat = path.stat()
    return SessionInfo(
        id=path.stem,
        path=path,
        created=float(header.get("created") or stat.st_mtime),
        modified=stat.st_mtime,
        size=stat.st_size,
        first_message=" ".join(first.split())[:200],
        messages=messages,
        model=str(header.get("model") or ""),
    )


def _text(message: Message) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def list_sessions(home: Path, cwd: Path, *, limit: int | None = None) -> list[SessionInfo]:
    """This project's sessions, most recently used first (the newest `limit` of them).
    Sorted by file time and described with `peek`: fast with hundreds of long sessions."""
    folder = sessions_dir(home, cwd)
    if not folder.is_dir():
        return []
    dated = []
    for path in folder.glob("*.jsonl"):
        with contextlib.suppress(OSError):  # deleted meanwhile
            dated.append((path.stat().st_mtime, path))
    dated.sort(key=lambda item: item[0], reverse=True)
    infos = []
    for _, path in dated[:limit]:
        with contextlib.suppress(OSError):
            infos.append(peek(path))
    return infos


_MESSAGE = b'{"type": "message"'
_REPLACE = b'{"type": "replace"'


def peek(path: Path) -> SessionInfo:
    """A session's description without replaying it: the header, the first user message
    and the message count (lines since the last `replace`, plus what that one holds).
    Only the header, the lines up to the first user message and the last `replace` line
    are parsed."""
    data = path.read_bytes()
    lines = data.splitlines()
    header: dict[str, Any] = {}
    first = ""
    for raw in lines:
        record = _record(raw)
        if record.get("type") == "session":
            header = record
        message = record.get("message")
        if isinstance(message, dict) and message.get("role") == "user":
            first = _text(message)
            break
    count, base = 0, 0
    for raw in reversed(lines):
        if raw.startswith(_REPLACE):
            replaced = _record(raw).get("messages")
            if isinstance(replaced, list):
                base = len(replaced)
                break
            continue  # a torn replace line is skipped, as `load` does
        if raw.startswith(_MESSAGE) and raw.endswith(b"}"):
            count += 1
    return _describe(path, header, first, base + count)


def _record(raw: bytes) -> dict[str, Any]:
    try:
        record = json.loads(raw)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def find_session(home: Path, cwd: Path, session_id: str) -> Path | None:
    """A session file by id, or by a unique prefix of it."""
    folder = sessions_dir(home, cwd)
    exact = folder / f"{session_id}.jsonl"
    if exact.is_file():
        return exact
    matches = list(folder.glob(f"{session_id}*.jsonl")) if session_id else []
    return matches[0] if len(matches) == 1 else None
