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
- **Text.** A completed reply that contains one stretch of text repeated back to back
  (a unit of `chunk_size` (50) characters or more repeated `chunk_repeats` (10) times, or
  a shorter unit filling as much) outside code blocks. The repeated part is cut from
  the history, the model is told, and the turn goes on; a second text loop in the same
  user message ends the turn.

Everything here is pure bookkeeping; `Agent` decides where the notes go.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from qwen_code.agent.events import ToolCall, ToolResult

_ARGS_SHOWN = 200
_RESULT_LINES = 5
_RESULT_CHARS = 400
_TEXT_SCAN_LIMIT = 200_000
"""Only the last this many characters of a reply are scanned for repetition."""
_FENCE = re.compile(r"^[ \t]*(```|~~~)", re.MULTILINE)


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

    def check_text(self, text: str) -> TextLoop | None:
        """A `TextLoop` when the reply repeated itself (with `stop` set the second time
        in one user message), else None."""
        if not self.enabled or not text:
            return None
        found = find_repetition(text, chunk_size=self.chunk_size, repeats=self.chunk_repeats)
        if found is None:
            return None
        start, period, count = found
        unit = text[start : start + period]
        kept = (
            f"{text[: start + period].rstrip()}\n\n"
            f"[The same text repeated {count - 1} more times; removed.]"
        )
        shown = _one_line(unit, _ARGS_SHOWN)
        note = (
            f"[Loop warning] Your last reply repeated the same text {count} times in a row: "
            f'"{shown}". The repetition was removed from the history. Do not repeat '
            "yourself: continue with the next step, or give a short final answer."
        )
        stop = None
        if self._text_warned:
            stop = Stop(
                reason=(
                    f'Stopped: the model kept repeating the same text ("{_one_line(unit, 80)}") '
                    "even after a warning."
                ),
                result="Not run: the reply repeated itself after a warning; the turn was stopped.",
            )
        self._text_warned = True
        return TextLoop(unit=unit, count=count, kept=kept, note=note, stop=stop)


def find_repetition(
    text: str, *, chunk_size: int = 50, repeats: int = 10
) -> tuple[int, int, int] | None:
    """(start, period, count) of the first stretch where a unit of `period` characters
    repeats back to back, covering at least `repeats` × max(period, chunk_size)
    characters; stretches inside code fences and without letters or digits do not count."""
    offset = max(0, len(text) - _TEXT_SCAN_LIMIT)
    text = text[offset:]
    prose = _prose_mask(text, chunk_size)
    seen: dict[str, list[int]] = {}
    for i in range(len(text) - chunk_size + 1):
        if not prose[i]:
            continue
        window = text[i : i + chunk_size]
        positions = seen.setdefault(window, [])
        positions.append(i)
        if len(positions) < repeats:
            continue
        found = _periodic_run(text, positions, chunk_size, repeats)
        if found is not None:
            start, period, count = found
            return start + offset, period, count
    return None


def _periodic_run(
    text: str, positions: list[int], chunk_size: int, repeats: int
) -> tuple[int, int, int] | None:
    """The whole back-to-back run around the latest occurrences of a window, when they
    are evenly spaced, many enough and the text between them is exactly periodic."""
    period = positions[-1] - positions[-2]
    need = repeats * max(1, -(-chunk_size // period))
    if len(positions) < need or positions[-1] - positions[-need] != period * (need - 1):
        return None
    start, end = positions[-need], positions[-1] + chunk_size
    if text[start + period : end] != text[start : end - period]:
        return None
    while start >= period and text[start - period : start] == text[start : start + period]:
        start -= period
    while text[end : end + period] == text[end - period : end]:
        end += period
    start = _word_start(text, start, period)
    return start, period, (end - start) // period


def _word_start(text: str, start: int, period: int) -> int:
    """The rotation of the repeated unit that starts a word (a sentence, usually)."""
    for index in range(start, start + period):
        if index == 0 or (text[index - 1].isspace() and not text[index].isspace()):
            return index
    return start


def _prose_mask(text: str, chunk_size: int) -> list[bool]:
    """Per position: True outside code fences where the window starting there has a
    letter or digit (a long divider line is no loop)."""
    mask = [True] * len(text)
    fences = [m.start() for m in _FENCE.finditer(text)]
    for opening, closing in zip(fences[::2], [*fences[1::2], len(text)], strict=False):
        mask[opening:closing] = [False] * (closing - opening)
    alnum = [c.isalnum() for c in text]
    last_alnum = len(text) + 1
    for i in range(len(text) - 1, -1, -1):
        if alnum[i]:
            last_alnum = i
        if last_alnum - i >= chunk_size:
            mask[i] = False
    return mask


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
