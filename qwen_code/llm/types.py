"""What the client takes and yields. Plain dataclasses: importing this is cheap.

`ToolCall` and `UsageInfo` are wire types: the client produces them and the agent's events
carry them (`qwen_code.agent.events` re-exports them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """One tool call requested by the model (arguments already parsed to a dict)."""

    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str = ""
    """The argument text as the model wrote it (kept for error messages)."""
    parse_error: str | None = None
    """Set when the arguments could not be parsed as a JSON object."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageInfo:
    """Token counts of one model request, as the server reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: UsageInfo) -> UsageInfo:
        return UsageInfo(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )


@dataclass(slots=True, kw_only=True)
class ModelConfig:
    """Everything needed to talk to one OpenAI-compatible endpoint."""

    base_url: str
    api_key: str
    model: str
    api_key_source: str = ""
    """Where the key came from (e.g. `OPENAI_API_KEY`), named in auth errors."""
    timeout_s: float = 120.0
    """Per-request timeout: the longest wait for a response to start (and, for streams, for
    any next chunk; `stall_timeout_s` is usually the shorter limit once a reply started).
    For a local server the wait grows with the prompt (`first_chunk_rate`)."""
    first_chunk_rate: float = 50.0
    """A local server (`server_probe.is_local_url`) gets `timeout_s` plus the prompt's
    tokens at this many tokens/s for its first chunk: a CPU engine takes minutes to
    process a long prompt. 0 turns this off."""
    first_chunk_cap_s: float = 1800.0
    """The wait for a local server's first chunk never grows past this."""
    max_retries: int = 5
    """Retries for 429, 5xx and connection errors (with exponential backoff and jitter)."""
    max_retry_wait_s: float = 60.0
    """The longest single wait between retries (a server's Retry-After is capped by it)."""
    max_retry_time_s: float = 180.0
    """Retries of one request stop once this much time has passed since its first failure."""
    retry_rate_limits: bool = True
    """False: a 429 is not retried but raised at once (the proxy passes it, with its
    Retry-After, to a client that backs off itself)."""
    backoff_base_s: float = 1.0
    """The first retry waits up to this long, each next one up to twice as long (full
    jitter, at most 30 s a step) when the server sent no Retry-After. Not a setting: tests
    set it near zero."""
    stall_timeout_s: float = 60.0
    """A stream that has started and then sends no data for this long is retried."""
    sampling: dict[str, Any] = field(default_factory=dict)
    """temperature, top_p, top_k, repetition_penalty, ... (non-OpenAI keys go in extra_body)."""
    max_tokens: int | None = None
    output_limit: int | None = None
    """The reply's token limit when neither `max_tokens` nor `sampling` sets one: sent as
    `max_tokens` (lowered to the room the prompt leaves in `context_window`), and enforced
    on the stream either way, for servers that ignore it (see `attempt.OutputGuard`)."""
    context_window: int | None = None
    """Tokens the model accepts, when known (settings or the built-in table)."""
    headers: dict[str, str] = field(default_factory=dict)
    extra_body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TextChunk:
    """Streamed assistant text."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryNotice:
    """The client is about to retry; front ends show why and how long it waits."""

    message: str
    attempt: int
    delay_s: float
    kind: str
    """The error kind (rate_limit, server, network, ...), or "length" for a retry with a
    larger max_tokens after the reply was cut off in the middle of a tool call."""
    restart: bool = False
    """True when text of the failed attempt was already yielded: the response starts over,
    and consumers discard that partial text (the final ModelResponse never contains it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelResponse:
    """The assembled response, yielded last."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    usage: UsageInfo | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptWait:
    """A request went to a local server, which processes the prompt before the first chunk
    comes (`ChatClient.on_prompt_wait` is told); `done` once that chunk arrived."""

    prompt_tokens: int
    """The prompt's size, estimated (a little overstated)."""
    timeout_s: float
    """How long the client waits for the first chunk."""
    done: bool = False


StreamItem: TypeAlias = TextChunk | RetryNotice | ModelResponse


class ChatModel(Protocol):
    """What the agent needs of a model: one streamed reply to messages and tool schemas.
    `ChatClient` is one; tests and subagents may pass any other."""

    def stream_chat(
        self, messages: list[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> AsyncIterator[StreamItem]: ...
