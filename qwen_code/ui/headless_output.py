"""Headless printers: `text`, `json` and `stream-json`, all over the same event stream.

The JSON shapes follow Qwen Code's non-interactive output, which follows the Claude
Agent SDK's messages: `system/init`, `assistant`, `user` (tool results), `result`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import IO, Any, Protocol

from qwen_code.agent.events import (
    AssistantMessage,
    Compressed,
    Error,
    Event,
    SubagentEvent,
    TextDelta,
    ToolCallStarted,
    ToolNotice,
    ToolResult,
)
from qwen_code.llm.pricing import cache_creation_tokens, total_cost
from qwen_code.ui.headless_outcome import Outcome, RunInfo
from qwen_code.ui.headless_status import AnswerSoFar, StatusLine
from qwen_code.ui.stream_json_shapes import (
    assistant_message,
    compact_boundary,
    init_message,
    usage_json,
)
from qwen_code.ui.stream_json_shapes import tool_result_message as _user_message


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
