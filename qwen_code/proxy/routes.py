"""Which backend model serves a request: `proxy.routes` and `proxy.backends` in settings.

A route value is "backend,model" or "model" (on the default backend: the agent's own
provider, as `resolve_provider` gives it); a value naming only a configured backend uses
that backend's `model`. Claude model names go by tier: a name containing "opus",
"sonnet" or "haiku" takes that route (haiku falls back to `background`), anything else
`default`; a request whose prompt is over `longContextThreshold` tokens takes
`longContext` when it is set. A request whose `model` is "backend,model" for a configured
backend, or exactly the model of a route, goes there. `--model` sends everything to one.

No I/O but `resolve_default_model`, which asks the default backend what it serves when
nothing names a model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qwen_code.config import NO_KEY, Settings, normalize_base_url, resolve_provider
from qwen_code.errors import ConfigError
from qwen_code.llm.models import known_context_window
from qwen_code.llm.sampling import default_sampling
from qwen_code.llm.types import ModelConfig

DEFAULT_BACKEND = "default"
"""The name of the agent's own provider among the backends."""
MAX_OUTPUT_TOKENS = 65_536
"""A backend's longest reply unless `maxOutputTokens` says otherwise."""
MIN_OUTPUT_ROOM = 1_024
"""Never ask for fewer tokens than this for the room a prompt leaves (an overlong prompt
is the backend's to refuse, with an error Claude Code answers by compacting)."""
PROXY_RETRIES = 3
"""Retries of a backend failure that happened before anything reached the client."""
TIERS = ("opus", "sonnet", "haiku")
ROUTE_NAMES = ("default", *TIERS, "background", "longContext")
_VAR = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Backend:
    """One OpenAI-compatible endpoint."""

    name: str
    base_url: str
    api_key: str = field(repr=False)
    api_key_source: str = ""
    max_output_tokens: int = MAX_OUTPUT_TOKENS
    model: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """Where requests of one route go: a backend and a model id there."""

    name: str
    backend: Backend
    model: str

    def label(self) -> str:
        """`model` or `backend/model` (for logs and the readiness line; never the key)."""
        if self.backend.name == DEFAULT_BACKEND:
            return self.model
        return f"{self.backend.name}/{self.model}"

    def config(
        self,
        *,
        max_tokens: int | None,
        prompt_tokens: int | None = None,
        sampling: dict[str, Any] | None = None,
        tool_choice: Any = None,
        timeout_s: float = 600.0,
        stall_timeout_s: float = 120.0,
        headers: dict[str, str] | None = None,
    ) -> ModelConfig:
        """The client's settings for one request. `max_tokens`: the request's, clamped to
        the backend's limit and to the room a prompt of `prompt_tokens` leaves in the
        model's known context window (vLLM and SGLang refuse more). The client's own
        `sampling` overrides the model's recommended one. Dropped and broken
        backend streams and 5xx answers are retried while nothing was sent to the client;
        a 429 is not: it reaches the client (Claude Code backs off itself) with its
        Retry-After."""
        limit = self.backend.max_output_tokens
        if max_tokens is not None:
            limit = min(limit, max_tokens)
        window = known_context_window(self.model)
        if window and prompt_tokens is not None:
            limit = min(limit, max(window - prompt_tokens, MIN_OUTPUT_ROOM))
        sampling = {**default_sampling(self.model), **(sampling or {})}
        if tool_choice is not None:
            sampling["tool_choice"] = tool_choice
        return ModelConfig(
            base_url=self.backend.base_url,
            api_key=self.backend.api_key,
            model=self.model,
            api_key_source=self.backend.api_key_source,
            timeout_s=timeout_s,
            max_retries=PROXY_RETRIES,
            retry_rate_limits=False,
            stall_timeout_s=stall_timeout_s,
            sampling=sampling,
            max_tokens=limit,
            context_window=window,
            headers=dict(headers or {}),
        )


@dataclass(slots=True)
class Router:
    """Picks the route of each request."""

    routes: dict[str, Route]
    """By route name; always has "default"."""
    long_context_threshold: int = 60_000
    override: Route | None = None
    """`--model`: every request goes here."""
    backends: dict[str, Backend] = field(default_factory=dict)

    @property
    def default(self) -> Route:
        return self.override or self.routes["default"]

    def pick(self, requested: str, prompt_tokens: int | None = None) -> Route:
        """The route for a request naming `requested`, with a prompt of `prompt_tokens`."""
        if self.override is not None:
            return self.override
        explicit = self._explicit(requested)
        if explicit is not None:
            return explicit
        long = self.routes.get("longContext")
        if long is not None and (prompt_tokens or 0) > self.long_context_threshold:
            return long
        name = requested.lower()
        for tier in TIERS:
            if tier in name:
                fallback = self.routes.get("background") if tier == "haiku" else None
                return self.routes.get(tier) or fallback or self.routes["default"]
        for route in self.routes.values():
            if route.model == requested:
                return route
        return self.routes["default"]

    def _explicit(self, requested: str) -> Route | None:
        backend_name, sep, model = requested.partition(",")
        if not sep or not model.strip():
            return None
        backend = self.backends.get(backend_name.strip())
        if backend is None:
            return None
        return Route(name="explicit", backend=backend, model=model.strip())

    def model_names(self) -> list[str]:
        """The routed model ids, each once, default first."""
        routes = [self.override] if self.override else list(self.routes.values())
        names: list[str] = []
        for route in routes:
            if route is not None and route.model not in names:
                names.append(route.model)
        return names

    def tier_model(self, tier: str) -> str:
        """The model a tier's requests go to (for `proxy env`)."""
        if self.override is not None:
            return self.override.model
        route = self.routes.get(tier)
        if route is None and tier == "haiku":
            route = self.routes.get("background")
        return (route or self.routes["default"]).model


def _expand(value: str | None) -> str | None:
    """`$NAME` or `${NAME}`: that environment variable (unset: None)."""
    if value is None:
        return None
    match = _VAR.match(value.strip())
    return os.environ.get(match.group(1)) if match else value


class _Backends:
    """The configured backends, and the default one (resolved on first use only, so that
    routes that all name other backends need no agent credentials)."""

    def __init__(self, settings: Settings, base_url: str | None) -> None:
        self.settings = settings
        self.base_url = base_url
        self.named: dict[str, Backend] = {}
        self._default: Backend | None = None
        self.default_model: str | None = None
        for name, conf in settings.proxy.backends.items():
            self.named[name] = self._backend(name, conf)

    def _backend(self, name: str, conf: Any) -> Backend:
        url = _expand(conf.base_url)
        if not url:
            base = self.default()
            key = _expand(conf.api_key) or base.api_key
            return Backend(
                name=name,
                base_url=base.base_url,
                api_key=key,
                api_key_source=f"proxy.backends.{name}.apiKey"
                if conf.api_key
                else base.api_key_source,
                max_output_tokens=conf.max_output_tokens or MAX_OUTPUT_TOKENS,
                model=conf.model,
            )
        key = _expand(conf.api_key)
        return Backend(
            name=name,
            base_url=normalize_base_url(url),
            api_key=key or NO_KEY,
            api_key_source=f"proxy.backends.{name}.apiKey" if key else "(no key set)",
            max_output_tokens=conf.max_output_tokens or MAX_OUTPUT_TOKENS,
            model=conf.model,
        )

    def default(self) -> Backend:
        if self._default is None:
            settings = self.settings
            if self.base_url:
                settings = settings.model_copy(deep=True)
                settings.security.auth.base_url = self.base_url
            provider = resolve_provider(settings)
            self.default_model = provider.model
            self._default = Backend(
                name=DEFAULT_BACKEND,
                base_url=provider.base_url,
                api_key=provider.api_key,
                api_key_source=provider.api_key_source,
                model=provider.model,
            )
        return self._default

    def all(self) -> dict[str, Backend]:
        found = dict(self.named)
        if self._default is not None:
            found.setdefault(DEFAULT_BACKEND, self._default)
        return found


def parse_route(value: str, backends: _Backends, what: str) -> Route:
    """A route from "backend,model", "model", or a configured backend's name."""
    name, sep, model = value.partition(",")
    name, model = name.strip(), model.strip()
    if sep:
        if not name or not model:
            raise ConfigError(f"{what}: expected 'backend,model' or 'model', got {value!r}.")
        if name == DEFAULT_BACKEND and name not in backends.named:
            return Route(name=what, backend=backends.default(), model=model)
        backend = backends.named.get(name)
        if backend is None:
            known = ", ".join(sorted(backends.named)) or "none"
            raise ConfigError(
                f"{what}: no backend {name!r} in proxy.backends (configured: {known})."
            )
        return Route(name=what, backend=backend, model=model)
    backend = backends.named.get(name)
    if backend is not None:
        if not backend.model:
            raise ConfigError(
                f"{what}: backend {name!r} has no model: write '{name},MODEL' or set "
                f"proxy.backends.{name}.model."
            )
        return Route(name=what, backend=backend, model=backend.model)
    return Route(name=what, backend=backends.default(), model=name)


def build_router(
    settings: Settings,
    *,
    base_url: str | None = None,
    model: str | None = None,
    served: Sequence[str] | None = None,
) -> Router:
    """The router for `settings` (`proxy.routes`, `proxy.backends`); `base_url` replaces the
    default backend's URL (`--base-url`), `model` sends everything to one model
    (`--model`). `served`: the default backend's models, when nothing names one."""
    backends = _Backends(settings, base_url)
    conf = settings.proxy.routes
    values = {
        "default": conf.default,
        "opus": conf.opus,
        "sonnet": conf.sonnet,
        "haiku": conf.haiku,
        "background": conf.background,
        "longContext": conf.long_context,
    }
    routes: dict[str, Route] = {}
    for name, value in values.items():
        if value:
            routes[name] = parse_route(value, backends, f"proxy.routes.{name}")
    override = parse_route(model, backends, "--model") if model else None
    if "default" not in routes and override is None:
        routes["default"] = _default_route(backends, served)
    elif "default" not in routes and override is not None:
        routes["default"] = override
    routes = {"default": routes.pop("default"), **routes}
    return Router(
        routes=routes,
        long_context_threshold=conf.long_context_threshold,
        override=override,
        backends=backends.all(),
    )


def _default_route(backends: _Backends, served: Sequence[str] | None) -> Route:
    backend = backends.default()
    model = backend.model
    if model is None and served is not None and len(served) == 1:
        model = served[0]
    if model is None:
        shown = ", ".join(served) if served else "none found"
        raise ConfigError(
            f"No model is set for the proxy and the server at {backend.base_url} serves "
            f"{shown}. Set proxy.routes.default, OPENAI_MODEL, or pass --model.",
            hint="",
        )
    return Route(name="default", backend=backend, model=model)


def needs_served_models(settings: Settings, base_url: str | None, model: str | None) -> bool:
    """True when only the default backend's /models can say which model to use."""
    if model or settings.proxy.routes.default:
        return False
    backends = _Backends(settings, base_url)
    backends.default()
    return backends.default_model is None


async def served_models(settings: Settings, base_url: str | None) -> list[str]:
    """The model ids the default backend serves (GET /models)."""
    from qwen_code.llm.client import ChatClient

    backend = _Backends(settings, base_url).default()
    config = ModelConfig(
        base_url=backend.base_url, api_key=backend.api_key, model="", timeout_s=15.0
    )
    async with ChatClient(config) as client:
        return [m["id"] for m in await client.list_models()]
