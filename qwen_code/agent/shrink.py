"""The no-model fallback of compression: elide old tool output, then drop the oldest turns,
until the history fits. Tool calls and their results always go (or stay) together."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from qwen_code.agent.context import Message, Targets, message_tokens
from qwen_code.agent.events import CompressionMethod

SUMMARY_ACK = (
    "Understood. I have the summary of the earlier conversation and will continue from there."
)

DROPPED_NOTE = (
    "[Earlier parts of this conversation ({count} messages) were removed to fit the model's "
    "context window and are no longer visible. Read files again rather than relying on "
    "memory of them.]"
)

DROPPED_ACK = "Understood."

ELIDED_OUTPUT = "[Old output of {name} elided to save context; run the tool again if needed.]"

ELIDED_ARGUMENT = "[{count:,} characters elided to save context]"

ELIDE_MIN_TOKENS = 40
"""Tool results smaller than this are left alone (a stub would not save much)."""

ELIDE_ARGUMENT_CHARS = 300


def split_units(messages: Sequence[Message]) -> list[list[Message]]:
    """User messages alone; an assistant message together with the tool results after it."""
    units: list[list[Message]] = []
    for message in messages:
        if message["role"] == "tool" and units and units[-1][0]["role"] == "assistant":
            units[-1].append(message)
        else:
            units.append([message])
    return units


def elide_unit(unit: list[Message]) -> list[Message]:
    """The unit with long tool outputs stubbed and long tool-call arguments shortened."""
    names: dict[str, str] = {}
    out: list[Message] = []
    for message in unit:
        if message.get("tool_calls"):
            calls = []
            for tool_call in message["tool_calls"]:
                function = tool_call.get("function") or {}
                names[tool_call.get("id", "")] = function.get("name") or "a tool"
                arguments = _elide_arguments(function.get("arguments") or "")
                calls.append({**tool_call, "function": {**function, "arguments": arguments}})
            message = {**message, "tool_calls": calls}
        elif message["role"] == "tool":
            stub = ELIDED_OUTPUT.format(name=names.get(message.get("tool_call_id", ""), "a tool"))
            if message_tokens(message) - message_tokens({"content": stub}) >= ELIDE_MIN_TOKENS:
                message = {**message, "content": stub}
        out.append(message)
    return out


def _elide_arguments(arguments: str) -> str:
    if len(arguments) <= ELIDE_ARGUMENT_CHARS:
        return arguments
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments
    if not isinstance(parsed, dict):
        return arguments
    short = {
        key: ELIDED_ARGUMENT.format(count=len(value))
        if isinstance(value, str) and len(value) > ELIDE_ARGUMENT_CHARS
        else value
        for key, value in parsed.items()
    }
    return json.dumps(short, ensure_ascii=False)


def assemble(prefix: Sequence[Message], rest: Sequence[Message], dropped: int) -> list[Message]:
    """`prefix` + a note on dropped messages + `rest`, with an acknowledgement inserted
    where two user messages would otherwise follow each other."""
    out = list(prefix)
    noted = bool(dropped) and out[-1]["role"] == "system"
    if noted:
        out.append({"role": "user", "content": DROPPED_NOTE.format(count=dropped)})
    if out[-1]["role"] == "user" and (not rest or rest[0]["role"] == "user"):
        out.append({"role": "assistant", "content": DROPPED_ACK if noted else SUMMARY_ACK})
    out.extend(rest)
    return out


@dataclass(frozen=True, slots=True)
class Shrunk:
    """A history brought under the ceiling, and how (`method` None: it fit unchanged)."""

    messages: list[Message]
    method: CompressionMethod | None


@dataclass(slots=True)
class Shrinker:
    """Shrinks a history step by step, keeping the running token estimate.

    messages[:pinned] are never touched; units starting before `keep_from` are "old".
    The last user message and the latest round after it are protected.
    """

    messages: Sequence[Message]
    pinned: int
    keep_from: int
    count: Callable[[Message], int]
    measure: Callable[[list[Message]], int]
    """Tokens of a whole request with the given messages."""
    units: list[list[Message] | None] = field(init=False)
    sizes: list[int] = field(init=False)
    starts: list[int] = field(init=False)
    total: int = field(init=False)
    dropped: int = 0
    elided: bool = False

    def __post_init__(self) -> None:
        units = split_units(self.messages[self.pinned :])
        self.units = list(units)
        self.sizes = [sum(self.count(m) for m in unit) for unit in units]
        self.starts, position = [], self.pinned
        for unit in units:
            self.starts.append(position)
            position += len(unit)
        self.total = self.measure(list(self.messages))

    def protected(self) -> tuple[int | None, int | None]:
        """(the last user unit, the last round after it)."""
        roles = [u[0]["role"] for u in self.units if u is not None]
        alive = [i for i, u in enumerate(self.units) if u is not None]
        user = next((alive[k] for k in range(len(alive) - 1, -1, -1) if roles[k] == "user"), None)
        last = alive[-1] if alive and alive[-1] != user else None
        return user, last

    def run(self, targets: Targets) -> bool:
        """Shrink towards the targets; True when the result fits the ceiling."""
        self._shrink(targets)
        return self.measure(self.result()) <= targets.ceiling

    def _shrink(self, targets: Targets) -> None:
        """Old units (before `keep_from`) go first, down to the goal; then recent ones,
        down to the limit; the latest round's output last."""
        user, last = self.protected()
        keep = {user, last}
        old = [i for i in range(len(self.units)) if self.starts[i] < self.keep_from]
        old = [i for i in old if i not in keep]
        if self._elide(old, targets.goal) or self._drop(old, targets.goal):
            return
        recent = [i for i, u in enumerate(self.units) if u is not None and i not in keep]
        if self._elide(recent, targets.limit) or self._drop(recent, targets.limit):
            return
        if last is not None:
            self._elide([last], targets.limit)

    def _elide(self, indices: list[int], target: int) -> bool:
        if self.total <= target:
            return True
        for i in indices:
            unit = self.units[i]
            if unit is None:
                continue
            shorter = elide_unit(unit)
            size = sum(self.count(m) for m in shorter)
            if size < self.sizes[i]:
                self.units[i], self.total = shorter, self.total - self.sizes[i] + size
                self.sizes[i], self.elided = size, True
                if self.total <= target:
                    return True
        return False

    def _drop(self, indices: list[int], target: int) -> bool:
        """Drop units oldest first, checking the budget only at turn boundaries."""
        alive = [i for i in indices if self.units[i] is not None]
        for position, i in enumerate(alive):
            unit = self.units[i]
            assert unit is not None
            self.units[i], self.total = None, self.total - self.sizes[i]
            self.dropped += len(unit)
            following = alive[position + 1] if position + 1 < len(alive) else None
            nxt = self.units[following] if following is not None else None
            boundary = following != i + 1 or nxt is None or nxt[0]["role"] == "user"
            if boundary and self.total <= target:
                return True
        return self.total <= target

    def result(self) -> list[Message]:
        rest = [m for unit in self.units if unit is not None for m in unit]
        return assemble(self.messages[: self.pinned], rest, self.dropped)

    @property
    def method(self) -> CompressionMethod | None:
        return "dropped" if self.dropped else "elided" if self.elided else None


def shrink(
    messages: Sequence[Message],
    *,
    pinned: int,
    keep_from: int,
    targets: Targets,
    count: Callable[[Message], int],
    measure: Callable[[list[Message]], int],
) -> Shrunk | None:
    """The shrunk history, or None if it cannot be brought under `targets.ceiling`."""
    shrinker = Shrinker(messages, pinned, keep_from, count, measure)
    if not shrinker.run(targets):
        return None
    return Shrunk(shrinker.result(), shrinker.method)
