"""Session transcripts: one append-only JSONL file per session, written as it happens.

`$QWEN_HOME/projects/<project-id>/sessions/<session-id>.jsonl`. The first line describes
the session (its title, whether it ran headless); then one line per conversation message
(the system prompt is not stored: a resumed session gets a fresh one). The file is created
with its first message: a session left without one leaves nothing behind. When the history
is rewritten (compression, `/clear`, `/restore`), a `replace` line carries the whole new
history. Each line is appended on an O_APPEND descriptor, whole or (a full disk) not at
all, so a process killed at any moment leaves at most one torn last line, which loading
skips and counts. API keys are never written.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwen_code import __version__
from qwen_code.config import project_id
from qwen_code.textsafe import clean_json

Message = dict[str, Any]
TITLE_CHARS = 200


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
    title: str = ""
    """The user's prompt that began the session: the header's `title` (a headless run's
    `-p` text, without what was piped in), else the first user message."""
    headless: bool = False
    """Run by `qwen-code -p` or a program, not a conversation in the REPL."""
    has_prompt: bool = True
    """Whether any user message was found (a session opened and left has none)."""

    @property
    def empty(self) -> bool:
        """Nothing to continue: no messages, or none from the user. Listings hide these."""
        return self.messages == 0 or not self.has_prompt


@dataclass(slots=True)
class LoadedSession:
    info: SessionInfo
    messages: list[Message]
    torn_lines: int = 0


class SessionWriter:
    """Appends a session's messages to its file as the conversation grows.

    Each record is one line, appended whole or not at all: a write that fails part-way
    (a full disk: ENOSPC, EFBIG, a short write) is cut off again with `ftruncate`, so no
    torn line is left for the next record to be glued to, and a file that already ends in
    a torn line (a killed process) gets a newline before the next record. A record counts
    as saved only once fully written: `sync` raises OSError at the first record that could
    not be written and the next `sync` starts from there, never writing a record twice.
    Any string can be saved: text that UTF-8 cannot encode (lone surrogates) is cleaned.
    """

    def __init__(self, path: Path, *, session_id: str, cwd: Path, model: str) -> None:
        self.path = path
        self._saved: list[Message] = []
        self._fd = -1
        self._end: int | None = None
        """The file's size after our last write: when it still is, no need to look at the
        last byte again."""
        self._header: dict[str, Any] | None = {
            "type": "session",
            "id": session_id,
            "cwd": str(cwd),
            "model": model,
            "created": time.time(),
            "version": __version__,
        }
        """Written with the first record (an existing file keeps its own): a session that
        never gets a message leaves no file to list."""

    def label(self, *, title: str | None = None, headless: bool | None = None) -> None:
        """What the header of a new file says about the session; no effect once written."""
        if self._header is None:
            return
        if title and title.strip():
            self._header["title"] = " ".join(title.split())[:TITLE_CHARS]
        if headless is not None:
            self._header["headless"] = headless

    def adopt(self, messages: list[Message]) -> None:
        """Messages already in the file (a resumed session): not written again."""
        self._saved = list(messages)

    def sync(self, messages: list[Message]) -> None:
        """Write what changed since the last call: new messages, or a full replacement
        when earlier messages were rewritten. `messages` excludes the system prompt.
        Raises OSError when a record could not be written; what was written stays saved
        and the rest is written by the next call."""
        saved = self._saved
        prefix_kept = len(messages) >= len(saved) and all(
            a is b or a == b for a, b in zip(saved, messages, strict=False)
        )
        if not prefix_kept:
            self.replace(messages)
            return
        for message in messages[len(saved) :]:
            self._write({"type": "message", "message": message})
            saved.append(message)

    def replace(self, messages: list[Message]) -> None:
        """Record that the whole history is now `messages`."""
        self._write({"type": "replace", "messages": messages})
        self._saved = list(messages)

    def _open(self) -> None:
        """Open the file (once) and write the header of a new (or empty) one."""
        if self._fd < 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            self._end = None
        if self._header is not None:
            if os.fstat(self._fd).st_size == 0:
                self._append(encode_record(self._header))
            self._header = None  # an existing session keeps its own header

    def _write(self, record: dict[str, Any]) -> None:
        self._open()
        self._append(encode_record(record))

    def _append(self, data: bytes) -> None:
        """Append one line, or nothing: a failed write is cut off again."""
        start = os.fstat(self._fd).st_size
        if start and start != self._end and not _ends_line(self._fd, start):
            data = b"\n" + data  # after a torn line: never glue a record to it
        self._end = None
        try:
            _write_all(self._fd, data)
        except BaseException:
            with contextlib.suppress(OSError):  # if this fails too, the next record sees it
                os.ftruncate(self._fd, start)
            raise
        self._end = start + len(data)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def encode_record(record: dict[str, Any]) -> bytes:
    """One JSON line. Never fails on a string: when UTF-8 cannot encode one (a lone
    surrogate), the record is written with those strings cleaned (U+FFFD)."""
    line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
    try:
        return line.encode("utf-8")
    except UnicodeEncodeError:
        cleaned = json.dumps(clean_json(record), ensure_ascii=False, default=str)
        return (cleaned + "\n").encode("utf-8")


def _ends_line(fd: int, size: int) -> bool:
    """True when the file's last byte (at `size` - 1) is a newline."""
    os.lseek(fd, size - 1, os.SEEK_SET)  # O_APPEND: writes still go to the end
    return os.read(fd, 1) == b"\n"


def _write_all(fd: int, data: bytes) -> None:
    """`os.write` until all of `data` is written: it may write less than asked (a disk
    that fills up, a file size limit) before it fails."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


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
    first = _first_user(messages)
    return _describe(path, header, first, len(messages))


def _first_user(messages: list[Any]) -> str | None:
    """The text of the first user message; None when there is none."""
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            return _text(message)
    return None


def _describe(path: Path, header: dict[str, Any], first: str | None, messages: int) -> SessionInfo:
    stat = path.stat()
    first_message = " ".join((first or "").split())[:TITLE_CHARS]
    title = header.get("title")
    if not isinstance(title, str) or not title.strip():
        title = first_message  # not recorded: an older file, or nothing told the writer
    return SessionInfo(
        id=path.stem,
        path=path,
        created=float(header.get("created") or stat.st_mtime),
        modified=stat.st_mtime,
        size=stat.st_size,
        first_message=first_message,
        messages=messages,
        model=str(header.get("model") or ""),
        title=" ".join(title.split())[:TITLE_CHARS],
        headless=header.get("headless") is True,
        has_prompt=first is not None,
    )


def _text(message: Message) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def list_sessions(
    home: Path, cwd: Path, *, limit: int | None = None, include_empty: bool = False
) -> list[SessionInfo]:
    """This project's sessions, most recently used first (the newest `limit` of them).
    Sessions with nothing to continue (`SessionInfo.empty`: opened and left, or cleared)
    are left out unless `include_empty`. Sorted by file time and described with `peek`:
    fast with hundreds of long sessions."""
    folder = sessions_dir(home, cwd)
    if not folder.is_dir():
        return []
    dated = []
    for path in folder.glob("*.jsonl"):
        with contextlib.suppress(OSError):  # deleted meanwhile
            dated.append((path.stat().st_mtime, path))
    dated.sort(key=lambda item: item[0], reverse=True)
    infos: list[SessionInfo] = []
    for _, path in dated:
        if limit is not None and len(infos) >= limit:
            break
        with contextlib.suppress(OSError):
            info = peek(path)
            if include_empty or not info.empty:
                infos.append(info)
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
    first: str | None = None
    for raw in lines:
        record = _record(raw)
        kind = record.get("type")
        if kind == "session":
            header = record
        elif kind == "message":
            first = _first_user([record.get("message")])
        elif kind == "replace" and isinstance(record.get("messages"), list):
            first = _first_user(record["messages"])
        if first is not None:
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
