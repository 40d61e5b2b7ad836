"""The agent against weak local models (issue 21): replies that repeat a long block or
the system prompt (caught while they stream), replies cut off at the output limit,
servers that report no usage, and interrupted runs that still say what they used.

Over real HTTP against the scripted server; headless exit codes and signals with real
`qwen-code -p` processes."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qwen_code.agent.events import AssistantMessage, Error, Event, TextDelta, TurnEnd
from qwen_code.agent.loop_detection import LoopDetector
from qwen_code.agent.repetition import EchoIndex, find_repetition
from qwen_code.agent.replies import CONTINUE_PROMPT
from qwen_code.agent.stats import SessionStats
from qwen_code.config import Flags, load_settings, qwen_home, resolve_provider
from qwen_code.errors import ExitCode
from qwen_code.llm.tokens import DEFAULT_CHARS_PER_TOKEN, EstimatedUsage, is_estimate
from qwen_code.session.live import Session
from qwen_code.ui.headless import run_headless
from tests.fakeserver import FakeLLM, Turn, text
from tests.helpers import run_qwen_code, session_for


def prose(first: int, count: int) -> str:
    """`count` sentences that never repeat (each names its own numbers)."""
    return "".join(
        f"Step {i} reads file number {i * 7} and checks its entry {i * 13} again. "
        for i in range(first, first + count)
    )


BLOCK = prose(0, 30)  # about 2,000 characters: twice is a loop
MEDIUM = prose(100, 9)  # about 600: three times is a loop, twice is not


def no_usage(turn: Turn) -> Callable[[dict[str, Any]], Turn]:
    """`turn`, from a server that streams no usage (as llama-cpp-python)."""

    def play(body: dict[str, Any]) -> Turn:
        body.pop("stream_options", None)
        return turn

    return play


async def run(session: Session, prompt: str = "go") -> list[Event]:
    try:
        return [event async for event in session.agent.run(prompt)]
    finally:
        await session.aclose()


def end_of(events: list[Event]) -> TurnEnd:
    end = events[-1]
    assert isinstance(end, TurnEnd)
    return end


def sent(fake: FakeLLM, index: int) -> list[dict[str, Any]]:
    body = fake.chat_requests[index].body
    assert body is not None
    return body["messages"]


# --- the detector ----------------------------------------------------------------------


def test_long_blocks_repeated_back_to_back_are_loops() -> None:
    assert len(BLOCK) >= 1500 and 400 <= len(MEDIUM) < 1500
    assert find_repetition("Intro. " + BLOCK * 2 + "tail") == (len("Intro. "), len(BLOCK), 2)
    assert find_repetition("Intro. " + MEDIUM * 3) == (len("Intro. "), len(MEDIUM), 3)
    assert find_repetition("Intro. " + MEDIUM * 2 + "tail") is None
    assert find_repetition(prose(0, 2000)) is None  # 140,000 characters, none repeated
    fenced = f"```\n{BLOCK}```\n```\n{BLOCK}```\n"
    assert find_repetition(fenced) is None  # code is not prose


def test_a_copy_of_the_system_prompt_is_an_echo() -> None:
    system = prose(500, 40)
    index = EchoIndex(system)
    assert index.min_chars == 2000
    reply = "Sure. " + system[100:2500] + " That is all."
    assert index.find(reply) == (6, 6 + 2400)
    assert index.find("Sure. " + system[100:1900]) is None  # too short to count
    short = EchoIndex(system[:1500])  # nine tenths of a short prompt
    assert short.min_chars == 1350
    assert short.find(system[:1400]) == (0, 1400)
    loop = LoopDetector().check_text(reply, system)
    assert loop is not None
    assert loop.kept.startswith("Sure.\n\n[2,400 characters copied from the system prompt")
    assert loop.kept.endswith("That is all.")
    assert "your instructions (the system prompt)" in loop.note


def test_estimated_usage_is_marked_in_the_stats() -> None:
    stats = SessionStats()
    stats.observe(AssistantMessage(text="hi", usage=EstimatedUsage(prompt_tokens=900)))
    assert (stats.estimated, stats.last_estimated, stats.usage.prompt_tokens) == (True, True, 900)


# --- repetition against the server -------------------------------------------------------


async def test_the_system_prompt_twice_is_cut_and_the_turn_goes_on(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(lambda body: text(body["messages"][0]["content"] * 2), text("Done."))
    events = await run(await session_for(tmp_path))
    assert (end_of(events).reason, end_of(events).final_text) == ("completed", "Done.")
    assert [(e.kind, e.retrying) for e in events if isinstance(e, Error)] == [("loop", True)]
    system, history = sent(fake_llm, 0)[0]["content"], sent(fake_llm, 1)
    assert history[-2]["role"] == "assistant"
    assert system[:300] not in history[-2]["content"]
    assert "copied from the system prompt; removed." in history[-2]["content"]
    assert history[-1]["content"].startswith("[Loop warning] ")
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert len(streamed) < 2 * len(system)  # stopped before the second copy ended
    message = next(e for e in events if isinstance(e, AssistantMessage))
    assert message.finish_reason == "repetition"
    assert is_estimate(message.usage)  # a reply cut short has no usage from the server


async def test_a_second_long_loop_ends_the_turn(tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.script(text(BLOCK * 2), text("Again: " + MEDIUM * 4), text("never"))
    events = await run(await session_for(tmp_path))
    end = end_of(events)
    assert end.reason == "error"
    assert (end.error or "").startswith("Stopped: the model kept repeating the same text")
    assert len(fake_llm.chat_requests) == 2
    assert end.final_text.startswith("Again: " + MEDIUM.strip())
    assert end.final_text.endswith("[The same text repeated 3 more times; removed.]")


async def test_a_runaway_reply_is_stopped_while_it_streams(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    """The server would stream the block forever: the agent stops reading after about
    two copies, and the turn goes on."""
    fake_llm.script(Turn(text=BLOCK, forever=True, chunk_delay_s=0.001), text("Short answer."))
    started = time.monotonic()
    events = await run(await session_for(tmp_path))
    assert time.monotonic() - started < 30
    assert end_of(events).final_text == "Short answer."
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert 2 * len(BLOCK) <= len(streamed) < 3 * len(BLOCK)
    kept = sent(fake_llm, 1)[-2]["content"]
    assert kept.count("Step 7 reads file") == 1
    assert kept.endswith("[The same text repeated 1 more time; removed.]")
    assert fake_llm.wait_for_open_connections(0)  # the endless stream ended on the server too


# --- cut off at the output limit ---------------------------------------------------------


async def test_a_reply_cut_off_at_the_limit_is_continued_once(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(text("The answer begins", finish_reason="length"), text(" and ends here."))
    events = await run(await session_for(tmp_path))
    end = end_of(events)
    assert (end.reason, end.final_text) == ("completed", "The answer begins and ends here.")
    assert [(e.kind, e.retrying) for e in events if isinstance(e, Error)] == [("max_tokens", True)]
    history = sent(fake_llm, 1)
    assert [m["role"] for m in history[-2:]] == ["assistant", "user"]
    assert history[-1]["content"] == CONTINUE_PROMPT


async def test_a_continuation_cut_off_again_ends_the_turn(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        text("One", finish_reason="length"), text(" two", finish_reason="length"), text("x")
    )
    events = await run(await session_for(tmp_path))
    end = end_of(events)
    assert (end.reason, end.final_text) == ("error", "One two")
    assert "cut off at the output token limit" in (end.error or "")
    assert [(e.kind, e.retrying) for e in events if isinstance(e, Error)] == [
        ("max_tokens", True),
        ("max_tokens", False),
    ]
    assert len(fake_llm.chat_requests) == 2


@pytest.mark.parametrize("output", ["json", "text"])
def test_headless_reports_a_reply_cut_off_twice(
    tmp_path: Path, fake_llm: FakeLLM, output: str
) -> None:
    fake_llm.script(
        text("Half of", finish_reason="length"), text(" the answer", finish_reason="length")
    )
    done = run_qwen_code(tmp_path, "-p", "explain", "-o", output)
    assert done.returncode == ExitCode.MAX_TOKENS == 56
    assert "↻ The reply was cut off at the output token limit; asking" in done.stderr
    if output == "json":
        result = json.loads(done.stdout)
        assert (result["is_error"], result["subtype"]) == (True, "error_max_tokens")
        assert result["result"] == "Half of the answer"
        assert "cut off at the output token limit" in result["error"]
    else:
        assert done.stdout == "Half of the answer\n"
        assert "qwen-code: error: The reply was cut off at the output token limit" in done.stderr


# --- usage the server did not report ------------------------------------------------------


async def headless(workspace: Path, output_format: str) -> tuple[int, str]:
    settings = load_settings(Flags(yolo=True), cwd=workspace)
    out = io.StringIO()
    code = await run_headless(
        settings,
        resolve_provider(settings),
        "go",
        output_format=output_format,
        cwd=workspace,
        out=out,
        err=io.StringIO(),
        home=qwen_home(),
    )
    return code, out.getvalue()


async def test_usage_a_server_does_not_report_is_estimated_and_marked(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(no_usage(text("Four words of answer.")))
    code, out = await headless(tmp_path, "stream-json")
    assert code == 0
    messages = [json.loads(line) for line in out.splitlines()]
    assistant = next(m for m in messages if m["type"] == "assistant")
    result = messages[-1]
    for usage in (assistant["message"]["usage"], result["usage"]):
        assert usage["estimated"] is True
        assert usage["input_tokens"] > 1000  # the system prompt and the tool schemas
        assert 1 <= usage["output_tokens"] < 20
    fake_llm.script(text("Reported."))
    code, out = await headless(tmp_path, "json")
    assert code == 0
    assert "estimated" not in json.loads(out)["usage"]


async def test_estimates_do_not_calibrate_the_context_budget(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(no_usage(text("An answer.")))
    session = await session_for(tmp_path)
    events = await run(session)
    message = next(e for e in events if isinstance(e, AssistantMessage))
    assert is_estimate(message.usage)
    assert is_estimate(session.agent.usage)
    assert session.agent.budget.chars_per_token == DEFAULT_CHARS_PER_TOKEN


# --- interrupted runs -----------------------------------------------------------------------

SLOW = " ".join(f"word{i}" for i in range(3000))
"""A reply that takes minutes to stream at one word per event (and never repeats)."""


def start_headless(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "qwen_code", "-p", "write", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_reports_the_tokens_it_used(
    tmp_path: Path, fake_llm: FakeLLM, sig: signal.Signals, code: int
) -> None:
    fake_llm.script(text(SLOW, chunk_words=1, chunk_delay_s=0.05))
    proc = start_headless(tmp_path, "-o", "stream-json", "--include-partial-messages")
    assert proc.stdout is not None
    deltas = 0
    while deltas < 5:  # a few words of the reply arrived
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        deltas += '"content_block_delta"' in line
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code
    result = json.loads(out.splitlines()[-1])
    assert result["subtype"] == "error_interrupted"
    usage = result["usage"]
    assert usage["estimated"] is True
    assert usage["input_tokens"] > 1000
    assert usage["output_tokens"] >= 5
    assert "qwen-code: interrupted after using ~" in err


def test_a_budget_stop_mid_reply_reports_the_tokens_it_used(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.script(text(SLOW, chunk_words=1, chunk_delay_s=0.05))
    proc = start_headless(tmp_path, "-o", "json", "--max-wall-time", "2s")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.BUDGET
    result = json.loads(out)
    assert result["subtype"] == "error_max_wall_time"
    assert result["usage"]["estimated"] is True
    assert result["usage"]["input_tokens"] > 1000
    assert result["usage"]["output_tokens"] > 0
