"""Finding repetition in a reply's text. Pure functions: `loop_detection` decides what is
done about what they find.

Three shapes count:

- **A short unit back to back**: a unit of `chunk_size` (50) characters or more repeated
  `repeats` (10) times, or a shorter unit filling as much (500 characters).
- **A long block back to back**: a unit of `LONG_UNIT` (400) characters or more repeated
  `LONG_REPEATS` (3) times, or one of `BLOCK_UNIT` (1,500) or more repeated twice: a weak
  model that starts its answer over and over, or writes its instructions out again.
- **An echo of the system prompt** (`EchoIndex`): `ECHO_CHARS` (2,000) characters or more
  copied word for word from it (nine tenths of a shorter prompt, at least
  `MIN_ECHO_CHARS`), as small models do when they "answer" by reciting what they were
  told.

Stretches inside code fences and without letters or digits do not count for the first
two (a repeated code line, a divider); an echo counts wherever it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TEXT_SCAN_LIMIT = 200_000
"""Only the last this many characters of a reply are scanned for repetition."""
LONG_UNIT = 400
LONG_REPEATS = 3
BLOCK_UNIT = 1_500
ECHO_CHARS = 2_000
MIN_ECHO_CHARS = 1_000
FOLLOWING_ECHO_CHARS = 200
"""After one echo, shorter copies count too (the start of the next copy, cut short)."""
ECHO_WINDOW = 50
ECHO_STRIDE = 25
"""An echo is looked for with windows of `ECHO_WINDOW` characters every `ECHO_STRIDE`."""
_FENCE = re.compile(r"^[ \t]*(```|~~~)", re.MULTILINE)
_BLOCK = 256
"""Characters compared at once when measuring how far two stretches agree."""


def copies_needed(period: int) -> int:
    """How many back-to-back copies of a block of `period` characters (`LONG_UNIT` or
    more) make a loop."""
    return 2 if period >= BLOCK_UNIT else LONG_REPEATS


def find_repetition(
    text: str, *, chunk_size: int = 50, repeats: int = 10
) -> tuple[int, int, int] | None:
    """(start, period, count) of the first stretch where a unit of `period` characters
    repeats back to back: covering at least `repeats` × max(period, chunk_size)
    characters, or, for a block of `LONG_UNIT` characters or more, `copies_needed` times.
    Stretches inside code fences and without letters or digits do not count."""
    offset = max(0, len(text) - TEXT_SCAN_LIMIT)
    text = text[offset:]
    prose = _prose_mask(text, chunk_size)
    seen: dict[str, list[int]] = {}
    block = _BlockRun(text, chunk_size)
    for i in range(len(text) - chunk_size + 1):
        if not prose[i]:
            continue
        window = text[i : i + chunk_size]
        positions = seen.setdefault(window, [])
        positions.append(i)
        found = block.step(i, window, positions)
        if found is None and len(positions) >= repeats:
            found = _periodic_run(text, positions, chunk_size, repeats)
        if found is not None:
            start, period, count = found
            return start + offset, period, count
    return None


@dataclass(slots=True)
class _BlockRun:
    """The long period being followed through the text: from window `since` on, each
    window (code fences skipped) was also seen `period` characters before."""

    text: str
    chunk_size: int
    period: int = 0
    since: int = 0

    def step(self, i: int, window: str, positions: list[int]) -> tuple[int, int, int] | None:
        period = self.period
        if period and self.text[i - period : i - period + self.chunk_size] == window:
            return self._complete(i + self.chunk_size)
        self.period = 0
        if len(positions) >= 2 and positions[-1] - positions[-2] >= LONG_UNIT:
            self.period, self.since = positions[-1] - positions[-2], i
        return None

    def _complete(self, end: int) -> tuple[int, int, int] | None:
        """The whole run, once the windows followed cover enough copies (and the text
        between them, fences included, is exactly periodic)."""
        text, period = self.text, self.period
        start = self.since - period
        if end - start < copies_needed(period) * period:
            return None
        if text[start : end - period] != text[start + period : end]:
            self.period = 0
            return None
        end += match_forward(text, end, text, end - period)
        start -= match_backward(text, start, text, start + period)
        start = _word_start(text, start, period)
        return start, period, (end - start) // period


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


def match_forward(a: str, i: int, b: str, j: int) -> int:
    """How many characters `a[i:]` and `b[j:]` agree on from their start."""
    n, limit = 0, min(len(a) - i, len(b) - j)
    while n < limit:
        size = min(_BLOCK, limit - n)
        if a[i + n : i + n + size] != b[j + n : j + n + size]:
            while a[i + n] == b[j + n]:
                n += 1
            return n
        n += size
    return n


def match_backward(a: str, i: int, b: str, j: int) -> int:
    """How many characters `a[:i]` and `b[:j]` agree on from their end."""
    n, limit = 0, min(i, j)
    while n < limit:
        size = min(_BLOCK, limit - n)
        if a[i - n - size : i - n] != b[j - n - size : j - n]:
            while a[i - n - 1] == b[j - n - 1]:
                n += 1
            return n
        n += size
    return n


class EchoIndex:
    """Where each `ECHO_WINDOW`-character window of a source text (the system prompt)
    first occurs, to find a reply that copies a long stretch of it."""

    __slots__ = ("first", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.first: dict[str, int] = {}
        for i in range(len(source) - ECHO_WINDOW + 1):
            self.first.setdefault(source[i : i + ECHO_WINDOW], i)

    @property
    def min_chars(self) -> int:
        """The shortest copy that counts: `ECHO_CHARS`, or nine tenths of a shorter source
        (the whole prompt, nearly), but never under `MIN_ECHO_CHARS`."""
        return max(MIN_ECHO_CHARS, min(ECHO_CHARS, len(self.source) * 9 // 10))

    def find(self, text: str, min_chars: int | None = None) -> tuple[int, int] | None:
        """(start, end) of the first stretch of `text`, `min_chars` (default: the
        `min_chars` property) or longer, that is a word-for-word copy of the source."""
        min_chars = min_chars or self.min_chars
        if min(len(self.source), len(text)) < min_chars:
            return None
        since, shift, source = -1, 0, self.source
        for i in range(0, len(text) - ECHO_WINDOW + 1, ECHO_STRIDE):
            window = text[i : i + ECHO_WINDOW]
            if since >= 0 and source[i - shift : i - shift + ECHO_WINDOW] == window:
                if i + ECHO_WINDOW - since >= min_chars:
                    return self._extent(text, since, since - shift)
                continue
            at = self.first.get(window)
            since, shift = (i, i - at) if at is not None else (-1, 0)
        return None

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Every copied stretch of `text`, when one of them is long enough to count (see
        `find`); those after it count from `FOLLOWING_ECHO_CHARS`. Stretches separated
        by white space only are merged."""
        found: list[tuple[int, int]] = []
        at, least = 0, None
        while (span := self.find(text[at:], least)) is not None:
            start, end = span[0] + at, span[1] + at
            if found and not text[found[-1][1] : start].strip():
                start = found.pop()[0]
            found.append((start, end))
            at, least = end, FOLLOWING_ECHO_CHARS
        return found

    def _extent(self, text: str, start: int, origin: int) -> tuple[int, int]:
        """The whole copied stretch around `text[start]`, a copy of `source[origin]`."""
        back = match_backward(text, start, self.source, origin)
        return start - back, start + match_forward(text, start, self.source, origin)
