"""Token prices, and what a model request cost.

Prices are USD per 1M tokens. The built-in table (`BUILTIN_PRICING`) holds DashScope's
international prices for the Qwen3-Coder ids (Model Studio pricing page, via models.dev);
users override or add models with `modelPricing` in settings.json:

    "modelPricing": {
      "my-model": {"input": 0.5, "output": 1.5, "cachedInput": 0.1},
      "big-model": {"tiers": [
        {"upTo": 32000, "input": 1.0, "output": 5.0},
        {"input": 1.8, "output": 9.0}
      ]}
    }

A tier applies when the request's input tokens are at most its `upTo` (the last tier may
leave it out: no limit); every token of the request is billed at that tier, as DashScope
does. Cached tokens cost `cachedInput` (default: the input price, i.e. no discount).
DashScope explicit caching (requests with `cache_control` markers) reports its own
counts: cache creation is billed at `cacheWrite` (default 125% of input) and hits at
`explicitCachedInput` (default 10% of input).

A model without a price, or a request beyond its last tier, has an unknown cost (None):
never a guessed number. For the same reason the built-in table is not used for the
Beijing, US, Hong Kong and Coding Plan endpoints, which bill differently (other prices,
CNY, or a subscription); `modelPricing` entries apply everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from typing import Any

from qwen_code.errors import ConfigError
from qwen_code.llm.dashscope import international_prices_apply
from qwen_code.llm.types import UsageInfo

PER_TOKENS = 1_000_000
"""Prices are per this many tokens."""
EXPLICIT_WRITE_RATE = 1.25
"""DashScope explicit cache: creating the cache costs 125% of the input price."""
EXPLICIT_HIT_RATE = 0.10
"""DashScope explicit cache: a hit costs 10% of the input price."""


def _tier(up_to: int | None, input: float, output: float, cached: float | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"input": input, "output": output}
    if up_to is not None:
        entry["upTo"] = up_to
    if cached is not None:
        entry["cachedInput"] = cached
    return entry


# DashScope international (Singapore), USD per 1M tokens; providers.md §3.1. "32K" is 32,000
# tokens (as in models.dev's tier sizes). `cachedInput` is the implicit-cache hit price (20% of
# input); explicit-cache creation (125%) and hit (10%) prices follow from the input price.
# Dated snapshots (qwen3-coder-plus-2025-09-23) use their base id's prices.
BUILTIN_PRICING: dict[str, dict[str, Any]] = {
    "qwen3-coder-plus": {
        "tiers": [
            _tier(32_000, 1.00, 5.00, 0.20),
            _tier(128_000, 1.80, 9.00, 0.36),
            _tier(256_000, 3.00, 15.00, 0.60),
            _tier(1_000_000, 6.00, 60.00, 1.20),
        ]
    },
    "qwen3-coder-flash": {
        "tiers": [
            _tier(32_000, 0.30, 1.50, 0.06),
            _tier(128_000, 0.50, 2.50, 0.10),
            _tier(256_000, 0.80, 4.00, 0.16),
            _tier(1_000_000, 1.60, 9.60, 0.32),
        ]
    },
    "qwen3-coder-480b-a35b-instruct": {
        "tiers": [
            _tier(32_000, 1.50, 7.50, None),
            _tier(128_000, 2.70, 13.50, None),
            _tier(256_000, 4.50, 22.50, None),
            _tier(None, 9.00, 90.00, None),
        ]
    },
    "qwen3-coder-30b-a3b-instruct": {
        "tiers": [
            _tier(32_000, 0.45, 2.25, None),
            _tier(128_000, 0.75, 3.75, None),
            _tier(None, 1.20, 6.00, None),
        ]
    },
}


# --- the usage numbers pricing needs beyond UsageInfo ------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheUsage(UsageInfo):
    """UsageInfo of a request that used DashScope explicit caching.

    `cache_creation_tokens` were written to the cache (billed at 125%); the request's
    `cached_tokens` were explicit hits (10%), not implicit ones (20%).
    """

    cache_creation_tokens: int = 0
    explicit_cache: bool = True


def with_cache_details(usage: UsageInfo, details: Any) -> UsageInfo:
    """Add DashScope's explicit-cache counts from `usage.prompt_tokens_details`, if any.

    DashScope reports `cache_creation_input_tokens` (also nested under `cache_creation`)
    and `cache_type: "ephemeral"` for requests that carried `cache_control` markers.
    """
    if not isinstance(details, Mapping):
        return usage
    created = details.get("cache_creation_input_tokens")
    nested = details.get("cache_creation")
    if created is None and isinstance(nested, Mapping):
        created = nested.get("cache_creation_input_tokens", nested.get("ephemeral_5m_input_tokens"))
    explicit = details.get("cache_type") == "ephemeral" or (
        isinstance(nested, Mapping) and nested.get("cache_type") == "ephemeral"
    )
    try:
        created_count = int(created or 0)
    except (TypeError, ValueError):
        created_count = 0
    if not explicit and created_count <= 0:
        return usage
    return CacheUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        cache_creation_tokens=max(created_count, 0),
    )


def cache_creation_tokens(usage: UsageInfo) -> int:
    return getattr(usage, "cache_creation_tokens", 0)


# --- settings validation (pydantic models built on first use: most sessions have none) ------


_PRICE_KEYS = ("input", "output", "cached_input", "cache_write", "explicit_cached_input")


@cache
def _entry_schema() -> type[Any]:
    """The pydantic model of one `modelPricing` entry."""
    from pydantic import BaseModel, ConfigDict, Field, model_validator
    from pydantic.alias_generators import to_camel

    strict = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    def price() -> Any:
        return Field(default=None, ge=0)

    class TierEntry(BaseModel):
        model_config = strict
        up_to: int | None = Field(default=None, gt=0)
        """Largest input token count (of one request) this tier applies to; none: no limit."""
        input: float = Field(ge=0)
        output: float = Field(ge=0)
        cached_input: float | None = price()
        """Cached (cache-hit) input tokens; default: the input price."""
        cache_write: float | None = price()
        """DashScope explicit-cache creation; default: 125% of input."""
        explicit_cached_input: float | None = price()
        """DashScope explicit-cache hits; default: 10% of input."""

    class ModelEntry(BaseModel):
        model_config = strict
        input: float | None = price()
        output: float | None = price()
        cached_input: float | None = price()
        cache_write: float | None = price()
        explicit_cached_input: float | None = price()
        tiers: list[TierEntry] | None = None

        @model_validator(mode="after")
        def _one_form(self) -> Any:
            flat = [to_camel(k) for k in _PRICE_KEYS if getattr(self, k) is not None]
            if self.tiers is None:
                if self.input is None or self.output is None:
                    raise ValueError("needs input and output prices (USD per 1M tokens), or tiers")
                return self
            if flat:
                raise ValueError(
                    f"give either flat prices or tiers, not both (found {', '.join(flat)} "
                    "next to tiers)"
                )
            if not self.tiers:
                raise ValueError("tiers is empty")
            limits = [t.up_to for t in self.tiers]
            if None in limits[:-1]:
                raise ValueError("only the last tier may leave out upTo")
            bounded = [u for u in limits if u is not None]
            if any(b <= a for a, b in pairwise(bounded)):
                raise ValueError("tier upTo values must increase")
            return self

    ModelEntry.model_rebuild(_types_namespace={"TierEntry": TierEntry})
    return ModelEntry


def _validated(model: str, value: Any, source: str) -> dict[str, Any]:
    """A `modelPricing` entry, checked, as a plain dict with camelCase keys."""
    from pydantic import ValidationError

    try:
        entry = _entry_schema().model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"Invalid {source} entry {model!r}: {problems}") from exc
    return entry.model_dump(by_alias=True, exclude_none=True)


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


# --- prices ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Tier:
    """Prices (USD per 1M tokens) for requests of up to `up_to` input tokens."""

    up_to: int | None
    input: float
    output: float
    cached_input: float
    """Implicit-cache hits (and cached tokens of servers other than DashScope)."""
    cache_write: float
    explicit_cached_input: float


@dataclass(frozen=True, slots=True)
class ModelPrice:
    tiers: tuple[Tier, ...]

    def tier_for(self, input_tokens: int) -> Tier | None:
        """The tier a request with this many input tokens is billed at; None past the last."""
        for tier in self.tiers:
            if tier.up_to is None or input_tokens <= tier.up_to:
                return tier
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCost:
    """What one request cost, in USD."""

    usd: float
    savings_usd: float = 0.0
    """What its cached tokens would have cost at the full input price, minus what they cost."""
    cache_write_premium_usd: float = 0.0
    """The extra paid for writing the explicit cache (25% over the input price)."""


def _model_price(entry: Mapping[str, Any]) -> ModelPrice:
    """An entry (camelCase keys, already valid) as a ModelPrice with every price filled in."""
    tiers = []
    for t in entry.get("tiers") or [entry]:
        price_in = float(t["input"])
        cached, write, hit = t.get("cachedInput"), t.get("cacheWrite"), t.get("explicitCachedInput")
        tiers.append(
            Tier(
                up_to=t.get("upTo"),
                input=price_in,
                output=float(t["output"]),
                cached_input=price_in if cached is None else float(cached),
                cache_write=price_in * EXPLICIT_WRITE_RATE if write is None else float(write),
                explicit_cached_input=price_in * EXPLICIT_HIT_RATE if hit is None else float(hit),
            )
        )
    return ModelPrice(tuple(tiers))


def parse_pricing(
    raw: Mapping[str, Any], *, source: str = "modelPricing"
) -> dict[str, ModelPrice | None]:
    """Validate a `modelPricing` object; a bad entry is a ConfigError naming its key.

    A model mapped to null has no price (its cost is unknown, even if built in).
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source} must be an object mapping model ids to prices.")
    return {
        model: None if value is None else _model_price(_validated(model, value, source))
        for model, value in raw.items()
    }


@cache
def builtin_prices() -> dict[str, ModelPrice | None]:
    """The built-in table (trusted data: checked by the tests, not at run time)."""
    return {model: _model_price(entry) for model, entry in BUILTIN_PRICING.items()}


_SNAPSHOT = re.compile(r"^(?P<base>.+)-\d{4}-\d{2}-\d{2}$")


def builtin_applies(base_url: str | None) -> bool:
    """False for endpoints billed other than by the international (USD) price table."""
    return not base_url or international_prices_apply(base_url)


class PriceTable:
    """Prices by model id: settings entries over the built-in table."""

    __slots__ = ("_prices",)

    def __init__(self, prices: Mapping[str, ModelPrice | None]) -> None:
        self._prices = dict(prices)

    @classmethod
    def builtin(cls) -> PriceTable:
        return _builtin_table()

    def lookup(self, model: str) -> ModelPrice | None:
        """The model's prices: an exact id, else a dated snapshot's base id; None if unknown."""
        if model in self._prices:
            return self._prices[model]
        match = _SNAPSHOT.match(model)
        if match:
            return self._prices.get(match["base"])
        return None

    def knows(self, model: str) -> bool:
        return self.lookup(model) is not None

    def cost(self, model: str, usage: UsageInfo) -> RequestCost | None:
        price = self.lookup(model)
        return None if price is None else request_cost(price, usage)


@cache
def _builtin_table() -> PriceTable:
    return PriceTable(builtin_prices())


def load_pricing(raw: Mapping[str, Any] | None, *, base_url: str | None = None) -> PriceTable:
    """The price table for a session: `modelPricing` from settings over the built-in
    prices (when they apply to `base_url`). Raises ConfigError for a bad entry."""
    prices: dict[str, ModelPrice | None] = {}
    if builtin_applies(base_url):
        prices.update(builtin_prices())
    if raw:
        prices.update(parse_pricing(raw))
    return PriceTable(prices)


def request_cost(price: ModelPrice, usage: UsageInfo) -> RequestCost | None:
    """Cost of one request: tier by its input tokens; cached tokens at the cache-hit price,
    explicit-cache creation at the write price, the rest of the input at the input price."""
    prompt = max(usage.prompt_tokens, 0)
    tier = price.tier_for(prompt)
    if tier is None:
        return None
    cached = min(max(usage.cached_tokens, 0), prompt)
    created = min(max(cache_creation_tokens(usage), 0), prompt - cached)
    explicit = bool(getattr(usage, "explicit_cache", False))
    hit_price = tier.explicit_cached_input if explicit else tier.cached_input
    plain = prompt - cached - created
    usd = (
        plain * tier.input
        + cached * hit_price
        + created * tier.cache_write
        + max(usage.completion_tokens, 0) * tier.output
    ) / PER_TOKENS
    return RequestCost(
        usd=usd,
        savings_usd=cached * (tier.input - hit_price) / PER_TOKENS,
        cache_write_premium_usd=created * (tier.cache_write - tier.input) / PER_TOKENS,
    )


@dataclass(slots=True)
class CostTotals:
    """Costs summed over requests; one request of unknown cost makes the total unknown."""

    usd: float = 0.0
    savings_usd: float = 0.0
    cache_write_premium_usd: float = 0.0
    priced: int = 0
    unknown: int = 0

    def add(self, cost: RequestCost | None) -> None:
        if cost is None:
            self.unknown += 1
            return
        self.priced += 1
        self.usd += cost.usd
        self.savings_usd += cost.savings_usd
        self.cache_write_premium_usd += cost.cache_write_premium_usd

    def merge(self, other: CostTotals) -> None:
        self.usd += other.usd
        self.savings_usd += other.savings_usd
        self.cache_write_premium_usd += other.cache_write_premium_usd
        self.priced += other.priced
        self.unknown += other.unknown

    @property
    def cost_usd(self) -> float | None:
        return None if self.unknown else self.usd


def total_cost(
    model: str, usages: list[UsageInfo], pricing: PriceTable | None = None
) -> CostTotals:
    """Price each request's usage at `model`'s prices."""
    price = (pricing or PriceTable.builtin()).lookup(model)
    if price is None:
        return CostTotals(unknown=max(len(usages), 1))
    totals = CostTotals()
    for usage in usages:
        totals.add(request_cost(price, usage))
    return totals


def format_usd(amount: float) -> str:
    """`$0.0123` under a dollar, `$12.34` above."""
    return f"${amount:,.2f}" if amount >= 1 else f"${amount:.4f}"
