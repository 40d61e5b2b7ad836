"""What the session learns from a local model server at start-up (`llm.server_probe`),
and what it does with it: the server's context window when the settings give none, and
one warning when the server's chat template would drop the tools."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from qwen_code.llm.client import EMPTY_KEY
from qwen_code.llm.models import default_output_tokens
from qwen_code.llm.server_cards import read_card
from qwen_code.llm.server_probe import TOOLS_DROPPED_NOTE, ServerInfo, probe_server

if TYPE_CHECKING:
    from qwen_code.llm.client import ChatClient
    from qwen_code.session.live import Session

log = logging.getLogger(__name__)


def start_probe(
    client: ChatClient, served: list[dict[str, Any]]
) -> asyncio.Task[ServerInfo | None]:
    """Ask the client's server what it can tell, in a task (start-up goes on meanwhile;
    the probe gives up after `server_probe.PROBE_TIMEOUT_S`). A hosted API is not asked."""
    config = client.config
    return asyncio.create_task(
        probe_server(
            config.base_url,
            model=config.model,
            api_key=config.api_key or EMPTY_KEY,
            headers=client.headers,
            served=served,
        ),
        name="server-probe",
    )


def _with_card(session: Session, info: ServerInfo | None) -> ServerInfo | None:
    """Fill in what the server did not say from the card `qwen-code serve` left for it."""
    if info is not None and info.tools is not None:
        return info
    config = session.client.config
    card = read_card(session.home, config.base_url, config.model)
    if card is None:
        return info
    return ServerInfo(
        kind=info.kind if info is not None else card.engine,
        tools=card.tools,
        context_window=(info.context_window if info is not None else None) or card.context_window,
        jinja=info.jinja if info is not None else None,
    )


def use_server_info(session: Session, info: ServerInfo | None) -> None:
    """Keep what the probe learned (`session.server`): its context window where the
    settings set none, and the tools-dropped warning when tools would be sent."""
    info = _with_card(session, info)
    session.server = info
    if info is None:
        return
    log.info("model server: %s", info.to_json())
    if info.tools is False and session.registry.names():
        session.notes.append(TOOLS_DROPPED_NOTE)
    window = info.context_window
    if window is None or session.settings.model.generation_config.context_window_size:
        return
    config = session.client.config
    config.context_window = window
    config.output_limit = default_output_tokens(config.model, window)
    session.client.served_windows[config.model] = window
    session.agent.budget.window = window
