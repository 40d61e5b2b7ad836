"""Headless printers: `text`, `json` and `stream-json`, all over the same event stream.

The JSON shapes follow Qwen Code's non-interactive output, which follows the Claude
Agent SDK's messages: `system/init`, `assistant`, `user` (tool results), `result`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from qwen_code.agent.events import (
    ApprovalRequested,
    AssistantMessage,
    Compressed,
    Error,
    Event,
    SideUsage,
    SubagentEvent,
    TextDelta,
    ToolCallStarted,
    ToolNotice,
    ToolResult,
    TurnEnd,
    UsageInfo,
)
from qwen_code.errors import ExitCode
from qwen_code.llm.pricing import PriceTable, cache_creation_tokens, total_cost
from qwen_code.llm.tokens import add_usage, is_estimate
from qwen_code.ui.stream_json_shapes import (
    assistant_message,
    compact_boundary,
    init_message,
    usage_json,
)
from qwen_code.ui.stream_json_shapes import tool_result_message as _user_message


@dataclass(slots=True, kw_only=True)
class RunInfo:
    session_id: str
    model: str
    cwd: str
    tools: list[str]
    permission_mode: str
    version: str
    mcp_servers: list[dict[str, str]] = field(default_factory=list)
    """`{"name", "status"}` per configured MCP server (Claude Code's init shape)."""
    pricing: PriceTable | None = None
    """Token prices for `total_cost_usd` (the session's; default: the built-in table)."""
    server: dict[str, Any] | None = None
    """What a local model server told about itself (`ServerInfo.to_json()`), for `init`."""
    started_at: float = field(default_factory=time.monotonic)


@dataclass(slots=True, kw_only=True)
class Outcome:
    """How the run ended, with everything the `result` message reports."""

    reason: str
    result: str = ""
    num_turns: int = 0
    error: str | None = None
    error_kind: str | None = None
    usage: UsageInfo = field(default_factory=UsageInfo)
    requests: list[UsageInfo] = field(default_factory=list)
    """Usage of each model request, for pricing (tiers depend on each request's size)."""
    api_seconds: float = 0.0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    denials: list[dict[str, Any]] = field(default_factory=list)
    structured_output: dict[str, Any] | None = None
    """`--json-schema`: the accepted `structured_output` call's arguments."""

    @property
    def is_error(self) -> bool:
        return self.reason != "completed"

    @property
    def estimated(self) -> bool:
        """Whether some of `usage` is qwen-code's estimate (the server reported none)."""
        return any(is_estimate(u) for u in self.requests)

    @property
    def cut_off(self) -> bool:
        """The run ended on a reply cut off at the output token limit."""
        return self.reason == "error" and self.error_kind in MAX_TOKENS_KINDS

    @property
    def subtype(self) -> str:
        if self.cut_off:
            return "error_max_tokens"
        return _SUBTYPES.get(self.reason, "error_during_execution")

    def exit_code(self) -> int:
        if self.reason == "completed":
            return ExitCode.OK
        if self.reason == "max_turns":
            return ExitCode.MAX_TURNS
        if self.reason in BUDGET_REASONS:
            return ExitCode.BUDGET
        if self.reason == "cancelled":
            return ExitCode.INTERRUPTED
        if self.cut_off:
            return ExitCode.MAX_TOKENS
        return ExitCode.AUTH if self.error_kind == "auth" else ExitCode.ERROR

    def count_unreported(self, usages: list[UsageInfo]) -> None:
        """Add the estimated usage of requests cut short, which no event reported
        (`Agent.take_unreported`): an interrupted run still says what it used."""
        for usage in usages:
            self.usage = add_usage(self.usage, usage)
            self.requests.append(usage)


BUDGET_REASONS = frozenset({"max_budget_usd", "max_wall_time", "max_tool_calls"})
MAX_TOKENS_KINDS = frozenset({"max_tokens", "output_limit"})
"""Error kinds of a reply cut off at the output limit (`finish_reason: length` twice, or
a reply the client stopped far past the limit)."""
_SUBTYPES = {
    "completed": "success",
    "max_turns": "error_max_turns",
    "cancelled": "error_interrupted",
    "max_budget_usd": "error_max_budget_usd",
    "max_wall_time": "error_max_wall_time",
    "max_tool_calls": "error_max_tool_calls",
    "structured_output_retries": "error_max_structured_output_retries",
}


class Recorder:
    """Collects what the result message needs while events go by."""

    def __init__(self) -> None:
        self.outcome = Outcome(reason="error")
        self._calls: dict[str, dict[str, Any]] = {}

    def observe(self, event: Event) -> None:
        if isinstance(event, SubagentEvent | SideUsage):
            self._subagent(event)
            return
        match event:
            case ToolCallStarted(call=call):
                entry = {"id": call.id, "name": call.name, "arguments": call.arguments}
                self._calls[call.id] = entry
                self.outcome.tool_calls.append(entry)
            case ToolResult(call=call, is_error=is_error):
                self._calls.get(call.id, {})["is_error"] = is_error
            case ApprovalRequested(call=call, decision="denied"):
                self.outcome.denials.append(
                    {"tool_name": call.name, "tool_use_id": call.id, "tool_input": call.arguments}
                )
            case AssistantMessage(usage=usage) if usage is not None:
                self.outcome.usage = add_usage(self.outcome.usage, usage)
                self.outcome.requests.append(usage)
            case Error(message=message, kind=kind, retrying=False):
                self.outcome.error, self.outcome.error_kind = message, kind
            case TurnEnd(reason=reason, final_text=text, num_turns=turns, error=error):
                self.outcome.reason, self.outcome.result = reason, text
                self.outcome.num_turns = turns
                self.outcome.error = error or self.outcome.error

    def _subagent(self, event: SubagentEvent | SideUsage) -> None:
        """A subagent's requests (and a tool's own) count in the run's usage and cost, its
        refusals in the denials; its tool calls are its own."""
        inner = event.innermost()[1] if isinstance(event, SubagentEvent) else event
        match inner:
            case AssistantMessage(usage=usage) | SideUsage(usage=usage) if usage is not None:
                self.outcome.usage = add_usage(self.outcome.usage, usage)
                self.outcome.requests.append(usage)
            case ApprovalRequested(call=call, decision="denied"):
                self.outcome.denials.append(
                    {"tool_name": call.name, "tool_use_id": call.id, "tool_input": call.arguments}
                )


class Printer(Protocol):
    def start(self, info: RunInfo) -> None: ...
    def event(self, event: Event) -> None: ...
    def finish(self, info: RunInfo, outcome: Outcome) -> None: ...


def cost_usd(info: RunInfo, outcome: Outcome) -> float | None:
    """What the run's requests cost at `info.model`'s prices; None when unknown."""
    cost = total_cost(info.model, outcome.requests, info.pricing).cost_usd
    return None if cost is None else round(cost, 8)


def result_message(info: RunInfo, outcome: Outcome) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "result",
        "subtype": outcome.subtype,
        "uuid": str(uuid.uuid4()),
        "session_id": info.session_id,
        "is_error": outcome.is_error,
        "duration_ms": int((time.monotonic() - info.started_at) * 1000),
        "duration_api_ms": int(outcome.api_seconds * 1000),
        "num_turns": outcome.num_turns,
        "result": outcome.result,
        "model": info.model,
        "usage": usage_json(
            outcome.usage,
            sum(cache_creation_tokens(u) for u in outcome.requests),
            estimated=outcome.estimated,
        ),
        "total_cost_usd": cost_usd(info, outcome),
        "tool_calls": outcome.tool_calls,
        "permission_denials": outcome.denials,
    }
    if outcome.error:
        message["error"] = outcome.error
    if outcome.structured_output is not None:  # Claude Code's name, and Qwen Code's
        message["structured_output"] = message["structured_result"] = outcome.structured_output
    return message


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False)


INTERRUPTED_REASONS = frozenset({"cancelled", "max_wall_time"})
"""Runs stopped in the middle (Ctrl-C, SIGTERM, --max-wall-time): text mode prints the
answer so far."""


class TextPrinter:
    """The final answer on stdout; on stderr, retries always and, when it is a terminal,
    one line per tool call and a transient status line (`StatusLine`). A run interrupted
    mid-answer prints what had been answered so far (`AnswerSoFar`). `structured`: a
    `--json-schema` run, whose stdout is the object or nothing."""

    def __init__(
        self,
        out: IO[str],
        err: IO[str],
        *,
        progress: bool | None = None,
        structured: bool = False,
    ) -> None:
        self.out, self.err = out, err
        self.progress = err.isatty() if progress is None else progress
        self.structured = structured
        self.answer = AnswerSoFar()
        self.status: StatusLine | None = None

    def start(self, info: RunInfo) -> None:
        if self.progress:
            self.status = StatusLine(self.err, started=info.started_at)
            self.status.start()

    def event(self, event: Event) -> None:
        self.answer.observe(event)
        if isinstance(event, Error) and event.retrying:
            # Always (also when stderr is a log file): a slow run should say why.
            self._note(f"  ↻ {event.message}")
            return
        if isinstance(event, ToolNotice):
            self._note(f"qwen-code: {event.message}")
            return
        if self.status is not None:
            self.status.observe(event, self.answer)
        if not self.progress:
            return
        if isinstance(event, SubagentEvent):
            node, inner = event.innermost()
            if isinstance(inner, ToolCallStarted):
                self._note(f"  ↳ {node.agent}: {inner.call.name} {inner.summary}".rstrip())
            return
        match event:
            case ToolCallStarted(call=call, summary=summary):
                self._note(f"● {call.name} {summary}".rstrip())
            case ToolResult(is_error=True, output=output):
                self._note(f"  ✗ {output.strip().splitlines()[0][:200] if output.strip() else ''}")
            case Compressed(before_tokens=before, after_tokens=after):
                self._note(f"  context compressed: {before:,} → {after:,} tokens")

    def _note(self, line: str) -> None:
        if self.status is not None:
            self.status.clear()
        self.err.write(line + "\n")
        self.err.flush()
        if self.status is not None:
            self.status.draw()

    def finish(self, info: RunInfo, outcome: Outcome) -> None:
        if self.status is not None:
            self.status.stop()
        answer = outcome.result.rstrip("\n")
        if not answer and outcome.reason in INTERRUPTED_REASONS and not self.structured:
            answer = self.answer.text.rstrip()  # cut mid-sentence: no dangling space
        if answer.strip():
            self.out.write(answer + "\n")
            self.out.flush()
        for line in summary_lines(outcome, info):
            self.err.write(line + "\n")
        self.err.flush()


CHARS_PER_TOKEN = 4
"""For the status line's count of a reply still streaming (its usage comes at the end)."""


class AnswerSoFar:
    """The main agent's answer as far as it went: the reply streaming now, else the last
    complete one. A retry that starts the reply over voids what had streamed."""

    __slots__ = ("_parts", "chars", "last")

    def __init__(self) -> None:
        self._parts: list[str] = []
        self.chars = 0
        """Characters of the reply streaming now."""
        self.last = ""

    def observe(self, event: Event) -> None:
        match event:
            case TextDelta(text=text):
                self._parts.append(text)
                self.chars += len(text)
            case AssistantMessage(text=text):
                self.last = text
                self._parts.clear()
                self.chars = 0
            case Error(retrying=True):
                self._parts.clear()
                self.chars = 0

    @property
    def text(self) -> str:
        return "".join(self._parts) if self._parts else self.last


GLYPHS = ("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏", "…", "·", "↓")
"""The spinner's frames, the ellipsis, the separator and the arrow of the status line."""
ASCII_GLYPHS = ("|/-\\", "...", "-", "v")
"""The same for a terminal that cannot show them (not UTF-8)."""
TICK_S = 0.1
"""How often the status line is redrawn (its spinner and seconds)."""
ERASE = "\r\x1b[2K"


class StatusLine:
    """A transient line at the bottom of a terminal stderr: `⠋ Working… 12s · ↓ 340 tokens`,
    or the tool being run (`⠋ run_shell_command pytest · 12s · ↓ 340 tokens`).

    Redrawn in place by a task on the event loop (every `TICK_S`), cut to the terminal's
    width so it never wraps, erased before any other line is written (`clear`) and for
    good by `stop`. The cursor is left at the start of the line, so that whatever else
    writes to the terminal (a log warning) writes over it rather than after it."""

    def __init__(self, err: IO[str], *, started: float) -> None:
        self.err, self.started = err, started
        self.tokens = 0
        """Output tokens of the replies that ended (the main agent's and subagents')."""
        self.streaming = 0
        """Estimated tokens of the reply streaming now."""
        self._running: dict[str, str] = {}
        """The tool calls running now (call id: label), in the order they started."""
        self._frame = 0
        self._shown = False
        self._task: asyncio.Task[None] | None = None
        encoding = (getattr(err, "encoding", None) or "utf-8").lower().replace("-", "")
        self._glyphs = GLYPHS if encoding.startswith("utf") else ASCII_GLYPHS

    def start(self) -> None:
        self.draw()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: drawn on events only
            return
        self._task = loop.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self._frame += 1
            self.draw()

    def observe(self, event: Event, answer: AnswerSoFar) -> None:
        """Follow the run: tokens as they stream, tools as they start and end."""
        self.streaming = -(-answer.chars // CHARS_PER_TOKEN)
        if isinstance(event, SubagentEvent):
            node, inner = event.innermost()
            prefix = f"{node.agent}: "
        else:
            inner, prefix = event, ""
        match inner:
            case AssistantMessage(usage=usage) if usage is not None:
                self.tokens += usage.completion_tokens
            case ToolCallStarted(call=call, summary=summary):
                self._running[call.id] = f"{prefix}{call.name} {summary}".strip()
                self.draw()
            case ToolResult(call=call):
                self._running.pop(call.id, None)
                self.draw()

    def text(self) -> str:
        frames, ellipsis, dot, arrow = self._glyphs
        tool = next(reversed(self._running.values()), None)
        label = f"Working{ellipsis}" if tool is None else f"{tool} {dot}"
        seconds = int(time.monotonic() - self.started)
        line = f"{frames[self._frame % len(frames)]} {label} {seconds}s"
        tokens = self.tokens + self.streaming
        return f"{line} {dot} {arrow} {tokens:,} tokens" if tokens else line

    def draw(self) -> None:
        line = fit(_CONTROL.sub(" ", self.text()), _width(self.err) - 1)
        self._write(f"{ERASE}{line}\r")
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self._write(ERASE)
            self._shown = False

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.clear()

    def _write(self, data: str) -> None:
        try:
            self.err.write(data)
            self.err.flush()
        except (OSError, ValueError):  # the terminal went away: the run goes on
            pass


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def fit(line: str, width: int) -> str:
    """`line` cut to `width` terminal cells (wide characters count two)."""
    cells = 0
    for index, char in enumerate(line):
        cells += 2 if unicodedata.east_asian_width(char) in "WF" else 1
        if cells > width:
            return line[:index]
    return line


def _width(stream: IO[str]) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):
        return 80


def summary_lines(outcome: Outcome, info: RunInfo) -> list[str]:
    """What the user must know after a headless run, beyond the answer."""
    lines = []
    if outcome.denials and info.permission_mode == "yolo":
        names = ", ".join(sorted({d["tool_name"] for d in outcome.denials}))
        lines.append(
            f"qwen-code: {len(outcome.denials)} tool call(s) were denied ({names}): even in "
            "yolo mode, ask rules, deny rules and running a command outside the sandbox need "
            "an interactive session (or --sandbox off, to run commands unsandboxed)."
        )
    elif outcome.denials and info.permission_mode == "plan":
        names = ", ".join(sorted({d["tool_name"] for d in outcome.denials}))
        lines.append(
            f"qwen-code: {len(outcome.denials)} tool call(s) were refused ({names}): plan mode "
            "runs only read-only tools, whatever the allow rules; rerun without "
            "--approval-mode plan to make changes."
        )
    elif outcome.denials:
        names = ", ".join(sorted({d["tool_name"] for d in outcome.denials}))
        lines.append(
            f"qwen-code: {len(outcome.denials)} tool call(s) were denied ({names}): they need "
            f"approval in {info.permission_mode!r} mode. Allow them with --yolo, "
            + ("" if info.permission_mode == "auto-edit" else "--approval-mode auto-edit (edits), ")
            + "or --allowed-tools RULE (e.g. 'Bash(npm test)'); protected paths and ask rules "
            "need an interactive session."
        )
    if outcome.reason == "max_turns":
        lines.append(
            f"qwen-code: stopped after {outcome.num_turns} model turns "
            "(--max-session-turns / model.maxSessionTurns)."
        )
    elif outcome.reason == "cancelled":
        lines.append(f"qwen-code: interrupted{_used(outcome)}.")
    elif outcome.error:
        lines.append(f"qwen-code: error: {outcome.error}")
    return lines


def _used(outcome: Outcome) -> str:
    """` after using ~N tokens`: what an interrupted run had used, when anything."""
    total = outcome.usage.total_tokens
    if not total:
        return ""
    return f" after using {'~' if outcome.estimated else ''}{total:,} tokens"


class JsonPrinter:
    """One JSON object at the end (the `result` message)."""

    def __init__(self, out: IO[str], err: IO[str]) -> None:
        self.out, self.err = out, err

    def start(self, info: RunInfo) -> None:
        pass

    def event(self, event: Event) -> None:
        if isinstance(event, Error) and event.retrying:  # stdout holds only the result
            self.err.write(f"  ↻ {event.message}\n")
            self.err.flush()
        elif isinstance(event, ToolNotice):
            self.err.write(f"qwen-code: {event.message}\n")
            self.err.flush()

    def finish(self, info: RunInfo, outcome: Outcome) -> None:
        self.out.write(_dump(result_message(info, outcome)) + "\n")
        self.out.flush()
        for line in summary_lines(outcome, info):
            self.err.write(line + "\n")


class StreamJsonPrinter:
    """One JSON message per line as things happen. `sink`: where each message goes
    instead of a line on `out` (the in-process API and the stream-json input loop)."""

    def __init__(
        self,
        out: IO[str],
        err: IO[str],
        *,
        partial: bool = False,
        sink: Callable[[dict[str, Any]], None] | None = None,
        summary: bool = True,
    ) -> None:
        self.out, self.err, self.partial, self.sink = out, err, partial, sink
        self.summary = summary  # `finish` adds the run's notes (denials, errors) on stderr
        self.info: RunInfo | None = None
        self._streaming = False

    def _emit(self, obj: dict[str, Any]) -> None:
        if self.info is not None:
            obj.setdefault("session_id", self.info.session_id)
        if self.sink is not None:
            self.sink(obj)
            return
        self.out.write(_dump(obj) + "\n")
        self.out.flush()

    def start(self, info: RunInfo) -> None:
        self.info = info
        self._emit(init_message(info, server=info.server))

    def event(self, event: Event) -> None:
        if isinstance(event, SubagentEvent):
            self._subagent(event)
            return
        match event:
            case TextDelta(text=text) if self.partial:
                self._partial_text(text)
            case AssistantMessage():
                self._end_partial()
                self._emit(assistant_message(event, self.info))
            case ToolResult(call=call, output=output, is_error=is_error):
                block = {
                    "type": "tool_result",
                    "tool_use_id": call.id,
                    "content": output,
                    "is_error": is_error,
                }
                self._emit(_user_message(block))
            case Error(message=message, kind=kind, retrying=True):
                self._emit(
                    {"type": "system", "subtype": "api_retry", "error": kind, "message": message}
                )
            case Compressed():
                self._emit(compact_boundary(event))
            case ToolNotice(message=message, level=level):
                self._emit(
                    {"type": "system", "subtype": "notice", "level": level, "message": message}
                )

    def _subagent(self, event: SubagentEvent) -> None:
        """A subagent's messages, marked with the `agent` call they belong to
        (`parent_tool_use_id`), as Claude Code marks its Task tool's."""
        node, inner = event.innermost()
        match inner:
            case AssistantMessage():
                message = assistant_message(inner, self.info)
            case ToolResult(call=call, output=output, is_error=is_error):
                message = _user_message(
                    {
                        "type": "tool_result",
                        "tool_use_id": call.id,
                        "content": output,
                        "is_error": is_error,
                    }
                )
            case _:
                return
        message["parent_tool_use_id"] = node.parent_call_id
        self._end_partial()
        self._emit(message)

    def _partial_text(self, text: str) -> None:
        if not self._streaming:
            self._streaming = True
            self._stream_event({"type": "message_start", "message": {"role": "assistant"}})
            self._stream_event(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                }
            )
        self._stream_event(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text},
            }
        )

    def _end_partial(self) -> None:
        if self._streaming:
            self._stream_event({"type": "content_block_stop", "index": 0})
            self._stream_event({"type": "message_stop"})
            self._streaming = False

    def _stream_event(self, event: dict[str, Any]) -> None:
        self._emit(
            {
                "type": "stream_event",
                "uuid": str(uuid.uuid4()),
                "parent_tool_use_id": None,
                "event": event,
            }
        )

    def finish(self, info: RunInfo, outcome: Outcome) -> None:
        self._end_partial()
        self._emit(result_message(info, outcome))
        for line in summary_lines(outcome, info) if self.summary else ():
            self.err.write(line + "\n")


def printer_for(
    output_format: str,
    *,
    out: IO[str],
    err: IO[str],
    partial: bool = False,
    structured: bool = False,
) -> Printer:
    """The printer for `-o text|json|stream-json`, writing results to `out` and notes to
    `err`. `structured`: a `--json-schema` run."""
    if output_format == "json":
        return JsonPrinter(out, err)
    if output_format == "stream-json":
        return StreamJsonPrinter(out, err, partial=partial)
    return TextPrinter(out, err, structured=structured)
