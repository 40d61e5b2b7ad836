"""Compressing the history when it no longer fits the context budget.

The model summarizes the older part of the conversation (`prompts/compress.md`) and the
most recent ~30% is kept verbatim: system prompt (unchanged, so prefix caches still hit)
+ one user message carrying the summary (+ an assistant acknowledgement when the kept
part starts with a user message) + the kept messages. The split never separates an
assistant message's tool calls from their results.

Images go first (a screenshot takes as much room as pages of text): before anything is
summarized, old images are replaced by a short note, oldest first, and when that is
enough nothing else changes. The summarizing request never carries images (each is
replaced by the note), so a text-only model can summarize any history.

When the summary cannot be had (the request would not fit, or the model fails), the
history is shrunk without the model, least harmful step first: old tool outputs are
replaced by one-line stubs, then the oldest turns are dropped, and only then the
current turn is cut (never its user message or its latest round). A request known not
to fit is never sent: if nothing more can go, `ContextTooLarge` says so.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qwen_code import prompts
from qwen_code.agent.context import ContextBudget, Message, Targets, message_tokens
from qwen_code.agent.conversation import Conversation
from qwen_code.agent.events import Compressed, CompressionReason, UsageInfo
from qwen_code.agent.shrink import Shrunk, shrink
from qwen_code.errors import ConfigError, ModelError
from qwen_code.llm.modalities import is_image_part
from qwen_code.llm.reply import final_response
from qwen_code.llm.types import ChatModel, ModelResponse

if TYPE_CHECKING:
    from qwen_code.hooks import Hooks

KEEP_FRACTION = 0.3
"""Share of the history (by tokens) kept verbatim after a summary."""
USER_SPLIT_SLACK = 0.15
"""A split at a user message is preferred if it is within this share of the history of
the best split."""
MIN_SUMMARIZED_SHARE = 0.05
"""Automatic compression skips the summary when less than this would be summarized."""
MIN_MANUAL_SUMMARIZED_TOKENS = 1_000
"""/compress asks for a summary only when the part it would replace is at least this
large: a summary (a few hundred tokens) of less would not free anything."""
TEMPLATE = "compress.md"
IMAGE_REMOVED = "[image removed to save context]"

SUMMARY_INTRO = (
    "This session is being continued from an earlier conversation that was compressed to "
    "fit the model's context window. The summary below covers the earlier part of the "
    "conversation; the messages after it are verbatim. Continue the work from where it "
    "stands without asking the user to repeat anything.\n\n"
)

_SNAPSHOT = re.compile(r"<state_snapshot>.*?</state_snapshot>", re.DOTALL)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


class ContextTooLarge(ModelError):
    """Even the smallest history that keeps the current request does not fit."""

    def __init__(self, message: str) -> None:
        super().__init__(
            message,
            kind="context_overflow",
            hint="Start a new conversation, or send a shorter message.",
        )


# --- where to split ------------------------------------------------------------------


def split_point(
    messages: Sequence[Message],
    count: Callable[[Message], int],
    keep_fraction: float = KEEP_FRACTION,
) -> int | None:
    """Index of the first message kept verbatim, so that about `keep_fraction` of the
    history (by tokens) is kept; None when nothing would be left to summarize.

    The kept part starts at a user message or at an assistant message (the start of a
    round), never at a tool result, so tool calls and their results stay together. A
    user message is preferred when one is nearly as close to the target.
    """
    sizes = [count(m) for m in messages]
    kept_from = [0] * (len(messages) + 1)
    for index in range(len(messages) - 1, -1, -1):
        kept_from[index] = kept_from[index + 1] + sizes[index]
    total = kept_from[1]
    target = total * keep_fraction
    boundaries = [i for i in range(2, len(messages)) if messages[i]["role"] != "tool"]
    if not boundaries:
        return None

    def distance(i: int) -> float:
        return abs(kept_from[i] - target)

    best = min(boundaries, key=distance)
    users = [i for i in boundaries if messages[i]["role"] == "user"]
    if users:
        best_user = min(users, key=distance)
        if distance(best_user) <= distance(best) + USER_SPLIT_SLACK * total:
            return best_user
    return best


# --- the summary -----------------------------------------------------------------------


def extract_summary(text: str) -> str:
    """The <state_snapshot> block of the model's answer (or the answer without thinking)."""
    found = _SNAPSHOT.search(text)
    if found:
        return found.group(0).strip()
    return _THINK.sub("", text).strip()


CURRENT_REQUEST = "\n\nThe user's current request, verbatim:\n\n"


def summary_message(summary: str, current_request: str | None = None) -> Message:
    """The user message that replaces the summarized part. When the user's latest message
    is itself summarized away, it is repeated word for word: a task is never paraphrased."""
    content = SUMMARY_INTRO + summary
    if current_request:
        content += CURRENT_REQUEST + current_request
    return {"role": "user", "content": content}


def summarized_request(messages: Sequence[Message], split: int) -> str | None:
    """The text of the user's latest message when it lies in the summarized part
    (`messages[:split]`), else None."""
    for index in range(len(messages) - 1, 0, -1):
        message = messages[index]
        if message["role"] != "user" or _is_media_note(messages, index):
            continue
        content = _text_of(message.get("content"))
        if index >= split or content is None:
            return None
        if content.startswith(SUMMARY_INTRO):  # an earlier summary: carry its request on
            _, found, request = content.partition(CURRENT_REQUEST)
            return request if found else None
        return content
    return None


def summary_request(old: Sequence[Message], instruction: str) -> list[Message]:
    """The summarizing request: the old messages (system prompt first, so the server's
    prefix cache still hits) and the instruction as the last user message."""
    messages = [without_images(m) for m in old]
    last = messages[-1]
    if last["role"] == "user" and isinstance(last.get("content"), str):
        merged = f"{last['content']}\n\n---\n\n{instruction}"
        messages[-1] = {"role": "user", "content": merged}
    else:
        messages.append({"role": "user", "content": instruction})
    return messages


async def complete(model: ChatModel, messages: list[Message]) -> ModelResponse:
    """One request without tools, drained to its response."""
    return await final_response(model.stream_chat(messages, []))


@dataclass(frozen=True, slots=True)
class SummaryAttempt:
    """What asking the model for a summary came to: the new history (None when there is
    no usable summary, or it would not fit) and what the request cost."""

    history: Shrunk | None = None
    usage: UsageInfo | None = None


@dataclass(slots=True, kw_only=True)
class Compressor:
    """Keeps one conversation inside its context budget."""

    budget: ContextBudget = field(default_factory=ContextBudget)
    keep_fraction: float = KEEP_FRACTION
    project_dir: Path | None = None
    """Where `.qwen/prompts/compress.md` may override the shipped template."""
    user_dir: Path | None = None
    hooks: Hooks | None = None
    """The user's hooks (`PreCompact`, `PostCompact`), if any."""
    unused_usage: UsageInfo | None = None
    """What the last /compress spent on a summary it could not use (`take_unused_usage`)."""
    _template: str | None = None

    def instruction(self, focus: str = "") -> str:
        if self._template is None:
            self._template = prompts.load(
                TEMPLATE, {}, project_dir=self.project_dir, user_dir=self.user_dir
            ).strip()
        if focus.strip():
            return f"{self._template}\n\nThe user asks the summary to focus on: {focus.strip()}"
        return self._template

    def take_unused_usage(self) -> UsageInfo | None:
        usage, self.unused_usage = self.unused_usage, None
        return usage

    def count(self, message: Message) -> int:
        return message_tokens(message, self.budget.chars_per_token)

    async def fit(
        self, conversation: Conversation, model: ChatModel, tools: Sequence[dict[str, Any]]
    ) -> Compressed | None:
        """Compress before a request when the budget says so."""
        estimate = self.budget.estimate(conversation.messages, tools)
        if not self.budget.needs_compression(estimate):
            return None
        return await self.compress(conversation, model, tools, reason="threshold", before=estimate)

    async def compress(
        self,
        conversation: Conversation,
        model: ChatModel,
        tools: Sequence[dict[str, Any]],
        *,
        reason: CompressionReason,
        before: int | None = None,
        focus: str = "",
    ) -> Compressed | None:
        """Compress the history in place; None when there was nothing to compress (or
        nothing that would help). Raises ContextTooLarge when the request cannot fit.
        `PreCompact` and `PostCompact` hooks are told (they cannot stop it)."""
        hooks = self.hooks
        trigger = "manual" if reason == "manual" else "auto"
        fields = {"trigger": trigger, "custom_instructions": focus}
        if hooks is not None and hooks.active("PreCompact"):
            await hooks.fire("PreCompact", fields, match=trigger)
        compressed = await self._compress_now(
            conversation, model, tools, reason=reason, before=before, focus=focus
        )
        if compressed is not None and hooks is not None and hooks.active("PostCompact"):
            await hooks.fire("PostCompact", fields, match=trigger)
        return compressed

    async def _compress_now(
        self,
        conversation: Conversation,
        model: ChatModel,
        tools: Sequence[dict[str, Any]],
        *,
        reason: CompressionReason,
        before: int | None = None,
        focus: str = "",
    ) -> Compressed | None:
        budget, messages = self.budget, conversation.messages
        if before is None:
            before = budget.estimate(messages, tools)
        targets = budget.targets(before, reason, budget.estimate_all(messages[:1], tools))
        messages, images_gone = self.drop_old_images(messages, tools, targets.goal, reason)
        if images_gone and budget.estimate_all(messages, tools) <= targets.goal:
            return self._commit(conversation, Shrunk(messages, "elided"), tools, before, reason)
        split = split_point(messages, self.count, self.keep_fraction)
        if reason == "manual":
            return await self._summarize_on_request(
                conversation, model, tools, split, targets, before, focus
            )
        summarized = SummaryAttempt()
        if split is not None and self._worth_summarizing(messages, split, reason):
            with contextlib.suppress(ModelError, ConfigError):  # else shrink without the model
                summarized = await self._summarize(messages, split, model, tools, targets, focus)
        result = summarized.history or shrink(
            messages,
            pinned=1,
            keep_from=split or len(messages),
            targets=targets,
            count=self.count,
            measure=lambda m: budget.estimate_all(m, tools),
        )
        if result is not None and result.method is None and images_gone:
            result = Shrunk(result.messages, "elided")
        if result is None or result.method is None:
            return self._no_help(messages, tools, before, reason)
        return self._commit(conversation, result, tools, before, reason, summarized.usage)

    async def _summarize_on_request(
        self,
        conversation: Conversation,
        model: ChatModel,
        tools: Sequence[dict[str, Any]],
        split: int | None,
        targets: Targets,
        before: int,
        focus: str,
    ) -> Compressed | None:
        """/compress: a summary of the older part, or nothing. The model is asked only when
        there is enough to summarize; a summary no shorter than the history it would
        replace is not used (what it cost is kept in `unused_usage`). Model errors raise."""
        messages = conversation.messages
        self.budget.settled(before)
        if split is None or not self._worth_summarizing(messages, split, "manual"):
            return None
        summarized = await self._summarize(messages, split, model, tools, targets, focus)
        history = summarized.history
        if history is None or self.budget.estimate_all(history.messages, tools) >= before:
            self.unused_usage = summarized.usage
            return None
        return self._commit(conversation, history, tools, before, "manual", summarized.usage)

    def _commit(
        self,
        conversation: Conversation,
        result: Shrunk,
        tools: Sequence[dict[str, Any]],
        before: int,
        reason: CompressionReason,
        usage: UsageInfo | None = None,
    ) -> Compressed:
        assert result.method is not None
        after = self.budget.estimate_all(result.messages, tools)
        conversation.messages = result.messages
        self.budget.reset()
        self.budget.settled(after)
        return Compressed(
            before_tokens=before,
            after_tokens=after,
            method=result.method,
            reason=reason,
            usage=usage,
        )

    def drop_old_images(
        self,
        messages: list[Message],
        tools: Sequence[dict[str, Any]],
        goal: int,
        reason: CompressionReason,
    ) -> tuple[list[Message], int]:
        """The history with images replaced by `IMAGE_REMOVED`, oldest first, until it
        fits `goal`, and how many messages lost theirs. The newest message with images
        in the current turn keeps them; /compress (a summary asked for) removes none."""
        droppable = _old_image_messages(messages)
        if reason == "manual" or not droppable:
            return messages, 0
        out, removed = list(messages), 0
        estimate = self.budget.estimate_all(out, tools)
        for index in droppable:
            if estimate <= goal:
                break
            lighter = without_images(out[index])
            estimate -= self.count(out[index]) - self.count(lighter)
            out[index], removed = lighter, removed + 1
        return out, removed

    def _worth_summarizing(
        self, messages: list[Message], split: int, reason: CompressionReason
    ) -> bool:
        old = sum(self.count(m) for m in messages[1:split])
        if reason == "manual":
            return old >= MIN_MANUAL_SUMMARIZED_TOKENS
        return old >= MIN_SUMMARIZED_SHARE * sum(self.count(m) for m in messages[1:])

    def _no_help(
        self,
        messages: list[Message],
        tools: Sequence[dict[str, Any]],
        before: int,
        reason: CompressionReason,
    ) -> None:
        """Nothing could be compressed: fine unless the request is known not to fit."""
        hard = self.budget.hard_limit
        if reason == "threshold" and hard is not None and before <= hard:
            self.budget.settled(before)
            return None
        least = self.budget.estimate_all([messages[0], _last_user(messages)], tools)
        window = self.budget.window
        size = f"the {window:,}-token context window" if window else "the model's context"
        if hard is not None and least > hard:
            raise ContextTooLarge(
                f"The conversation does not fit in {size}: the system prompt, the tools and "
                f"the last user message alone take about {least:,} tokens."
            )
        raise ContextTooLarge(
            f"The conversation does not fit in {size}, even after compressing it: the "
            "current request and its latest tool results cannot be shortened further."
        )

    async def _summarize(
        self,
        messages: list[Message],
        split: int,
        model: ChatModel,
        tools: Sequence[dict[str, Any]],
        targets: Targets,
        focus: str,
    ) -> SummaryAttempt:
        request = summary_request(messages[:split], self.instruction(focus))
        request_fit = self.fit_summary_request(request)
        if request_fit is None:
            return SummaryAttempt()
        response = await complete(model, request_fit)
        summary = extract_summary(response.text)
        if not summary:
            return SummaryAttempt(usage=response.usage)
        current = summarized_request(messages, split)
        candidate = [messages[0], summary_message(summary, current), *messages[split:]]
        shrunk = shrink(
            candidate,
            pinned=2,
            keep_from=2,
            targets=Targets(goal=targets.limit, limit=targets.limit, ceiling=targets.ceiling),
            count=self.count,
            measure=lambda m: self.budget.estimate_all(m, tools),
        )
        history = Shrunk(shrunk.messages, "summary") if shrunk is not None else None
        return SummaryAttempt(history, response.usage)

    def fit_summary_request(self, request: list[Message]) -> list[Message] | None:
        """The summarizing request, shortened (old outputs elided, oldest turns dropped)
        when it would not fit the window itself; None when it cannot be made to fit."""
        hard = self.budget.hard_limit
        if hard is None or self.budget.estimate_all(request, None) <= hard:
            return request
        shrunk = shrink(
            request,
            pinned=1,
            keep_from=len(request),
            targets=Targets(goal=hard, limit=hard, ceiling=hard),
            count=self.count,
            measure=lambda m: self.budget.estimate_all(m, None),
        )
        return shrunk.messages if shrunk is not None else None


def has_images(message: Message) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(is_image_part(p) for p in content)


def without_images(message: Message) -> Message:
    """The message with each image part replaced by a text part saying it was removed."""
    if not has_images(message):
        return message
    parts = [
        {"type": "text", "text": IMAGE_REMOVED} if is_image_part(p) else p
        for p in message["content"]
    ]
    return {**message, "content": parts}


def _old_image_messages(messages: Sequence[Message]) -> list[int]:
    """Indices of the messages with images that may lose them, oldest first: all but the
    newest one of the current turn (from the user's latest prompt on)."""
    found = [i for i, m in enumerate(messages) if has_images(m)]
    if found and found[-1] >= _current_turn(messages):
        found.pop()
    return found


def _current_turn(messages: Sequence[Message]) -> int:
    for index in range(len(messages) - 1, 0, -1):
        if messages[index]["role"] == "user" and not _is_media_note(messages, index):
            return index
    return len(messages)


def _is_media_note(messages: Sequence[Message], index: int) -> bool:
    """A user message right after tool results carries the images they returned
    (`qwen_code.agent.loop.MEDIA_NOTE`), not a prompt of the user's."""
    previous = messages[index - 1] if index > 0 else {}
    return previous.get("role") == "tool" and isinstance(messages[index].get("content"), list)


def _text_of(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return None


def _last_user(messages: list[Message]) -> Message:
    for message in reversed(messages):
        if message["role"] == "user":
            return message
    return messages[-1]
