"""`web_search`: search the web through the configured provider (see `search_providers`).

The tool is always there; with no provider configured it answers with what to set. Which
provider answers comes from the session's settings (`webSearch`), the environment and the
session's own model endpoint (DashScope's built-in search), gathered at session start in
`ctx.state[CONFIG_KEY]` (a `SearchConfig`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qwen_code.settings_model import WebSearchSettings
from qwen_code.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParams
from qwen_code.tools.events import PROGRESS, SideUsage
from qwen_code.tools.search_providers import (
    ANSWER_CHARS,
    NO_PROVIDER,
    Endpoint,
    Found,
    SearchProvider,
    SearchResult,
    available,
    choose,
    clean,
)

if TYPE_CHECKING:
    from qwen_code.config import Provider, Settings

CONFIG_KEY = "web_search"
MIN_QUERY_CHARS = 2
MAX_QUERY_CHARS = 400
"""Brave takes at most 400 characters; longer queries search worse anywhere."""


class WebSearchParams(ToolParams):
    query: str
    """What to search for; specific phrases work better than single keywords."""


@dataclass(frozen=True, slots=True)
class SearchConfig:
    """What `web_search` may use in one session."""

    settings: WebSearchSettings = field(default_factory=WebSearchSettings)
    endpoint: Endpoint | None = None
    """The session's model endpoint (its DashScope key serves DashScope's search)."""
    region: str = "intl"
    env: Mapping[str, str] | None = None
    """Where TAVILY_API_KEY and the like are read; None: the process environment."""

    @classmethod
    def from_session(cls, settings: Settings, provider: Provider | None) -> SearchConfig:
        endpoint = None
        if provider is not None:
            endpoint = Endpoint(provider.base_url, provider.api_key, provider.is_dashscope)
        region = settings.security.auth.dashscope_region
        return cls(settings=settings.web_search, endpoint=endpoint, region=region)

    def provider(self) -> SearchProvider:
        """The provider to ask; a `ToolError` saying what to set when there is none."""
        env = os.environ if self.env is None else self.env
        providers, notes = available(self.settings, env, self.endpoint, region=self.region)
        chosen = choose(providers, self.settings.default)
        if chosen is None:
            skipped = "".join(f"\nNot used: {note}." for note in notes)
            raise ToolError(NO_PROVIDER + skipped)
        return chosen


def search_config(ctx: ToolContext) -> SearchConfig:
    """The session's search configuration (see the module's docstring)."""
    configured = ctx.state.get(CONFIG_KEY)
    return configured if isinstance(configured, SearchConfig) else SearchConfig()


class WebSearchTool(Tool[WebSearchParams]):
    name = "web_search"
    kind = "network"
    Params = WebSearchParams

    def summary(self, params: WebSearchParams) -> str:
        return params.query

    async def run(self, params: WebSearchParams, ctx: ToolContext) -> ToolOutput:
        query = _checked(params.query)
        config = search_config(ctx)
        provider = config.provider()
        found = await provider.search(query, config.settings.max_results)
        _count_usage(found)
        content = provider.redact(format_found(provider.label, query, found))
        shown = f"{len(found.results)} result(s) from {provider.label}"
        data = {"provider": provider.type, "results": len(found.results)}
        return ToolOutput(content=content, display=shown, data=data)


def _checked(query: str) -> str:
    query = " ".join(query.split())
    if len(query) < MIN_QUERY_CHARS:
        raise ToolError(f"query must be at least {MIN_QUERY_CHARS} characters.")
    if len(query) > MAX_QUERY_CHARS:
        raise ToolError(
            f"query is {len(query)} characters long; keep it under {MAX_QUERY_CHARS} "
            "(a few specific words search best)."
        )
    return query


def _count_usage(found: Found) -> None:
    """The searching model's tokens count in the session's usage (DashScope)."""
    emit = PROGRESS.get()
    if found.usage is not None and emit is not None:
        emit(SideUsage(usage=found.usage, model=found.model, purpose="web_search"))


def format_found(label: str, query: str, found: Found) -> str:
    """The model's view: the provider and query first, then the answer (if any) and the
    numbered results, `title — url` with the snippet indented below."""
    count = len(found.results)
    if count:
        what = f"{count} result{'' if count == 1 else 's'}"
    else:
        what = "an answer without sources" if found.answer else "no results"
    lines = [f'Web search via {label} for "{query}": {what}.']
    if found.answer:
        lines += ["", "Answer:", clean(found.answer, ANSWER_CHARS, keep_lines=True)]
        if found.results:
            lines += ["", "Sources:"]
    elif not found.results:
        lines.append("Try other words.")
    for number, result in enumerate(found.results, 1):
        lines.append(_line(number, result))
    return "\n".join(lines)


def _line(number: int, result: SearchResult) -> str:
    head = f"{number}. {result.title}" + (f" — {result.url}" if result.url else "")
    return head + (f"\n  {result.snippet}" if result.snippet else "")
