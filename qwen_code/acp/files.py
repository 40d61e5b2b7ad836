"""File I/O through the editor (ACP's `fs/read_text_file` and `fs/write_text_file`).

Given to the tools as `ToolContext.file_io` when the client offers the methods: read_file,
edit and write_file then see unsaved buffers, and the editor records the agent's changes
in its own undo history. Paths reach here already checked against the workspace.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from acp import RequestError

if TYPE_CHECKING:
    from acp.interfaces import Client

log = logging.getLogger(__name__)


class EditorFiles:
    """`FileIO` over an ACP client; `read`/`write`: which methods the client offered."""

    def __init__(self, client: Client, session_id: str, *, read: bool, write: bool) -> None:
        self.client = client
        self.session_id = session_id
        self.read = read
        self.write = write

    async def read_text(self, path: Path) -> str | None:
        """The editor's text of an existing file; None (read it from disk) for a file that
        is not there, or one the editor would not read (binary, too large)."""
        if not self.read or not _is_file(path):
            return None
        try:
            response = await self.client.read_text_file(session_id=self.session_id, path=str(path))
        except (RequestError, ConnectionError) as exc:
            log.info("the editor did not read %s (%s); reading it from disk", path, exc)
            return None
        return response.content

    async def write_text(self, path: Path, text: str) -> bool | None:
        """Have the editor write the file; whether it was created. None when the client
        does not write files (the tool writes it on disk)."""
        if not self.write:
            return None
        created = _prepare_write(path)
        try:
            await self.client.write_text_file(
                session_id=self.session_id, path=str(path), content=text
            )
        except (RequestError, ConnectionError) as exc:
            raise OSError(f"the editor did not write it ({exc})") from exc
        return created


def _is_file(path: Path) -> bool:
    return path.is_file()


def _prepare_write(path: Path) -> bool:
    """Make the file's folder (as a write on disk would); whether the file is new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return not path.exists()
