"""Loop detection that steers before it stops.

Two kinds of repetition are watched, within one user message (`reset` starts afresh):

- **Tool calls.** The model asks for exactly the same call (name and arguments, compared
  as canonical JSON; for a response with several calls, the same set in the same order)
  in consecutive responses, with no other call in between. At `repeat_threshold` (3) the
  result of the last repeated call gets a note saying what was repeated and what came
  back; the next repeat gets a reminder; the one after that (`repeat_threshold +
  stop_after_warning`, 5) is not run and the turn ends. Any different call (an edit, a
  test run with other arguments) resets the count, so "run the tests, edit, run the
  tests" is never a loop.
- **Text.** A reply that contains one stretch of text repeated back to back (a unit of
  `chunk_size` (50) characters or more repeated `chunk_repeats` (10) times, or a shorter
  unit filling as much; a block of 400 characters or more three times, of 1,500 or more
  twice) outside code blocks, or that copies 2,000 characters or more of the system
  prompt word for word (see `repetition`). The repeated part is cut from the history,
  the model is told, and the turn goes on; a second text loop in the same user message
  ends the turn. `StreamWatch` looks for the same while the reply streams, so that the
  agent can stop reading a runaway reply instead of waiting for its end.

Everything here is pure bookkeeping; `Agent` decides where the notes go.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from qwen_code.agent.events import ToolCall, ToolResult
from qwen_code.agent.repetition import EchoIndex, find_repetition
from qwen_code.memory import CONTEXT_HEADING

__all__ = ["LoopDetector", "Stop", "StreamWatch", "TextLoop", "find_repetition"]

_ARGS_SHOWN = 200
_RESULT_LINES = 5
_RESULT_CHARS = 400
STREAM_CHECK_CHARS = 1_500
"""A streaming reply is checked for repetition every this many characters (or every
eighth of its length, when that is more: the checks cost linear time in all)."""


@dataclass(frozen=True, slots=True)
class Stop:
    """End the turn: `reason` for the user, `result` for the calls that were not run."""

    reason: str
    result: str


@dataclass(frozen=True, slots=True)
class TextLoop:
    """A reply that repeated itself: `kept` is the reply without the repetition."""

    unit: str
    count: int
    kept: str
    note: str
    stop: Stop | None = None


@dataclass(slots=True)
class LoopDetector:
    enabled: bool = True
    repeat_threshold: int = 3
    stop_after_warning: int = 2
    chunk_size: int = 50
    chunk_repeats: int = 10
    _key: tuple[tuple[str, str], ...] | None = None
    _calls: tuple[ToolCall, ...] = ()
    _count: int = 0
    _outputs: list[tuple[str, ...]] = field(default_factory=list)
    _current: list[str] = field(default_factory=list)
    _text_warned: bool = False
    _echo: EchoIndex | None = field(default=None, repr=False)

    def reset(self) -> None:
        """A new user message: nothing repeated yet."""
        self._key, self._calls, self._count = None, (), 0
        self._outputs.clear()
        self._current.clear()
        self._text_warned = False

    def check_calls(self, calls: tuple[ToolCall, ...]) -> Stop | None:
        """Count this response's calls; a `Stop` when the repetition went on after the
        warning (the calls are then not to be run)."""
        if not self.enabled or not calls:
            self._key, self._count = None, 0
            return None
        key = tuple((call.name, _canonical(call)) for call in calls)
        if key != self._key:
            self._key, self._count = key, 0
            self._outputs.clear()
        self._calls, self._count = calls, self._count + 1
        self._current.clear()
        if self._count < self.repeat_threshold + self.stop_after_warning:
            return None
        what = _describe(calls)
        return Stop(
            reason=(
                f"Stopped: the model kept repeating the same tool call ({what}), "
                f"{self._count} times in a row, even after a warning. Rephrase the request "
                "or give more specific instructions to continue."
            ),
            result=(
                f"Not run: this was call number {self._count} in a row with the same "
                "arguments, after a warning. The turn was stopped."
            ),
        )

    def note_for(self, result: ToolResult) -> str | None:
        """Record a result of the current response; for the response's last call, the
        note to append to its output when the calls were repeated (else None)."""
        if not self.enabled or not self._calls:
            return None
        self._current.append(result.output)
        if result.call.id != self._calls[-1].id:
            return None
        self._outputs.append(tuple(self._current))
        self._current.clear()
        if self._count == self.repeat_threshold:
            return self._warning()
        if self._count > self.repeat_threshold:
            left = self.repeat_threshold + self.stop_after_warning - self._count
            return (
                f"[Loop warning] This is call number {self._count} in a row with the same "
                f"arguments. {_calls_left(left)} will stop the turn. Do something different."
            )
        return None

    def _warning(self) -> str:
        what = _describe(self._calls)
        same = len(set(self._outputs)) == 1
        last = self._outputs[-1][-1] if self._outputs and self._outputs[-1] else ""
        if same:
            seen = f"and the result was the same each time:\n{_excerpt(last)}\n"
            advice = "Repeating the call will not change the result."
        else:
            seen = f"and the result changed between calls; the last one begins:\n{_excerpt(last)}\n"
            advice = (
                "If you are waiting for something, wait longer within one command "
                "(e.g. `sleep 10 && ...`) instead of repeating the call."
            )
        left = _calls_left(self.stop_after_warning)
        return (
            f"[Loop warning] You have made the same tool call ({what}) {self._count} times "
            f"in a row, {seen}{advice} Do something different: use the result you already "
            "have, change the arguments, try another approach, or tell the user what "
            f"blocks you. {left} will stop the turn."
        )

    def check_text(self, text: str, system: str = "") -> TextLoop | None:
        """A `TextLoop` when the reply repeated itself or copied the system prompt
        (`system`) at length (with `stop` set the second time in one user message),
        else None."""
        if not self.enabled or not text:
            return None
        repeated = self._repeated(text)
        echoed = self._echoed(repeated.kept if repeated else text, system)
        found = [f for f in (repeated, echoed) if f is not None]
        if not found:
            return None
        last = found[-1]
        note = " ".join(f.note for f in found)
        note = (
            f"[Loop warning] {note} Do not repeat yourself: continue with the next step, "
            "or give a short final answer."
        )
        stop = None
        if self._text_warned:
            what = " and ".join(f.what for f in found)
            stop = Stop(
                reason=f"Stopped: the model kept repeating {what} even after a warning.",
                result="Not run: the reply repeated itself after a warning; the turn was stopped.",
            )
        self._text_warned = True
        unit, count = found[0].unit, found[0].count
        return TextLoop(unit=unit, count=count, kept=last.kept, note=note, stop=stop)

    def repeats(self, text: str, system: str = "") -> bool:
        """Whether `check_text` would find a loop in `text` (and count nothing)."""
        if not self.enabled or not text:
            return False
        found = find_repetition(text, chunk_size=self.chunk_size, repeats=self.chunk_repeats)
        return found is not None or self._echo_index(system).find(text) is not None

    def _repeated(self, text: str) -> _Found | None:
        found = find_repetition(text, chunk_size=self.chunk_size, repeats=self.chunk_repeats)
        if found is None:
            return None
        start, period, count = found
        unit = text[start : start + period]
        kept = (
            f"{text[: start + period].rstrip()}\n\n"
            f"[The same text repeated {count - 1} more time{'s' * (count != 2)}; removed.]"
        )
        note = (
            f"Your last reply repeated the same text {count} times in a row: "
            f'"{_one_line(unit, _ARGS_SHOWN)}". The repetition was removed from the history.'
        )
        what = f'the same text ("{_one_line(unit, 80)}")'
        return _Found(unit=unit, count=count, kept=kept, note=note, what=what)

    def _echoed(self, text: str, system: str) -> _Found | None:
        spans = self._echo_index(system).spans(text)
        if not spans:
            return None
        parts, last = [], 0
        for start, end in spans:
            marker = f"[{end - start:,} characters copied from the system prompt; removed.]"
            parts += [text[last:start].strip(), marker]
            last = end
        kept = "\n\n".join(part for part in [*parts, text[last:].strip()] if part)
        unit = text[spans[0][0] : spans[0][1]]
        copied = sum(end - start for start, end in spans)
        note = (
            f"Your last reply copied {copied:,} characters of your instructions (the "
            f'system prompt) word for word, beginning "{_one_line(unit, 80)}". The copy '
            "was removed from the history."
        )
        return _Found(unit=unit, count=1, kept=kept, note=note, what="its instructions")

    def _echo_index(self, system: str) -> EchoIndex:
        """The index of the system prompt's own instructions, built once per prompt. The
        user's instruction files (QWEN.md) are left out: quoting them at length is a
        legitimate answer ("show me the project's rules")."""
        own = system.split(CONTEXT_HEADING, 1)[0]
        if self._echo is None or self._echo.source != own:
            self._echo = EchoIndex(own)
        return self._echo


@dataclass(frozen=True, slots=True)
class _Found:
    """One kind of repetition found in a reply, and the reply without it."""

    unit: str
    count: int
    kept: str
    note: str
    what: str


@dataclass(slots=True)
class StreamWatch:
    """Checks a reply for a text loop while it streams (`LoopDetector.repeats`): every
    `STREAM_CHECK_CHARS` characters, or every eighth of the reply's length when that is
    more. Never counts anything: the complete (or cut) reply goes through `check_text`."""

    detector: LoopDetector
    system: str = ""
    _next: int = STREAM_CHECK_CHARS
    _seen: int = 0

    def looping(self, length: int, text: Callable[[], str]) -> bool:
        """True when the reply so far (`length` characters; `text()` gives them) repeats
        itself; checked only when enough arrived since the last check."""
        if length < self._seen:  # the reply started over (a retry)
            self._next = STREAM_CHECK_CHARS
        self._seen = length
        if not self.detector.enabled or length < self._next:
            return False
        self._next = length + max(STREAM_CHECK_CHARS, length // 8)
        return self.detector.repeats(text(), self.system)


def _canonical(call: ToolCall) -> str:
    if call.parse_error:
        return call.raw_arguments
    return json.dumps(call.arguments, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _describe(calls: tuple[ToolCall, ...]) -> str:
    parts = [f"{c.name} with {_one_line(_shown_args(c), _ARGS_SHOWN)}" for c in calls[:3]]
    more = f" and {len(calls) - 3} more" if len(calls) > 3 else ""
    return "; ".join(parts) + more


def _shown_args(call: ToolCall) -> str:
    if call.parse_error:
        return call.raw_arguments
    return json.dumps(call.arguments, ensure_ascii=False)


def _calls_left(n: int) -> str:
    return "One more identical call" if n <= 1 else f"{n} more identical calls"


def _excerpt(output: str) -> str:
    lines = output.strip().splitlines()[:_RESULT_LINES]
    text = "\n".join(f"    {line}" for line in lines)[:_RESULT_CHARS]
    return text or "    (empty)"


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
