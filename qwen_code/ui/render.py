"""The REPL's output: every agent event as a few compact lines in the normal scrollback.

Text streams through `MarkdownStream`; a tool call is one line (`● read_file src/app.py`)
with a summary under it (`  ⎿ Read 120 lines`), an edit shows its diff, a shell command
the tail of its output. Nothing is ever redrawn except the transient spinner line and the
markdown tail (with its status line under it), so tmux, SSH and scrollback keep working.
Model text and tool output are always printed as `Text` (never as console markup) and
measured by rich in terminal cells, so CJK and other wide characters line up.
"""

from __future__ import annotations

import re
import time
from typing import Any

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.padding import Padding
from rich.text import Text

from qwen_code.agent.events import (
    ApprovalRequested,
    AssistantMessage,
    Compressed,
    Error,
    Event,
    SubagentEvent,
    TextDelta,
    TodosUpdated,
    ToolCallStarted,
    ToolNotice,
    ToolResult,
    TurnEnd,
    Usage,
)
from qwen_code.llm.tokens import is_estimate
from qwen_code.llm.types import PromptWait
from qwen_code.ui.markdown_stream import MarkdownStream
from qwen_code.ui.subagent_lines import RunningAgents
from qwen_code.ui.terminal import (
    INTERRUPT_HINT,
    NARROW_WIDTH,
    ResponseStatus,
    Symbols,
    Thinking,
    symbols_for,
)

PROCESSING = "Processing the prompt"
"""The spinner's label while a local server processes the prompt."""

__all__ = ["EventRenderer", "Thinking", "clean", "diff_stats", "render_diff", "shell_output"]

SHELL_TAIL_LINES = 10
DIFF_MAX_LINES = 40
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SHELL_TRAILERS = ("[Output truncated:", "If it is a server or watcher", "Processes it started")


def clean(text: str) -> str:
    """Tool output as the terminal would show it, safe to print: no escape sequences, no
    control characters, and of a line rewritten with `\\r` only its last state."""
    text = _ANSI.sub("", text.replace("\r\n", "\n"))
    lines = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    return _CONTROL.sub("", "\n".join(lines))


def render_diff(diff_text: str, *, max_lines: int | None = None, show_headers: bool = True) -> Text:
    """A unified diff coloured for the terminal: + green, - red, @@ and headers dim.
    With `max_lines`, longer diffs end with a "… N more lines" note."""
    lines = clean(diff_text).rstrip("\n").split("\n")
    if not show_headers:
        lines = [line for line in lines if not line.startswith(("--- ", "+++ "))]
    shown = lines if max_lines is None else lines[:max_lines]
    text = Text(no_wrap=False)
    for line in shown:
        if line.startswith(("+++ ", "--- ")):
            style = "bold dim"
        elif line.startswith("@@"):
            style = "cyan dim"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        else:
            style = "dim" if line.startswith("\\") else ""
        text.append(line + "\n", style=style)
    if len(lines) > len(shown):
        text.append(f"… {len(lines) - len(shown)} more lines\n", style="dim italic")
    text.rstrip()
    return text


def diff_stats(diff_text: str) -> tuple[int, int]:
    """Lines added and removed by a unified diff."""
    added = removed = 0
    for line in diff_text.splitlines():
        if line.startswith("+") and not line.startswith("+++ "):
            added += 1
        elif line.startswith("-") and not line.startswith("--- "):
            removed += 1
    return added, removed


def shell_output(output: str) -> tuple[str, list[str]]:
    """The status line (`Exit code: 1`, `Killed: …`) and the output lines of a
    run_shell_command result (its format is `Exit code: N`, `Output:`, the output, notes)."""
    lines = output.split("\n")
    if "Output:" not in lines:
        return (lines[0] if lines else ""), []
    at = lines.index("Output:")
    status = next((line for line in reversed(lines[:at]) if line.strip()), "")
    body = lines[at + 1 :]
    end = next((i for i, line in enumerate(body) if line.startswith(_SHELL_TRAILERS)), len(body))
    body = body[:end]
    while body and not body[-1].strip():
        body.pop()
    return status, ([] if body == ["(no output)"] else body)


class EventRenderer:
    """Prints the agent's events as they come.

    The REPL calls `start_turn()` before a turn, `handle(event)` for each event,
    `pause()` before asking the user anything mid-turn (an approval prompt), and
    `abort()` when the turn is cancelled. A spinner line runs while the model or a tool
    is working and is stopped before anything else is printed."""

    def __init__(
        self, console: Console, *, verbose: bool = False, symbols: Symbols | None = None
    ) -> None:
        self.console, self.verbose = console, verbose
        self.symbols = symbols or symbols_for(console)
        self.thinking = Thinking(console, symbols=self.symbols, hint=INTERRUPT_HINT)
        self._stream: MarkdownStream | None = None
        self._streamed = False  # text deltas came since the last AssistantMessage
        self._last = ""  # what was printed last this turn: "", "text", "call" or "result"
        self._last_call: str | None = None  # the call whose line is right above
        self._labels: dict[str, str] = {}  # call id -> its label, for results printed later
        self._denied: set[str] = set()
        self._approved: set[str] = set()  # calls whose change the user saw when approving
        self._error_shown: str | None = None
        self._in_turn = False
        self._asking = False  # a question is on screen: nothing may redraw below it
        self._label_before_prompt = "Thinking"  # the spinner's label before PROCESSING
        self.agents = RunningAgents()
        self.thinking.details = lambda: self.agents.lines(self.symbols.dot)

    def start_turn(self) -> None:
        self.agents.clear()
        self._asking = False
        self._last, self._last_call, self._error_shown = "", None, None
        self._streamed = False
        self._labels.clear()
        self._denied.clear()
        self._approved.clear()
        self._in_turn = True
        self.thinking.start("Thinking", delay=0.0)

    def handle(self, event: Event) -> None:
        match event:
            case TextDelta(text=text):
                self._text(text)
            case AssistantMessage():
                self._assistant(event)
            case ToolCallStarted():
                self._call_started(event)
            case ToolResult():
                self._tool_result(event)
            case ApprovalRequested():
                self._approval(event)
            case TodosUpdated(todos=todos):
                self._todos(todos)
            case ToolNotice(message=message):
                self._quiet()
                self._line(Text(f"  {message}"), "yellow")
            case Usage() | Compressed():
                self._info(event)
            case Error():
                self._error(event)
            case TurnEnd():
                self._turn_end(event)
            case SubagentEvent():
                self._subagent(event)

    def _info(self, event: Usage | Compressed) -> None:
        match event:
            case Usage(request=request, total=total) if self.verbose:
                self._quiet()
                this, all_ = ("~" if is_estimate(u) else "" for u in (request, total))
                self._line(
                    f"  tokens: {this}{request.prompt_tokens:,} in ({request.cached_tokens:,} "
                    f"cached) {self.symbols.dot} {this}{request.completion_tokens:,} out "
                    f"{self.symbols.dot} {all_}{total.total_tokens:,} this session",
                    "dim",
                )
            case Compressed(before_tokens=before, after_tokens=after, method=method):
                self._quiet()
                how = {
                    "summary": "summarized",
                    "elided": "old tool output elided",
                    "dropped": "oldest turns dropped",
                }[method]
                self._line(f"  Context compressed ({how}): {before:,} → {after:,} tokens", "dim")

    def _subagent(self, event: SubagentEvent) -> None:
        self.agents.update(event)
        if not (self.thinking.running or self._asking or self._stream):
            self._wait("Running", delay=0.0)  # after a subagent's question

    def note(self, line: Text) -> None:
        """A line from outside the turn's own events (a background agent finished)."""
        self._quiet()
        self._line(line)
        self._wait("Running", delay=0.0)

    def prompt_wait(self, wait: PromptWait) -> None:
        """A local server is processing the prompt (`ChatClient.on_prompt_wait`): the
        spinner says so, counting from the request (`Processing the prompt… 25s`), until
        the first chunk comes."""
        if not self.thinking.running or self._asking:
            return
        if wait.done:
            if self.thinking.label == PROCESSING:  # what it said before (a tool may still run)
                self.thinking.label = self._label_before_prompt
        elif self.thinking.label != PROCESSING:
            self._label_before_prompt = self.thinking.label
            self.thinking.start(PROCESSING, delay=0.0)

    def pause(self) -> None:
        """Stop the spinner and print all pending text, e.g. before a prompt."""
        self.thinking.stop()
        self._end_text()
        self._asking = True

    def resume(self) -> None:
        """The question is answered: the spinner may come back (subagents still run)."""
        self._asking = False
        if self.agents:
            self._wait("Running", delay=0.0)

    def abort(self) -> None:
        """The turn was cancelled: print the text so far (rendered as it was shown) and
        stop the spinner."""
        self.thinking.stop()
        self._in_turn = False
        if self._stream is not None:
            self._stream.abort()
            self._stream = None

    # ---- events -----------------------------------------------------------------------

    def _text(self, text: str) -> None:
        if self._stream is None:
            if not text.strip():
                return
            started = self.thinking.started if self.thinking.running else time.monotonic()
            self._quiet()
            self._gap()
            status = ResponseStatus(self.console, started=started, symbols=self.symbols)
            self._stream = MarkdownStream(self.console, status=status)
            self._last, self._last_call = "text", None
        self._streamed = True
        self._stream.update(text)

    def _assistant(self, event: AssistantMessage) -> None:
        self._end_text()
        if event.text.strip() and not self._streamed:  # a server that does not stream
            self._text(event.text)
            self._end_text()
        self._streamed = False
        if event.finish_reason == "length":
            self._quiet()
            self._line("  The response was cut off at the output token limit.", "yellow")

    def _call_started(self, event: ToolCallStarted) -> None:
        self._quiet()
        self._gap()
        call = event.call
        label = clean(event.summary) or ("(invalid arguments)" if call.parse_error else "")
        line = Text.assemble((f"{self.symbols.bullet} ", "cyan"), (call.name, "bold"))
        if label:
            line.append(f" {label}")
        self._line(line)
        self._labels[call.id] = label or call.name
        self._last, self._last_call = "call", call.id
        self._wait("Running", delay=1.0)

    def _tool_result(self, event: ToolResult) -> None:
        self._quiet()
        call = event.call
        if call.id not in self._denied and not (call.name == "todo_write" and not event.is_error):
            if call.name == "run_shell_command" and "Output:" in event.output:
                self._shell_result(event)
            elif event.display and not event.is_error and _is_diff(event.display):
                self._diff_result(event)
            else:
                self._plain_result(event)
        self._last, self._last_call = "result", None
        self._wait("Thinking", delay=0.3)

    def _approval(self, event: ApprovalRequested) -> None:
        if event.decision == "allowed":
            self._approved.add(event.call.id)
            if self.verbose:
                self._quiet()
                self._result(Text(f"approved ({event.reason})", style="dim"), event.call.id)
            self._wait("Running", delay=1.0)
            return
        self._quiet()
        self._denied.add(event.call.id)
        message = clean(event.message).strip()
        self._result(Text(f"Denied: {message}" if message else "Denied", "yellow"), event.call.id)

    def _todos(self, todos: tuple[dict[str, Any], ...]) -> None:
        """A checklist under the call line; long items wrap under their own text."""
        self._quiet()
        elbow = f"  {self.symbols.elbow} "
        marks = {
            "completed": (self.symbols.check, "green", "dim strike"),
            "in_progress": (self.symbols.active, "yellow", "bold"),
        }
        rows: list[Text] = [] if todos else [Text(f"{elbow}(todo list cleared)", "dim")]
        for item in todos:
            mark, mark_style, style = marks.get(
                item.get("status"), (self.symbols.pending, "dim", "")
            )
            head = Text(f"{mark} ", mark_style)
            width = max(self.console.width - cell_len(elbow) - head.cell_len, 10)
            body = Text(clean(str(item.get("content", ""))), style)
            for index, part in enumerate(body.wrap(self.console, width)):
                lead = Text(elbow if not rows else " " * cell_len(elbow))
                rows.append(lead.append_text(head if index == 0 else Text(" " * head.cell_len)))
                rows[-1].append_text(part)
        self._line(Text("\n").join(rows))
        self._last = "result"
        self._wait("Thinking", delay=0.3)

    def _error(self, event: Error) -> None:
        self._quiet()
        message = clean(event.message)
        if event.retrying:
            sym = self.symbols
            if "retrying" not in message.lower():
                message += f" {sym.dot} retrying{sym.ellipsis}"
            self._line(f"  {sym.retry} {message}", "dim", wrap=True)  # the why matters
            self._wait("Thinking", delay=0.0)
        else:
            self._line(Text.assemble(("Error: ", "bold red"), (message, "red")), wrap=True)
            self._error_shown = event.message
        self._last_call = None

    def _turn_end(self, event: TurnEnd) -> None:
        self._quiet()
        self._in_turn = False
        if event.reason == "max_turns":
            self._gap()
            self._line(
                f"Stopped after {event.num_turns} model turns "
                "(--max-session-turns / model.maxSessionTurns).",
                "yellow",
            )
        elif event.reason == "error" and event.error and event.error != self._error_shown:
            self._line(
                Text.assemble(("Error: ", "bold red"), (clean(event.error), "red")), wrap=True
            )
        elif event.reason == "cancelled":
            self._line("Interrupted.", "yellow")

    def _shell_result(self, event: ToolResult) -> None:
        status, body = shell_output(clean(event.output))
        code = event.data.get("exit_code")
        if event.data.get("timed_out") or not status.startswith("Exit code"):
            summary = status.rstrip(".") or "killed"
        else:
            summary = f"exit {code if code is not None else status.split(':')[-1].strip()}"
        count = f"{len(body)} line{'s' if len(body) != 1 else ''}" if body else "no output"
        style = "red" if event.is_error else ""
        self._result(
            Text.assemble((summary, style), (f" {self.symbols.dot} {count}", "dim")), event
        )
        tail = body[-(SHELL_TAIL_LINES * 4 if self.verbose else SHELL_TAIL_LINES) :]
        if len(tail) < len(body):
            tail.insert(0, f"{self.symbols.ellipsis} {len(body) - len(tail)} earlier lines")
        if event.data.get("output_path"):
            tail.append(f"(full output: {event.data['output_path']})")
        if tail:
            self._block(Text("\n".join(tail), style="dim", no_wrap=True, overflow="ellipsis"))

    def _diff_result(self, event: ToolResult) -> None:
        diff = event.display or ""
        added, removed = diff_stats(diff)
        if event.data.get("created"):
            summary = f"Created {self.symbols.dot} {added} line{'s' if added != 1 else ''}"
        else:
            summary = f"Updated {self.symbols.dot} +{added} -{removed}"
        self._result(Text(summary), event)
        if event.call.id in self._approved and not self.verbose:
            return  # the diff was on screen a moment ago, with the question
        limit = DIFF_MAX_LINES * 10 if self.verbose else DIFF_MAX_LINES
        self._block(render_diff(diff, max_lines=limit, show_headers=False))

    def _plain_result(self, event: ToolResult) -> None:
        text = clean(event.output if event.is_error else event.display or event.output).strip()
        lines = text.split("\n") if text else ["(no output)"]
        summary = Text(lines[0], style="red" if event.is_error else "")
        if len(lines) > 1 and not self.verbose:
            summary.append(f" (+{len(lines) - 1} line{'s' if len(lines) > 2 else ''})", "dim")
        self._result(summary, event)
        if self.verbose and len(lines) > 1:
            self._block(
                Text("\n".join(lines[1:20]), style="dim", no_wrap=True, overflow="ellipsis")
            )

    # ---- printing ---------------------------------------------------------------------

    def _result(self, body: Text, source: ToolResult | str | None) -> None:
        """`  ⎿ body` under the call line; under another call's line, named by its label."""
        event = source if isinstance(source, ToolResult) else None
        call_id = event.call.id if event else source
        elbow = f"  {self.symbols.elbow} "
        line = Text(elbow)
        if call_id is not None and call_id != self._last_call and call_id in self._labels:
            line.append(f"{self._labels[call_id]}: ", "dim")
        line.append_text(body)
        if event and event.duration_ms >= 1000 and self.console.width >= NARROW_WIDTH:
            line.append(f" ({event.duration_ms / 1000:.1f}s)", "dim")
        self._line(line)

    def _block(self, renderable: RenderableType) -> None:
        self.console.print(Padding(renderable, (0, 0, 0, 4)))

    def _line(self, text: Text | str, style: str = "", *, wrap: bool = False) -> None:
        line = Text(text, style=style) if isinstance(text, str) else text
        # Passed to print(): rich drops a Text's own no_wrap when print() collects it.
        self.console.print(line, no_wrap=not wrap, overflow=None if wrap else "ellipsis")

    def _gap(self) -> None:
        """A blank line between a turn's items, but not between calls of one batch."""
        if self._last and self._last != "call":
            self.console.print()

    def _quiet(self) -> None:
        """Stop the spinner and finish the text: something else is about to be printed."""
        self.thinking.stop()
        self._end_text()

    def _end_text(self) -> None:
        if self._stream is not None:
            self._stream.finish()
            self._stream = None

    def _wait(self, label: str, *, delay: float) -> None:
        if self._in_turn:
            self.thinking.start(label, delay=delay)


def _is_diff(text: str) -> bool:
    return text.startswith(("--- ", "diff ")) or "\n@@ " in text
