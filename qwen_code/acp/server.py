"""qwen-code as an ACP agent: the methods an editor calls, over `acp`'s JSON-RPC connection.

Supported: `initialize`, `authenticate` (nothing to do), `session/new`, `session/load`
(the saved transcript is replayed), `session/list`, `session/close`, `session/set_mode`,
`session/set_config_option` (mode, model), `session/prompt` and `session/cancel`. Each
session loads the settings of its own folder, as `qwen-code` started there would.
Errors are JSON-RPC errors with a message for the user, never a traceback.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acp import PROTOCOL_VERSION, RequestError
from acp.schema import (
    AgentCapabilities,
    AuthenticateResponse,
    CloseSessionResponse,
    Implementation,
    InitializeResponse,
    ListSessionsResponse,
    LoadSessionResponse,
    McpCapabilities,
    NewSessionResponse,
    PromptCapabilities,
    PromptResponse,
    SessionCapabilities,
    SessionCloseCapabilities,
    SessionInfo,
    SessionListCapabilities,
    SetSessionConfigOptionResponse,
    SetSessionModeResponse,
)

from qwen_code import __version__
from qwen_code.acp.calls import ToolCallBook
from qwen_code.acp.files import EditorFiles
from qwen_code.acp.options import (
    MODE_OPTION,
    MODEL_OPTION,
    MODES,
    config_options,
    mode_state,
    with_editor_servers,
)
from qwen_code.acp.permissions import EditorApprover, EditorUser
from qwen_code.acp.replay import history_updates
from qwen_code.acp.turns import EditorSession
from qwen_code.errors import CredentialsError, QwenCodeError

if TYPE_CHECKING:
    from acp.interfaces import Client
    from acp.schema import ClientCapabilities

    from qwen_code.config import Flags
    from qwen_code.session.live import Session
    from qwen_code.session.store import LoadedSession
    from qwen_code.tools.base import ToolContext

log = logging.getLogger(__name__)


def user_error(exc: QwenCodeError) -> RequestError:
    """A qwen-code error as the JSON-RPC error the editor shows: missing credentials are
    ACP's "authentication required", anything else carries its message."""
    if isinstance(exc, CredentialsError):
        return RequestError(-32000, str(exc), {"message": str(exc)})
    return RequestError(-32603, str(exc), {"message": str(exc)})


def _bad_params(message: str) -> RequestError:
    return RequestError(-32602, message, {"message": message})


class QwenAgent:
    """The ACP `Agent`: sessions by id, each with its own settings and folder."""

    def __init__(self, flags: Flags, home: Path) -> None:
        self.flags = flags
        self.home = home
        self.client: Client | None = None
        self.capabilities: ClientCapabilities | None = None
        self.sessions: dict[str, EditorSession] = {}

    def on_connect(self, conn: Client) -> None:
        self.client = conn

    async def initialize(
        self, protocol_version: int, client_capabilities: ClientCapabilities | None = None, **_: Any
    ) -> InitializeResponse:
        self.capabilities = client_capabilities
        capabilities = AgentCapabilities(
            load_session=True,
            prompt_capabilities=PromptCapabilities(image=True, embedded_context=True),
            mcp_capabilities=McpCapabilities(http=True, sse=True),
            session_capabilities=SessionCapabilities(
                list=SessionListCapabilities(), close=SessionCloseCapabilities()
            ),
        )
        return InitializeResponse(
            protocol_version=PROTOCOL_VERSION,
            agent_capabilities=capabilities,
            agent_info=Implementation(name="qwen-code", title="Qwen Code", version=__version__),
            auth_methods=[],
        )

    async def authenticate(self, method_id: str, **_: Any) -> AuthenticateResponse:
        """Nothing to do: credentials come from the settings and the environment."""
        return AuthenticateResponse()

    async def new_session(
        self, cwd: str, mcp_servers: list[Any] | None = None, **_: Any
    ) -> NewSessionResponse:
        live = await self._open(_folder(cwd), mcp_servers)
        return NewSessionResponse(
            session_id=live.id,
            modes=mode_state(live.session),
            config_options=config_options(live.session),
        )

    async def load_session(
        self, cwd: str, session_id: str, mcp_servers: list[Any] | None = None, **_: Any
    ) -> LoadSessionResponse:
        """Open a saved session of this folder and replay it to the editor."""
        from qwen_code.session.store import find_session, load

        folder = _folder(cwd)
        path = find_session(self.home, folder, session_id)
        if path is None:
            raise _bad_params(f"No saved session {session_id!r} for {folder}.")
        if session_id in self.sessions:
            await self.sessions.pop(session_id).aclose()
        live = await self._open(folder, mcp_servers, resume=load(path))
        for update in history_updates(live.session.agent.conversation.messages, folder):
            await live.send(update)
        return LoadSessionResponse(
            modes=mode_state(live.session), config_options=config_options(live.session)
        )

    async def list_sessions(self, cwd: str | None = None, **_: Any) -> ListSessionsResponse:
        from qwen_code.session.store import list_sessions

        folder = _folder(cwd) if cwd else Path.cwd()
        found = list_sessions(self.home, folder, limit=200)
        return ListSessionsResponse(
            sessions=[
                SessionInfo(
                    session_id=info.id,
                    cwd=str(folder),
                    title=info.title[:100] or None,
                    updated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(info.modified)),
                )
                for info in found
            ]
        )

    async def close_session(self, session_id: str, **_: Any) -> CloseSessionResponse:
        live = self.sessions.pop(session_id, None)
        if live is not None:
            await live.aclose()
        return CloseSessionResponse()

    async def set_session_mode(
        self, session_id: str, mode_id: str, **_: Any
    ) -> SetSessionModeResponse:
        live = self._live(session_id)
        _set_mode(live, mode_id)
        return SetSessionModeResponse()

    async def set_config_option(
        self, config_id: str, session_id: str, value: str | bool, **_: Any
    ) -> SetSessionConfigOptionResponse:
        live = self._live(session_id)
        if config_id == MODE_OPTION:
            _set_mode(live, str(value))
        elif config_id == MODEL_OPTION and isinstance(value, str) and value.strip():
            live.session.switch_model(value.strip())
        else:
            raise _bad_params(f"Unknown option or value: {config_id}={value!r}.")
        return SetSessionConfigOptionResponse(config_options=config_options(live.session))

    async def prompt(self, session_id: str, prompt: list[Any], **_: Any) -> PromptResponse:
        live = self._live(session_id)
        return PromptResponse(stop_reason=await live.prompt(prompt))

    async def cancel(self, session_id: str, **_: Any) -> None:
        live = self.sessions.get(session_id)
        if live is not None:
            live.cancel()

    async def aclose(self) -> None:
        """Close every session (the editor went away)."""
        while self.sessions:
            _, live = self.sessions.popitem()
            try:
                await live.aclose()
            except Exception as exc:
                log.warning("closing session %s: %r", live.id, exc)

    def _live(self, session_id: str) -> EditorSession:
        live = self.sessions.get(session_id)
        if live is None:
            raise _bad_params(f"No session {session_id!r} is open; create or load it first.")
        return live

    async def _open(
        self, folder: Path, mcp_servers: list[Any] | None, *, resume: LoadedSession | None = None
    ) -> EditorSession:
        """A session in `folder` wired to the editor; qwen-code errors become JSON-RPC
        errors the editor shows."""
        if self.client is None:
            raise RequestError.internal_error({"message": "not connected"})
        try:
            return await self._open_session(folder, mcp_servers, resume)
        except QwenCodeError as exc:
            raise user_error(exc) from None

    async def _open_session(
        self, folder: Path, mcp_servers: list[Any] | None, resume: LoadedSession | None
    ) -> EditorSession:
        from qwen_code.config import load_settings, resolve_provider
        from qwen_code.session.setup import open_session

        assert self.client is not None
        flags, notes = with_editor_servers(self.flags, mcp_servers)
        settings = load_settings(flags, cwd=folder, home=self.home)
        provider = resolve_provider(settings, home=self.home)
        session_id = resume.info.id if resume is not None else str(uuid.uuid4())
        book = ToolCallBook()
        approver = EditorApprover(self.client, session_id, book, folder)
        session = await open_session(
            settings,
            provider,
            cwd=folder,
            home=self.home,
            approver=approver,
            resume=resume,
            session_id=None if resume is not None else session_id,
        )
        book.session = session
        approver.ready = True
        self._wire_editor(session.tool_ctx, session_id)
        live = EditorSession(session=session, client=self.client, book=book)
        live.notes = [*settings.notices, *notes, *_startup_notes(session, resume)]
        self.sessions[live.id] = live
        return live

    def _wire_editor(self, ctx: ToolContext, session_id: str) -> None:
        """File I/O through the editor where it offers it; questions through the editor."""
        assert self.client is not None
        fs = self.capabilities.fs if self.capabilities is not None else None
        if fs is not None and (fs.read_text_file or fs.write_text_file):
            ctx.file_io = EditorFiles(
                self.client,
                session_id,
                read=bool(fs.read_text_file),
                write=bool(fs.write_text_file),
            )
        ctx.user = EditorUser(self.client, session_id)


def _folder(cwd: str) -> Path:
    path = Path(cwd).expanduser()
    if not path.is_absolute() or not path.is_dir():
        raise _bad_params(f"cwd must be an absolute path to a folder; got {cwd!r}.")
    return path.resolve()


def _set_mode(live: EditorSession, mode: str) -> None:
    if mode not in MODES:
        raise _bad_params(f"Unknown mode {mode!r}; the modes are {', '.join(MODES)}.")
    live.session.runner.set_mode(mode)  # type: ignore[arg-type]


def _startup_notes(session: Session, resume: LoadedSession | None) -> list[str]:
    """Damaged lines of a loaded transcript, context files left out, MCP notes."""
    from qwen_code.memory import notices
    from qwen_code.session.resume import damage_notice

    damaged = damage_notice(resume)
    mcp = session.mcp.notes if session.mcp is not None else []
    return [*([damaged] if damaged else []), *notices(session.context_files), *mcp]
