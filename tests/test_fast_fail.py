"""A model server that cannot be reached fails at once with a clear message.

A port on this machine where nothing listens, and a host name that never resolves
(`.invalid`, RFC 6761: it fails without a network too), are not transient: no retries,
no backoff, one message saying what to check. Real transient failures (a dropped
stream, 5xx, 429, timeouts) are still retried: see test_llm_robustness.py. The checks
count attempts and notices, never seconds.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from qwen_code.agent.events import Error, TurnEnd
from qwen_code.errors import ExitCode
from qwen_code.llm import retry
from qwen_code.llm.transport_errors import ConnectionFailed
from qwen_code.llm.types import RetryNotice
from tests.helpers import output, repl_in, run_qwen_code, session_for
from tests.llm_helpers import failure, make_config

INVALID_HOST = "no-such-host.invalid"
INVALID_URL = f"https://{INVALID_HOST}/v1"
UNRESOLVED = f"the host {INVALID_HOST} could not be resolved (check the base URL or your network)"


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: bound, read, closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def closed_url() -> str:
    return f"http://127.0.0.1:{closed_port()}/v1"


def refused(url: str) -> str:
    return f"Cannot reach the model server: {url} refused the connection (is the server running?)."


def real_refusal() -> ConnectionFailed:
    """A `ConnectionFailed` raised from a real refused connection (as the transport
    raises it from httpx's error)."""
    try:
        try:
            socket.create_connection(("127.0.0.1", closed_port()), timeout=5).close()
        except ConnectionRefusedError as exc:
            raise ConnectionFailed("Connection error.") from exc
    except ConnectionFailed as failed:
        return failed
    raise AssertionError("the closed port accepted a connection")


# --- the client -------------------------------------------------------------------------


async def test_a_refused_local_port_fails_without_retries(closed_url: str) -> None:
    error, items = await failure(closed_url)
    assert error.kind == "network" and not error.retryable
    assert error.message == refused(closed_url)
    assert str(error) == error.message  # no second line repeating the advice
    assert [i for i in items if isinstance(i, RetryNotice)] == []


@pytest.mark.parametrize("host", ["localhost", "[::1]", "127.0.0.2"])
def test_every_loopback_name_counts_as_this_machine(host: str) -> None:
    assert retry.is_loopback(f"http://{host}:8000/v1")


@pytest.mark.parametrize("host", ["10.0.0.5", "gpu-box", "dashscope.aliyuncs.com"])
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not retry.is_loopback(f"http://{host}:8000/v1")


async def test_an_unresolvable_host_fails_without_retries() -> None:
    error, items = await failure(INVALID_URL)
    assert error.kind == "network"
    assert error.message == f"Cannot reach the model server: {UNRESOLVED}."
    # a resolver that is down (EAI_AGAIN) may get one quick retry; a name that does not
    # exist gets none. Which one a sandbox without DNS answers is not ours to choose.
    assert len([i for i in items if isinstance(i, RetryNotice)]) <= 1


def test_a_refused_remote_port_gets_a_short_retry() -> None:
    """A host on the network that refuses may be restarting: a few quick retries."""
    url = "http://10.0.0.5:8000/v1"
    config = make_config(url)
    found = retry.classify(real_refusal(), config)
    assert found.error.message == refused(url)
    assert found.retryable and found.max_retries == retry.REFUSED_RETRIES
    assert retry.retry_limit(found, config) == retry.REFUSED_RETRIES
    assert retry.retry_delay(found, 3, config) <= retry.QUICK_RETRY_S
    assert retry.should_retry(found, retry.REFUSED_RETRIES - 1, config)
    assert not retry.should_retry(found, retry.REFUSED_RETRIES, config)
    assert retry.gave_up(found, retry.REFUSED_RETRIES, 1.0).message == refused(url)


def test_a_resolver_that_is_down_gets_one_quick_retry() -> None:
    config = make_config(INVALID_URL)
    again = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    try:
        raise ConnectionFailed("Connection error.") from again
    except ConnectionFailed as failed:
        found = retry.classify(failed, config)
    assert found.error.message == f"Cannot reach the model server: {UNRESOLVED}."
    assert retry.retry_limit(found, config) == 1
    assert retry.retry_delay(found, 0, config) <= retry.QUICK_RETRY_S


def test_a_connect_timeout_is_still_retried_as_before() -> None:
    config = make_config("http://10.0.0.5:8000/v1")
    try:
        raise ConnectionFailed("Connection error.") from TimeoutError("timed out")
    except ConnectionFailed as failed:
        found = retry.classify(failed, config)
    assert found.retryable and found.max_retries is None
    assert retry.retry_limit(found, config) == config.max_retries


# --- headless and the REPL --------------------------------------------------------------


@pytest.mark.parametrize("output_format", ["text", "json"])
def test_headless_run_against_a_closed_port(
    tmp_path: Path, closed_url: str, output_format: str
) -> None:
    env = _env(closed_url)
    result = run_qwen_code(tmp_path, "-p", "hi", "-o", output_format, env=env)
    assert result.returncode == ExitCode.ERROR
    assert refused(closed_url) in result.stderr
    assert "↻" not in result.stderr and "Retrying" not in result.stderr
    assert "Traceback" not in result.stderr
    if output_format == "json":
        report = json.loads(result.stdout)
        assert report["subtype"] == "error_during_execution"
        assert report["error"] == refused(closed_url)
    else:
        assert result.stdout == ""


def test_headless_run_against_an_unresolvable_host(tmp_path: Path) -> None:
    result = run_qwen_code(tmp_path, "-p", "hi", env=_env(INVALID_URL))
    assert result.returncode == ExitCode.ERROR
    assert f"qwen-code: error: Cannot reach the model server: {UNRESOLVED}." in result.stderr
    assert result.stderr.count("↻") <= 1  # see test_an_unresolvable_host_fails_without_retries
    assert "Traceback" not in result.stderr


async def test_the_agent_reports_one_error_event(
    tmp_path: Path, closed_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What every front end (the REPL, ACP, the SDK) gets: one final Error, no retries."""
    monkeypatch.setenv("OPENAI_BASE_URL", closed_url)
    session = await session_for(tmp_path)
    try:
        events = [event async for event in session.run("hi")]
    finally:
        await session.aclose()
    errors = [e for e in events if isinstance(e, Error)]
    assert [(e.message, e.kind, e.retrying) for e in errors] == [
        (refused(closed_url), "network", False)
    ]
    assert isinstance(events[-1], TurnEnd) and events[-1].reason == "error"


async def test_the_repl_shows_the_message_once(
    project: Path, closed_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", closed_url)
    async with repl_in(project) as (repl, _):
        await repl.send("hi")
        shown = output(repl)
    assert shown.count("refused the connection (is the server running?)") == 1
    assert "Retrying" not in shown


def _env(base_url: str) -> dict[str, str]:
    return {**os.environ, "OPENAI_BASE_URL": base_url}
