"""`web_search`: each provider's wire format against a fake search server on 127.0.0.1
(DashScope chat/completions with `enable_search`, Tavily, Brave, SearXNG), the clear
message when none is configured, provider errors, where keys may go, and a session in
which the scripted model searches and the results reach its next request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from qwen_code.credentials import Credentials, child_environment
from qwen_code.settings_model import WebSearchSettings
from qwen_code.tools.base import ToolContext, ToolError, ToolOutput
from qwen_code.tools.events import PROGRESS, SideUsage
from qwen_code.tools.registry import ValidCall, builtin_registry
from qwen_code.tools.search_providers import Endpoint, available
from qwen_code.tools.web_search import CONFIG_KEY, SearchConfig
from tests.fakeserver import FakeLLM, call, text, tool_turn
from tests.helpers import bodies, git_init, session_for, write_json

KEY = "search-key-0123456789"
"""The provider key the tests configure: it must never show up in any output."""


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeSearch:
    """One HTTP server speaking the four providers' wire formats. `answers[path]` replaces
    the canned answer for a path with `(status, body bytes, content type)`; a path in
    `hang` gets no answer until the server stops."""

    seen: list[Seen] = field(default_factory=list)
    answers: dict[str, tuple[int, bytes, str]] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)
    results: int = 3
    released: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._serve(self, None)

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                fake._serve(self, json.loads(self.rfile.read(size) or b"null"))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        serve = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        serve.start()

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def _serve(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        headers = {k.lower(): v for k, v in handler.headers.items()}
        self.seen.append(Seen(handler.command, parts.path, query, headers, body))
        if parts.path in self.hang:
            self.released.wait(30)
            return
        status, payload, kind = self.answers.get(parts.path) or (
            200,
            json.dumps(self._canned(parts.path, query)).encode(),
            "application/json",
        )
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _canned(self, path: str, query: dict[str, str]) -> Any:
        items = [
            {"title": f"Result {n}", "url": f"https://example.org/{n}", "text": f"About {n}."}
            for n in range(1, self.results + 1)
        ]
        if path == "/search" and query.get("format") == "json":  # SearXNG
            return {"results": [{**i, "content": i["text"]} for i in items]}
        if path == "/search":  # Tavily
            return {"query": "q", "results": [{**i, "content": i["text"]} for i in items]}
        if path == "/res/v1/web/search":  # Brave: snippets carry HTML
            described = [
                {**i, "description": f"<strong>{i['text']}</strong> &amp; more"} for i in items
            ]
            return {"type": "search", "web": {"results": described}}
        if path == "/compatible-mode/v1/chat/completions":  # DashScope
            sources = [{"index": 1, "title": "Python 3.13", "url": "https://python.org/3.13"}]
            return {
                "choices": [{"message": {"role": "assistant", "content": "Python 3.13 is out."}}],
                "search_info": {"search_results": sources},
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
            }
        return {"error": f"unknown path {path}"}


@pytest.fixture
def search() -> Iterator[FakeSearch]:
    fake = FakeSearch()
    yield fake
    fake.stop()


def context(
    root: Path, env: dict[str, str] | None = None, endpoint: Endpoint | None = None, **settings: Any
) -> ToolContext:
    """A tool context whose session settings are `webSearch = settings` (camelCase keys)."""
    ctx = ToolContext(workspace=_workspace(root))
    config = WebSearchSettings.model_validate(settings)
    ctx.state[CONFIG_KEY] = SearchConfig(settings=config, endpoint=endpoint, env=env or {})
    return ctx


def _workspace(root: Path) -> Any:
    from qwen_code.tools.workspace import Workspace

    return Workspace(root=root)


async def search_with(ctx: ToolContext, query: str = "python release") -> ToolOutput:
    checked = builtin_registry().validate("web_search", {"query": query})
    assert isinstance(checked, ValidCall), checked
    return await checked.tool.run(checked.params, ctx)


async def failure(ctx: ToolContext, query: str = "python release") -> str:
    with pytest.raises(ToolError) as caught:
        await search_with(ctx, query)
    message = str(caught.value)
    assert KEY not in message
    return message


# --- each provider's wire format --------------------------------------------------------------


async def test_tavily(search: FakeSearch, root: Path) -> None:
    entry = {"type": "tavily", "apiKey": KEY, "baseUrl": search.url}
    out = await search_with(context(root, provider=[entry]), "python 3.13 release")
    [seen] = search.seen
    assert (seen.method, seen.path) == ("POST", "/search")
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.body == {"query": "python 3.13 release", "max_results": 5}
    lines = out.content.splitlines()
    assert lines[0] == 'Web search via Tavily for "python 3.13 release": 3 results.'
    assert lines[1:3] == ["1. Result 1 — https://example.org/1", "  About 1."]
    assert "3. Result 3 — https://example.org/3" in lines
    assert KEY not in out.content and not out.is_error
    assert out.data == {"provider": "tavily", "results": 3}


async def test_brave(search: FakeSearch, root: Path) -> None:
    entry = {"type": "brave", "apiKey": KEY, "baseUrl": search.url}
    out = await search_with(context(root, provider=[entry], maxResults=2))
    [seen] = search.seen
    assert (seen.method, seen.path) == ("GET", "/res/v1/web/search")
    assert seen.query == {"q": "python release", "count": "2"}
    assert seen.headers["x-subscription-token"] == KEY
    assert out.content.startswith('Web search via Brave for "python release": 2 results.')
    assert "1. Result 1 — https://example.org/1\n  About 1. & more" in out.content
    assert "<strong>" not in out.content and "Result 3" not in out.content


async def test_brave_with_no_matches(search: FakeSearch, root: Path) -> None:
    search.answers["/res/v1/web/search"] = (200, b'{"type": "search"}', "application/json")
    entry = {"type": "brave", "apiKey": KEY, "baseUrl": search.url}
    out = await search_with(context(root, provider=[entry]))
    assert out.content == 'Web search via Brave for "python release": no results.\nTry other words.'


async def test_searxng_from_the_environment(search: FakeSearch, root: Path) -> None:
    search.results = 12
    out = await search_with(context(root, {"SEARXNG_URL": search.url + "/"}, maxResults=10))
    [seen] = search.seen
    assert (seen.method, seen.path) == ("GET", "/search")
    assert seen.query == {"q": "python release", "format": "json"}
    assert out.content.startswith('Web search via SearXNG for "python release": 10 results.')
    assert "10. Result 10" in out.content and "Result 11" not in out.content


async def test_dashscope_built_in_search(search: FakeSearch, root: Path) -> None:
    base = search.url + "/compatible-mode/v1"
    entry = {"type": "dashscope", "apiKey": KEY, "baseUrl": base}
    usage: list[Any] = []
    token = PROGRESS.set(usage.append)
    try:
        out = await search_with(context(root, provider=[entry]), "python 3.13")
    finally:
        PROGRESS.reset(token)
    [seen] = search.seen
    assert (seen.method, seen.path) == ("POST", "/compatible-mode/v1/chat/completions")
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.body["model"] == "qwen-plus"
    assert seen.body["enable_search"] is True
    assert seen.body["search_options"] == {"forced_search": True, "enable_source": True}
    assert "python 3.13" in seen.body["messages"][-1]["content"]
    assert out.content.splitlines() == [
        'Web search via DashScope for "python 3.13": 1 result.',
        "",
        "Answer:",
        "Python 3.13 is out.",
        "",
        "Sources:",
        "1. Python 3.13 — https://python.org/3.13",
    ]
    [side] = usage
    assert isinstance(side, SideUsage) and side.model == "qwen-plus"
    assert side.usage.prompt_tokens == 100


async def test_dashscope_answer_without_sources(search: FakeSearch, root: Path) -> None:
    reply = {"choices": [{"message": {"content": "It rained in Hangzhou."}}]}
    path = "/compatible-mode/v1/chat/completions"
    search.answers[path] = (200, json.dumps(reply).encode(), "application/json")
    endpoint = Endpoint(search.url + "/compatible-mode/v1", KEY, is_dashscope=True)
    out = await search_with(context(root, endpoint=endpoint), "weather hangzhou")
    assert search.seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert out.content == (
        'Web search via DashScope for "weather hangzhou": an answer without sources.\n\n'
        "Answer:\nIt rained in Hangzhou."
    )


# --- choosing a provider ----------------------------------------------------------------------


def test_which_providers_are_available() -> None:
    env = {"TAVILY_API_KEY": KEY, "BRAVE_API_KEY": KEY, "SEARXNG_URL": "https://searx.test"}
    session = Endpoint("https://dashscope-intl.aliyuncs.com/compatible-mode/v1", KEY, True)
    providers, notes = available(WebSearchSettings(), env, session)
    assert [p.type for p in providers] == ["tavily", "brave", "searxng", "dashscope"]
    assert providers[0].base_url == "https://api.tavily.com" and notes == []
    # the Coding Plan has no search; another server is not DashScope
    for base, dashscope in (
        ("https://coding-intl.dashscope.aliyuncs.com/v1", True),
        ("http://127.0.0.1:8000/v1", False),
    ):
        assert available(WebSearchSettings(), {}, Endpoint(base, KEY, dashscope)) == ([], [])


async def test_default_picks_the_provider(search: FakeSearch, root: Path) -> None:
    entries = [
        {"type": "tavily", "apiKey": KEY, "baseUrl": search.url},
        {"type": "brave", "apiKey": KEY, "baseUrl": search.url},
    ]
    out = await search_with(context(root, provider=entries, default="brave"))
    assert out.content.startswith("Web search via Brave")
    message = await failure(context(root, provider=entries, default="searxng"))
    assert "webSearch.default is 'searxng'" in message and "tavily, brave" in message


async def test_no_provider_says_what_to_set(root: Path) -> None:
    ctx = context(root, provider=[{"type": "google", "apiKey": KEY}, {"type": "brave"}])
    message = await failure(ctx)
    for needed in ("TAVILY_API_KEY", "BRAVE_API_KEY", "SEARXNG_URL", '"webSearch"', "dashscope"):
        assert needed in message
    assert "webSearch.provider[0]: type 'google' is not supported" in message
    assert "webSearch.provider[1]: brave needs apiKey or BRAVE_API_KEY" in message
    # a bare context (no session) reads the process environment only
    bare = ToolContext(workspace=_workspace(root))
    assert "no search provider is configured" in await failure(bare)


async def test_a_users_key_goes_only_to_the_providers_own_host(
    search: FakeSearch, root: Path
) -> None:
    """An entry that points elsewhere (a project's settings, say) cannot take the key from
    the environment or the session with it."""
    env = {"TAVILY_API_KEY": KEY}
    message = await failure(
        context(root, env, provider=[{"type": "tavily", "baseUrl": search.url}])
    )
    assert "needs its own apiKey" in message
    session = Endpoint("https://dashscope.aliyuncs.com/compatible-mode/v1", KEY, True)
    entry = {"type": "dashscope", "baseUrl": search.url}
    message = await failure(context(root, endpoint=session, provider=[entry], default="dashscope"))
    assert "non-DashScope baseUrl needs its own apiKey" in message
    assert search.seen == []


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "kind", "expected"),
    [
        (401, b'{"detail": "bad key"}', "application/json", "HTTP 401"),
        (429, b"{}", "application/json", "rate limit or quota reached (HTTP 429)"),
        (503, b"down", "text/plain", "the service failed (HTTP 503)"),
        (
            200,
            b"<html>not json</html>",
            "text/html",
            "the answer is not JSON (HTTP 200, text/html)",
        ),
        (200, b'{"nothing": []}', "application/json", "unexpected answer: no `results` list"),
        (400, f"bad request for {KEY}".encode(), "text/plain", "HTTP 400: bad request for"),
    ],
)
async def test_provider_errors_are_clear(
    search: FakeSearch, root: Path, status: int, body: bytes, kind: str, expected: str
) -> None:
    search.answers["/search"] = (status, body, kind)
    message = await failure(
        context(root, provider=[{"type": "tavily", "apiKey": KEY, "baseUrl": search.url}])
    )
    assert message.startswith("web_search (Tavily): ")
    assert expected in message
    if status == 401:
        assert "check webSearch.provider[0].apiKey" in message


async def test_searxng_without_the_json_format(search: FakeSearch, root: Path) -> None:
    search.answers["/search"] = (403, b"Forbidden", "text/html")
    message = await failure(context(root, {"SEARXNG_URL": search.url}))
    assert message.startswith("web_search (SearXNG): the instance refused the JSON API")
    assert "formats: [html, json]" in message


async def test_timeout_and_unreachable(search: FakeSearch, root: Path) -> None:
    search.hang.add("/search")
    entry = {"type": "tavily", "apiKey": KEY, "baseUrl": search.url}
    message = await failure(context(root, provider=[entry], timeout=200))
    assert message == "web_search (Tavily): no answer within 0.2 s (webSearch.timeout)."
    entry = {"type": "searxng", "baseUrl": "http://user:pw-secret@127.0.0.1:9"}
    message = await failure(context(root, provider=[entry]))
    assert message.startswith("web_search (SearXNG): cannot reach http://127.0.0.1:9/search")
    assert "pw-secret" not in message


@pytest.mark.parametrize(("query", "problem"), [(" a ", "at least 2"), ("x" * 401, "under 400")])
async def test_bad_queries(root: Path, query: str, problem: str) -> None:
    assert problem in await failure(context(root), query)


# --- keys stay out of commands and output -------------------------------------------------------


def test_search_keys_are_credentials() -> None:
    env = {"PATH": "/bin", "TAVILY_API_KEY": KEY, "BRAVE_API_KEY": "brave-key-987654"}
    assert child_environment(env) == {"PATH": "/bin"}
    redacted = Credentials.collect(env).redact(f"{KEY} brave-key-987654")
    assert redacted == "[redacted TAVILY_API_KEY] [redacted BRAVE_API_KEY]"


def test_provider_settings_need_a_trusted_folder(tmp_path: Path) -> None:
    from qwen_code.config import load_settings

    repo = tmp_path / "cloned"
    repo.mkdir()
    git_init(repo)
    entry = {"type": "tavily", "apiKey": "k", "baseUrl": "http://evil.test"}
    write_json(
        repo / ".qwen" / "settings.json", {"webSearch": {"provider": [entry], "maxResults": 3}}
    )
    settings = load_settings(cwd=repo, env={"QWEN_HOME": str(tmp_path / "qwen-home")})
    assert settings.web_search.provider == [] and settings.web_search.max_results == 3
    assert settings.untrusted_keys == ["webSearch.provider"]


# --- a session ------------------------------------------------------------------------------------


def saved_files(home: Path) -> list[Path]:
    """The session's transcript files (and anything else it saved under $QWEN_HOME)."""
    return [p for p in home.rglob("*") if p.is_file() and p.name != "settings.json"]


def _user_settings(search: FakeSearch) -> None:
    import os

    entry = {"type": "tavily", "apiKey": KEY, "baseUrl": search.url}
    write_json(
        Path(os.environ["QWEN_HOME"]) / "settings.json", {"webSearch": {"provider": [entry]}}
    )


async def test_the_model_searches_and_reads_the_results(
    fake_llm: FakeLLM, search: FakeSearch, project: Path
) -> None:
    _user_settings(search)
    fake_llm.script(tool_turn(call("web_search", query="qwen3 coder news")), text("Found it."))
    session = await session_for(project, approval_mode="yolo")
    try:
        events = [event async for event in session.run("What is new with Qwen3-Coder?")]
    finally:
        await session.aclose()
    assert search.seen[0].body["query"] == "qwen3 coder news"
    first, second = bodies(fake_llm)
    assert "web_search" in [t["function"]["name"] for t in first["tools"]]
    [result] = [m for m in second["messages"] if m["role"] == "tool"]
    assert result["content"].startswith('Web search via Tavily for "qwen3 coder news": 3 results.')
    assert "1. Result 1 — https://example.org/1" in result["content"]
    assert KEY not in json.dumps(bodies(fake_llm)) and KEY not in repr(events)
    saved = saved_files(session.home)
    assert any(p.suffix == ".jsonl" for p in saved)
    # Bytes: checkpoints keep a git repository (compressed objects) there too.
    assert not [p for p in saved if KEY.encode() in p.read_bytes()]


async def test_headless_default_mode_does_not_search_unasked(
    fake_llm: FakeLLM, search: FakeSearch, project: Path
) -> None:
    _user_settings(search)
    fake_llm.script(tool_turn(call("web_search", query="private plans")), text("ok"))
    session = await session_for(project)
    try:
        _ = [event async for event in session.run("search")]
    finally:
        await session.aclose()
    assert search.seen == []
    [result] = [m for m in bodies(fake_llm)[1]["messages"] if m["role"] == "tool"]
    assert "Web search via" not in result["content"]
    assert "The web_search call was not run: it needs approval" in result["content"]
