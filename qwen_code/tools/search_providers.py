"""Web search providers behind one interface, for the `web_search` tool.

`SearchProvider.search(query, limit)` returns a `Found`: results (title, URL, snippet)
and, for DashScope, the searching model's answer. Four providers speak their own wire
formats over HTTP (httpx, imported when a search runs):

- DashScope's built-in search: an OpenAI-compatible chat request to a Qwen model with
  `enable_search: true` (what Qwen Code uses with a DashScope key); the sources come from
  `search_info.search_results` when the answer carries them.
- Tavily: `POST {base}/search`, key as `Authorization: Bearer`.
- Brave: `GET {base}/res/v1/web/search?q=&count=`, key as `X-Subscription-Token`.
- SearXNG: `GET {base}/search?q=&format=json` (the instance must allow the JSON format).

Which ones may be used comes from the settings (`webSearch.provider`, Qwen Code's
shape), the environment (`TAVILY_API_KEY`, `BRAVE_API_KEY`, `SEARXNG_URL`) and the
session's own model endpoint when it is DashScope (`available`). A key from the
environment or the session goes only to its provider's own host: an entry that sets
another `baseUrl` must carry its own `apiKey`. Errors are `SearchError`s that name the
provider and never show a key.
"""

from __future__ import annotations

import html
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from qwen_code.tools.base import ToolError

if TYPE_CHECKING:
    from qwen_code.settings_model import WebSearchProvider, WebSearchSettings

PROVIDER_TYPES = ("dashscope", "tavily", "brave", "searxng")
TAVILY_URL = "https://api.tavily.com"
BRAVE_URL = "https://api.search.brave.com"
DASHSCOPE_SEARCH_MODEL = "qwen-plus"
"""A DashScope model that takes `enable_search` (the coder models do not)."""
ENV_KEYS = {"tavily": "TAVILY_API_KEY", "brave": "BRAVE_API_KEY", "searxng": "SEARXNG_URL"}
"""The variable that turns each provider on (a key; SearXNG: the instance's URL)."""
SNIPPET_CHARS = 400
ANSWER_CHARS = 4_000
_TAG = re.compile(r"<[^>]{0,200}>")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class SearchResult:
    title: str
    url: str
    snippet: str = ""


@dataclass(frozen=True, slots=True)
class Found:
    """What one search returned."""

    results: tuple[SearchResult, ...]
    answer: str = ""
    """A model's answer (DashScope), shown before the sources."""
    usage: Any = None
    """The searching model's `UsageInfo` (DashScope), counted in the session's usage."""
    model: str = ""


class SearchError(ToolError):
    """A search that failed: the message names the provider and what to do."""


class SearchProvider(ABC):
    """One search engine. `key_source` names where the key came from, for error messages."""

    type: ClassVar[str]
    label: ClassVar[str]
    default_url: ClassVar[str] = ""

    def __init__(
        self, *, api_key: str = "", base_url: str = "", key_source: str = "", timeout_s: float = 30
    ) -> None:
        self.api_key = api_key.strip()
        self.base_url = (base_url or self.default_url).strip().rstrip("/")
        self.key_source = key_source
        self.timeout_s = timeout_s

    @abstractmethod
    async def search(self, query: str, limit: int) -> Found:
        """Up to `limit` results for `query`; raises `SearchError`."""

    def redact(self, text: str) -> str:
        """`text` without this provider's key (nor a password in its URL)."""
        secrets = [self.api_key, urlsplit(self.base_url).password or ""]
        for secret in secrets:
            if len(secret) >= 4:
                text = text.replace(secret, f"[redacted {self.label} key]")
        return text

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The provider's JSON answer; every failure becomes a clear `SearchError`."""
        import httpx

        url = self.base_url + path
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.request(
                    method, url, params=params, json=body, headers=headers
                )
        except httpx.TimeoutException as exc:
            raise self._error(f"no answer within {self.timeout_s:g} s (webSearch.timeout)") from exc
        except (httpx.HTTPError, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
            raise self._error(f"cannot reach {_shown(url)}: {reason}") from exc
        if response.status_code >= 400:
            raise self._error(self._status_problem(response.status_code, response.text))
        try:
            return response.json()
        except ValueError as exc:
            kind = response.headers.get("content-type", "no content type")
            raise self._error(
                f"the answer is not JSON (HTTP {response.status_code}, {kind})"
            ) from exc

    def _error(self, problem: str) -> SearchError:
        return SearchError(self.redact(f"web_search ({self.label}): {problem}."))

    def _list(self, data: Any, *path: str) -> list[Any]:
        return list_at(data, path, self._error)

    def _status_problem(self, status: int, body: str) -> str:
        if status in (401, 403):
            where = f"; check {self.key_source}" if self.key_source else ""
            return (
                f"the request was refused (HTTP {status}): the API key is missing or wrong{where}"
            )
        if status == 429:
            return "rate limit or quota reached (HTTP 429); try again later"
        if status >= 500:
            return f"the service failed (HTTP {status}); try again later"
        detail = clean(body, 200)
        return f"HTTP {status}" + (f": {detail}" if detail else "")


class TavilySearch(SearchProvider):
    type, label, default_url = "tavily", "Tavily", TAVILY_URL

    async def search(self, query: str, limit: int) -> Found:
        body = {"query": query, "max_results": limit}
        headers = {"Authorization": f"Bearer {self.api_key}"}
        data = await self._request("POST", "/search", body=body, headers=headers)
        items = self._list(data, "results")
        return Found(_results(items, limit, snippet="content"), answer=_text(data, "answer"))


class BraveSearch(SearchProvider):
    type, label, default_url = "brave", "Brave", BRAVE_URL

    async def search(self, query: str, limit: int) -> Found:
        params = {"q": query, "count": str(limit)}
        headers = {"X-Subscription-Token": self.api_key, "Accept": "application/json"}
        data = await self._request("GET", "/res/v1/web/search", params=params, headers=headers)
        if isinstance(data, dict) and "web" not in data:
            return Found(())  # Brave leaves `web` out when nothing matched
        return Found(_results(self._list(data, "web", "results"), limit, snippet="description"))


class SearxngSearch(SearchProvider):
    type, label = "searxng", "SearXNG"

    async def search(self, query: str, limit: int) -> Found:
        params = {"q": query, "format": "json"}
        data = await self._request("GET", "/search", params=params)
        return Found(_results(self._list(data, "results"), limit, snippet="content"))

    def _status_problem(self, status: int, body: str) -> str:
        if status == 403:
            return (
                "the instance refused the JSON API (HTTP 403); allow it with "
                "`search: formats: [html, json]` in its settings.yml"
            )
        return super()._status_problem(status, body)


class DashScopeSearch(SearchProvider):
    """A Qwen model with `enable_search`: its answer, and its sources when it gives them."""

    type, label = "dashscope", "DashScope"

    def __init__(self, *, model: str = DASHSCOPE_SEARCH_MODEL, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model

    async def search(self, query: str, limit: int) -> Found:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": _dashscope_prompt(query)}],
            "stream": False,
            "enable_search": True,
            "search_options": {"forced_search": True, "enable_source": True},
        }
        headers = {"Authorization": f"Bearer {self.api_key}"}
        data = await self._request("POST", "/chat/completions", body=body, headers=headers)
        choices = self._list(data, "choices")
        first = choices[0] if choices else None
        message = first.get("message") if isinstance(first, dict) else None
        answer = clean(_text(message, "content"), ANSWER_CHARS, keep_lines=True)
        sources = _search_results(data, message)
        results = _results(sources, limit, snippet="site_name")
        if not results and not answer:
            raise self._error("the answer had neither text nor sources")
        return Found(results, answer=answer, usage=_usage(data), model=self.model)


def _dashscope_prompt(query: str) -> str:
    return (
        f"Search the web for: {query}\n"
        "Answer in a few sentences with the key facts, naming the sources you used."
    )


def _search_results(data: Any, message: Any) -> list[Any]:
    """`search_info.search_results` wherever the answer puts it (top level, `output`,
    the message), else []."""
    for holder in (data, data.get("output") if isinstance(data, dict) else None, message):
        info = holder.get("search_info") if isinstance(holder, dict) else None
        found = info.get("search_results") if isinstance(info, dict) else None
        if isinstance(found, list):
            return found
    return []


def _usage(data: Any) -> Any:
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return None
    from qwen_code.llm.stream import read_usage

    return read_usage(usage)


# --- reading answers ------------------------------------------------------------------------


def list_at(data: Any, path: tuple[str, ...], error: Any) -> list[Any]:
    """The list at `path` in `data`, or `error(problem)` raised."""
    node = data
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, list):
        raise error(f"unexpected answer: no `{'.'.join(path)}` list")
    return node


def _results(items: list[Any], limit: int, *, snippet: str) -> tuple[SearchResult, ...]:
    found = []
    for item in items:
        if not isinstance(item, dict):
            continue
        url = _text(item, "url").strip()
        title = clean(_text(item, "title"), 200) or url
        if url or title:
            found.append(SearchResult(title, url, clean(_text(item, snippet), SNIPPET_CHARS)))
        if len(found) == limit:
            break
    return tuple(found)


def _text(data: Any, key: str) -> str:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


def clean(text: str, cap: int, *, keep_lines: bool = False) -> str:
    """`text` without HTML tags and entities, spaces collapsed, cut to `cap` characters."""
    text = html.unescape(_TAG.sub("", text))
    if keep_lines:
        text = "\n".join(_SPACE.sub(" ", line).strip() for line in text.strip().splitlines())
    else:
        text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= cap else text[: cap - 1].rstrip() + "…"


def _shown(url: str) -> str:
    """`url` without a password or query string, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


# --- which providers the settings allow -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The session's model endpoint (DashScope's search uses its key and base URL)."""

    base_url: str
    api_key: str
    is_dashscope: bool


_CLASSES: dict[str, type[SearchProvider]] = {
    "tavily": TavilySearch,
    "brave": BraveSearch,
    "searxng": SearxngSearch,
    "dashscope": DashScopeSearch,
}


def available(
    settings: WebSearchSettings,
    env: Mapping[str, str],
    endpoint: Endpoint | None = None,
    *,
    region: str = "intl",
) -> tuple[list[SearchProvider], list[str]]:
    """The providers that can be used, in order (settings entries, then the environment,
    then the session's DashScope endpoint), and a note for each entry that cannot."""
    timeout_s = settings.timeout / 1000
    providers: list[SearchProvider] = []
    notes: list[str] = []
    for index, entry in enumerate(settings.provider):
        made = _from_entry(entry, index, env, endpoint, region=region, timeout_s=timeout_s)
        if isinstance(made, str):
            notes.append(made)
        else:
            providers.append(made)
    taken = {p.type for p in providers} | {e.type.strip().lower() for e in settings.provider}
    for kind, variable in ENV_KEYS.items():
        value = env.get(variable, "").strip()
        if value and kind not in taken:
            key, url = ("", value) if kind == "searxng" else (value, "")
            cls = _CLASSES[kind]
            providers.append(
                cls(api_key=key, base_url=url, key_source=variable, timeout_s=timeout_s)
            )
    if "dashscope" not in taken and _searchable_dashscope(endpoint):
        assert endpoint is not None
        providers.append(_session_dashscope(endpoint, timeout_s))
    return providers, notes


def _from_entry(
    entry: WebSearchProvider,
    index: int,
    env: Mapping[str, str],
    endpoint: Endpoint | None,
    *,
    region: str,
    timeout_s: float,
) -> SearchProvider | str:
    """The provider a `webSearch.provider` entry describes, or why it cannot be used."""
    where = f"webSearch.provider[{index}]"
    kind = entry.type.strip().lower()
    if kind not in _CLASSES:
        return f"{where}: type {entry.type!r} is not supported (use {', '.join(PROVIDER_TYPES)})"
    if kind == "dashscope":
        return _entry_dashscope(entry, where, env, endpoint, region=region, timeout_s=timeout_s)
    variable = ENV_KEYS[kind]
    value = env.get(variable, "").strip()
    if kind == "searxng":
        url = entry.base_url or value
        if not url:
            return f"{where}: searxng needs baseUrl (the instance's URL) or {variable}"
        return SearxngSearch(base_url=url, timeout_s=timeout_s)
    cls = _CLASSES[kind]
    key, source = entry.api_key or "", f"{where}.apiKey"
    if not key and value:
        if entry.base_url and _host(entry.base_url) != _host(cls.default_url):
            return f"{where}: {kind} with its own baseUrl needs its own apiKey ({variable} {_ONLY})"
        key, source = value, variable
    if not key:
        return f"{where}: {kind} needs apiKey or {variable}"
    return cls(api_key=key, base_url=entry.base_url or "", key_source=source, timeout_s=timeout_s)


_ONLY = "goes only to the provider's own host"


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _entry_dashscope(
    entry: WebSearchProvider,
    where: str,
    env: Mapping[str, str],
    endpoint: Endpoint | None,
    *,
    region: str,
    timeout_s: float,
) -> SearchProvider | str:
    """DashScope: the entry's key and URL, else the session's DashScope endpoint, else
    DASHSCOPE_API_KEY and the region's URL."""
    from qwen_code.config import DASHSCOPE_URLS
    from qwen_code.llm.dashscope import is_dashscope

    session = endpoint if endpoint is not None and endpoint.is_dashscope else None
    key, source = entry.api_key or "", f"{where}.apiKey"
    if not key and entry.base_url and not is_dashscope(entry.base_url):
        return f"{where}: dashscope with a non-DashScope baseUrl needs its own apiKey"
    if not key and session is not None:
        key, source = session.api_key, "the session's DashScope key"
    if not key:
        key, source = env.get("DASHSCOPE_API_KEY", "").strip(), "DASHSCOPE_API_KEY"
    if not key:
        return f"{where}: dashscope needs apiKey, DASHSCOPE_API_KEY or a DashScope session"
    url = entry.base_url or (session.base_url if session else "")
    url = url or DASHSCOPE_URLS.get(region, DASHSCOPE_URLS["intl"])
    return DashScopeSearch(
        api_key=key,
        base_url=url,
        key_source=source,
        timeout_s=timeout_s,
        model=entry.model or DASHSCOPE_SEARCH_MODEL,
    )


def _searchable_dashscope(endpoint: Endpoint | None) -> bool:
    """A DashScope session with a key, not on the Coding Plan (which has no search)."""
    if endpoint is None or not endpoint.is_dashscope or len(endpoint.api_key) < 8:
        return False
    return not (urlsplit(endpoint.base_url).hostname or "").startswith("coding")


def _session_dashscope(endpoint: Endpoint, timeout_s: float) -> SearchProvider:
    return DashScopeSearch(
        api_key=endpoint.api_key,
        base_url=endpoint.base_url,
        key_source="the session's DashScope key",
        timeout_s=timeout_s,
    )


def choose(providers: list[SearchProvider], default: str | None) -> SearchProvider | None:
    """`webSearch.default`'s provider, else the first; None when there is none."""
    if not providers:
        return None
    if not default:
        return providers[0]
    wanted = default.strip().lower()
    chosen = next((p for p in providers if p.type == wanted), None)
    if chosen is None:
        names = ", ".join(p.type for p in providers)
        raise SearchError(
            f"web_search: webSearch.default is {default!r}, but no such provider is "
            f"configured (configured: {names})."
        )
    return chosen


NO_PROVIDER = """web_search: no search provider is configured. Set one of:
  TAVILY_API_KEY=tvly-...          Tavily
  BRAVE_API_KEY=...                the Brave Search API
  SEARXNG_URL=https://searx.host   a SearXNG instance (with its JSON format on)
or in settings.json: {"webSearch": {"provider": [{"type": "tavily", "apiKey": "tvly-..."}]}}
(types: dashscope, tavily, brave, searxng). A DashScope model provider (DASHSCOPE_API_KEY)
searches with DashScope's built-in search."""
