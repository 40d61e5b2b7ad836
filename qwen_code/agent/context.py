"""The context budget: how many tokens the next request will take, and whether it fits.

The server's usage is the truth: after each response, `prompt_tokens + completion_tokens`
covers every message up to and including that response. The next request is estimated
as that figure plus a character-based estimate of the messages added since; before the
first response (or after the history was rewritten) everything is estimated, tool
schemas included. The chars-per-token ratio starts at a conservative 3.5 and is then
calibrated from the server's own counts (a little on the safe side).

Limits, for a known window W: compress before a request that would exceed
`threshold × W` (automatic compression; threshold 0 turns it off), and never send one
that would exceed `W − reserve`, where the reserve leaves room for the reply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qwen_code.agent.events import CompressionReason, UsageInfo
from qwen_code.llm.tokens import (
    DEFAULT_CHARS_PER_TOKEN,
    MESSAGE_OVERHEAD_TOKENS,
    content_image_tokens,
    estimate_tokens,
    message_chars,
    message_tokens,
    parse_overflow,
    schema_chars,
)

Message = dict[str, Any]

__all__ = ["DEFAULT_CHARS_PER_TOKEN", "estimate_tokens", "message_tokens", "schema_chars"]

CALIBRATION_SAFETY = 0.9
"""The learned ratio is shrunk by this factor so estimates err on the high side."""
MIN_CALIBRATION_TOKENS = 256
"""Usage below this is dominated by template overhead and not used for calibration."""
DEFAULT_OUTPUT_RESERVE = 8192
TOOL_OUTPUT_SHARE = 0.25
"""The largest share of the window one tool result may take in the history."""


@dataclass(frozen=True, slots=True)
class Targets:
    """Token levels a compression aims for.

    goal: what compressing old history should reach (leaves room to work before the
    next compression); limit: the most a compressed history may take without cutting
    into the current turn; ceiling: the most any request may take.
    """

    goal: int
    limit: int
    ceiling: int


@dataclass(slots=True, kw_only=True)
class ContextBudget:
    """Token accounting for one conversation against the model's context window."""

    window: int | None = None
    """Tokens the model accepts; None when unknown (then only overflow errors compress)."""
    threshold: float = 0.7
    """Compress before a request above this share of the window; 0 turns it off."""
    max_output_tokens: int | None = None
    """The request's max_tokens, when set: the room kept free for the reply."""
    chars_per_token: float = DEFAULT_CHARS_PER_TOKEN
    _anchor_messages: list[Message] | None = field(default=None, repr=False)
    _anchor_last: Message | None = field(default=None, repr=False)
    _anchor_len: int = 0
    _anchor_tokens: int = 0
    _schema_cache: tuple[int, int] = (0, 0)
    _stuck_at: int | None = None
    """Set when a compression could not get under the threshold: do not retry it at every
    request while the history stays under the hard limit."""

    # --- limits -----------------------------------------------------------------------

    @property
    def reserve(self) -> int:
        """Tokens kept free for the reply."""
        if not self.window:
            return 0
        return min(self.max_output_tokens or DEFAULT_OUTPUT_RESERVE, self.window // 5)

    @property
    def hard_limit(self) -> int | None:
        """The largest prompt worth sending, or None when the window is unknown."""
        return self.window - self.reserve if self.window else None

    @property
    def trigger(self) -> int | None:
        """The prompt size that sets off automatic compression (None: never)."""
        hard = self.hard_limit
        if hard is None:
            return None
        if self.threshold <= 0:
            return hard
        return min(hard, int(self.threshold * self.window))  # type: ignore[operator]

    def needs_compression(self, estimate: int) -> bool:
        """True when a request of `estimate` tokens should not be sent as it is."""
        hard, trigger = self.hard_limit, self.trigger
        if hard is None or trigger is None:
            return False
        if estimate > hard:
            return True
        if self.threshold <= 0 or estimate <= trigger:
            return False
        return self._stuck_at is None or estimate > self._stuck_at + self.window // 10  # type: ignore[operator]

    def targets(self, before: int, reason: CompressionReason, base: int = 0) -> Targets:
        """What a compression of a `before`-token history aims for; `base` is what cannot
        be compressed (system prompt and tools). The goal halves the room the
        conversation takes, so the next compression is some way off."""
        hard = self.hard_limit
        if hard is None:
            ceiling = before if reason == "manual" else int(before * 0.7)
            limit = ceiling
        else:
            ceiling = hard
            limit = self.trigger or hard
        top = min(limit, before) if reason == "manual" else limit
        goal = base + max(0, top - base) // 2
        return Targets(goal=goal, limit=limit, ceiling=ceiling)

    def settled(self, after: int) -> None:
        """Record a compression's result (see `_stuck_at`)."""
        trigger = self.trigger
        self._stuck_at = after if trigger is not None and after > trigger else None

    # --- estimates --------------------------------------------------------------------

    def schema_tokens(self, tools: Sequence[dict[str, Any]] | None) -> int:
        return math.ceil(self._schema_chars(tools) / self.chars_per_token)

    def _schema_chars(self, tools: Sequence[dict[str, Any]] | None) -> int:
        key = id(tools)
        if self._schema_cache[0] != key or tools is None:
            self._schema_cache = (key, schema_chars(tools))
        return self._schema_cache[1]

    def estimate_all(
        self, messages: Sequence[Message], tools: Sequence[dict[str, Any]] | None
    ) -> int:
        """A heuristic estimate of the whole request (no server figures)."""
        return estimate_tokens(messages, self.chars_per_token) + self.schema_tokens(tools)

    def estimate(self, messages: list[Message], tools: Sequence[dict[str, Any]] | None) -> int:
        """Tokens a request with these messages will take: the server's count for what it
        has seen, plus an estimate of the messages added since."""
        n = self._anchor_len
        if (
            self._anchor_messages is messages
            and len(messages) >= n > 0
            and messages[n - 1] is self._anchor_last
        ):
            return self._anchor_tokens + estimate_tokens(messages[n:], self.chars_per_token)
        return self.estimate_all(messages, tools)

    def observe(
        self,
        messages: list[Message],
        tools: Sequence[dict[str, Any]] | None,
        usage: UsageInfo | None,
    ) -> None:
        """After a response: `messages` ends with the reply; `usage` counted the request
        (every message before it, and the tools) and the reply."""
        if usage is None or usage.prompt_tokens <= 0 or not messages:
            return
        self._anchor_messages, self._anchor_last = messages, messages[-1]
        self._anchor_len = len(messages)
        self._anchor_tokens = usage.prompt_tokens + usage.completion_tokens
        sent = messages[:-1]
        chars = sum(message_chars(m) for m in sent) + self._schema_chars(tools)
        self.calibrate(chars, usage.prompt_tokens - _fixed_tokens(sent))

    def calibrate(self, chars: int, tokens: int) -> None:
        """Learn the chars-per-token ratio from a count the server made."""
        if tokens < MIN_CALIBRATION_TOKENS or chars <= 0:
            return
        ratio = chars / tokens * CALIBRATION_SAFETY
        self.chars_per_token = min(8.0, max(1.0, ratio))

    def learn_overflow(
        self, message: str, messages: list[Message], tools: Sequence[dict[str, Any]] | None
    ) -> int | None:
        """Take what an overflow error says (the window, the prompt's real size) into
        account; returns the prompt's size in tokens when the error named it."""
        limit, actual = parse_overflow(message)
        if limit and (self.window is None or limit < self.window):
            self.window = limit
        if actual:
            chars = sum(message_chars(m) for m in messages) + self._schema_chars(tools)
            self.calibrate(chars, actual - _fixed_tokens(messages))
        return actual

    def reset(self) -> None:
        """The history was rewritten (or cleared): the server's last count no longer applies."""
        self._anchor_messages = self._anchor_last = None
        self._anchor_len = self._anchor_tokens = 0
        self._stuck_at = None

    # --- tool results -----------------------------------------------------------------

    def tool_output_cap(self) -> int | None:
        """The most characters one tool result may bring into the history."""
        if not self.window:
            return None
        return max(2000, int(self.window * TOOL_OUTPUT_SHARE * self.chars_per_token))

    def cap_tool_output(self, output: str, output_path: str | None = None) -> str:
        """`output`, or its head and tail when it would take too much of the window."""
        cap = self.tool_output_cap()
        if cap is None or len(output) <= cap:
            return output
        return head_and_tail(output, cap, output_path)


def _fixed_tokens(messages: Sequence[Message]) -> int:
    """Tokens of `messages` that do not scale with characters: the template's around each
    message, and the images (a per-image estimate), left out of the calibration."""
    return sum(MESSAGE_OVERHEAD_TOKENS + content_image_tokens(m.get("content")) for m in messages)


def head_and_tail(text: str, cap: int, output_path: str | None = None) -> str:
    """About `cap` characters of `text`: its start and its end (cut at line ends when
    one is near), with a note on what was left out between them."""
    where = (
        f" The full output is saved at {output_path}; read parts of it with read_file."
        if output_path
        else ""
    )
    head_len = cap * 3 // 5
    tail_len = cap - head_len
    head, tail = text[:head_len], text[len(text) - tail_len :]
    cut = head.rfind("\n")
    if cut >= head_len * 4 // 5:
        head = head[: cut + 1]
    cut = tail.find("\n")
    if 0 <= cut < tail_len // 5:
        tail = tail[cut + 1 :]
    omitted = len(text) - len(head) - len(tail)
    note = f"[... {omitted:,} characters omitted here to fit the context window.{where}]"
    return f"{head.rstrip(chr(10))}\n\n{note}\n\n{tail}"
