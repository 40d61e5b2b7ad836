"""What a local model server can tell about itself, asked once per session.

A local server (a loopback, private or link-local address, or a LAN host name) is asked,
with a short timeout and never fatally:

- llama.cpp: `GET /props` (at the server's root, not under /v1): its chat template, and
  in recent versions `chat_template_caps`. A template that cannot render tools makes
  llama.cpp drop them silently (the model never sees a tool), so the session warns.
- vLLM, SGLang (and any server that reports it): `GET /v1/models` and its
  `max_model_len`, the context window when the settings give none.

Hosted APIs (DashScope, OpenRouter, ...) are never probed: no extra requests go there.
Also here: which servers count as local (`is_local_url`) and how long the first chunk of a
reply from one may take (`first_chunk_timeout`), since a CPU engine can take minutes to
process a long prompt. Importing this module is cheap (httpx comes with the first probe).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from qwen_code.llm.models import served_context_length

if TYPE_CHECKING:
    from qwen_code.llm.http import HttpTransport

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 2.0
"""The whole probe gives up after this long (the session starts without what it learns)."""
TOOLS_DROPPED_NOTE = (
    "this server's chat template cannot take tools; start it with --jinja and a "
    "tool-capable template (qwen-code serve does)"
)
"""The warning when tools would be sent to a server that drops them."""

_LAN_SUFFIXES = (".local", ".lan", ".internal", ".home.arpa", ".localhost")
_SHARED_NET = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, Tailscale
_TOOLS_IN_TEMPLATE = re.compile(r"\btools\b|tool_call")
_KINDS = {"vllm": "vllm", "sglang": "sglang", "llamacpp": "llama.cpp", "llama.cpp": "llama.cpp"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerInfo:
    """What the probe learned; None where the server did not say."""

    kind: str
    """"llama.cpp", "vllm", "sglang", or "openai-compatible" (a server that says less)."""
    tools: bool | None = None
    """Whether the chat template can render tools (llama.cpp only)."""
    context_window: int | None = None
    """The server's context length (llama.cpp `n_ctx`, vLLM/SGLang `max_model_len`)."""
    jinja: bool | None = None
    """llama.cpp: whether it renders templates with Jinja (`--jinja`), where it says."""

    def to_json(self) -> dict[str, Any]:
        """The stream-json `system/init` record: kind, tools, context_window (and jinja
        when known)."""
        record: dict[str, Any] = {
            "kind": self.kind,
            "tools": self.tools,
            "context_window": self.context_window,
        }
        if self.jinja is not None:
            record["jinja"] = self.jinja
        return record


def is_local_url(url: str) -> bool:
    """True for a server on this machine or the local network: localhost, loopback,
    private, link-local and shared (100.64/10) addresses, single-label host names and
    LAN suffixes (.local, .lan, .internal, .home.arpa). No name is looked up."""
    host = (urlsplit(url).hostname or "").rstrip(".")
    if not host:
        return False
    if host == "localhost" or host.endswith(_LAN_SUFFIXES):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host  # a name like `llama` (a container, a host on the LAN)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or (address.version == 4 and address in _SHARED_NET)
    )


def first_chunk_timeout(base_s: float, prompt_tokens: int, *, rate: float, cap_s: float) -> float:
    """How long to wait for the first chunk of a reply from a local server: the base
    timeout plus the prompt's tokens at `rate` tokens/s (the slowest prompt processing
    to expect: a CPU engine did about 160 tokens/s cold), at most `cap_s`, never less
    than the base (`ModelConfig.first_chunk_rate`, `first_chunk_cap_s`)."""
    if rate <= 0:
        return base_s
    return max(base_s, min(cap_s, base_s + max(0, prompt_tokens) / rate))


def template_takes_tools(template: str) -> bool:
    """Whether a chat template's text renders tools (it mentions `tools` or `tool_call`)."""
    return bool(_TOOLS_IN_TEMPLATE.search(template))


def read_props(props: Mapping[str, Any]) -> ServerInfo | None:
    """llama.cpp's /props: tools from `chat_template_caps` when it has a verdict, else
    from the template's text; the context from `default_generation_settings.n_ctx`.
    None when this is not llama.cpp's answer."""
    template = props.get("chat_template")
    settings = props.get("default_generation_settings")
    if not isinstance(template, str) and not isinstance(settings, Mapping):
        return None
    caps = props.get("chat_template_caps")
    caps = caps if isinstance(caps, Mapping) else {}
    verdicts = [caps[k] for k in ("supports_tools", "supports_tool_calls") if k in caps]
    tools: bool | None = None
    if verdicts:
        tools = all(v is True for v in verdicts)
    elif isinstance(template, str) and template:
        tools = template_takes_tools(template)
    jinja = next((props[k] for k in ("jinja", "use_jinja") if isinstance(props.get(k), bool)), None)
    if jinja is False:
        tools = False
    n_ctx = settings.get("n_ctx") if isinstance(settings, Mapping) else None
    window = n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None
    return ServerInfo(kind="llama.cpp", tools=tools, context_window=window, jinja=jinja)


def read_models(page: Any, model: str) -> ServerInfo | None:
    """A /v1/models answer (or its `data` list): the kind from `owned_by` and the
    context length of `model`'s entry. None when the list has no such entry."""
    data = page.get("data") if isinstance(page, Mapping) else page
    entries = [e for e in data if isinstance(e, Mapping)] if isinstance(data, list) else []
    entry = next((e for e in entries if e.get("id") == model), None)
    if entry is None:
        return None
    owner = str(entry.get("owned_by") or "").lower()
    return ServerInfo(
        kind=_KINDS.get(owner, "openai-compatible"),
        context_window=served_context_length(dict(entry)),
    )


def probe_paths(base_url: str) -> tuple[str, str, str]:
    """The server's root URL, and the paths of /props and /models under it: /props
    beside the API's /v1 (`http://h:8080/v1` -> `http://h:8080/props`)."""
    parts = urlsplit(base_url)
    root = f"{parts.scheme}://{parts.netloc}/"
    path = parts.path.strip("/")
    api = path[: -len("v1")].rstrip("/") if path == "v1" or path.endswith("/v1") else path
    prefix = f"{api}/" if api else ""
    models = f"{path}/models" if path else "models"
    return root, f"{prefix}props", models


async def probe_server(
    base_url: str,
    *,
    model: str,
    api_key: str,
    headers: Mapping[str, str],
    served: list[dict[str, Any]] | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> ServerInfo | None:
    """Ask a local server what it can tell (see the module's text); None for a hosted
    API (no request is made), or when the server said nothing useful in `timeout_s`.
    `served`: the server's model list when start-up already fetched it (not asked again).
    Never raises (but for cancellation)."""
    if not is_local_url(base_url):
        return None
    try:
        from qwen_code.llm.http import HttpTransport

        root = probe_paths(base_url)[0]
        transport = HttpTransport(
            root, api_key=api_key, headers=headers, timeout_s=timeout_s, connect_timeout_s=timeout_s
        )
    except Exception as exc:  # a probe is a courtesy: never fatal
        log.info("cannot probe %s: %s: %s", base_url, type(exc).__name__, exc)
        return None
    try:
        async with asyncio.timeout(timeout_s):  # the requests' time, not the set-up's
            return await _probe(transport, base_url, model, served, timeout_s)
    except Exception as exc:
        log.info("probing %s failed: %s: %s", base_url, type(exc).__name__, exc)
        return None
    finally:
        await transport.aclose()


async def _probe(
    transport: HttpTransport,
    base_url: str,
    model: str,
    served: list[dict[str, Any]] | None,
    timeout_s: float,
) -> ServerInfo | None:
    """/props first (llama.cpp says most there); /models when the window is still unknown."""
    _, props_path, models_path = probe_paths(base_url)
    info = await _ask(transport, props_path, read_props, timeout_s)
    if info is not None and info.context_window is not None:
        return info
    if served:
        models = read_models(served, model)
    else:
        models = await _ask(transport, models_path, lambda p: read_models(p, model), timeout_s)
    if info is None:
        return models
    window = models.context_window if models is not None else None
    return ServerInfo(kind=info.kind, tools=info.tools, context_window=window, jinja=info.jinja)


async def _ask(
    transport: HttpTransport,
    path: str,
    read: Callable[[Mapping[str, Any]], ServerInfo | None],
    timeout_s: float,
) -> ServerInfo | None:
    """GET `path` and read its JSON with `read`; None when it fails or is no JSON object."""
    try:
        page = await transport.get_json(path, timeout_s)
    except Exception as exc:
        log.debug("GET %s: %s", path, exc)
        return None
    return read(page) if isinstance(page, Mapping) else None
