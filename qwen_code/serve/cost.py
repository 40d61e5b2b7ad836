"""Self-hosting against the API for a workload (serving.md §9-§11, providers.md §3).

Self-host: the planner says how many sequences of the workload's context fit in the KV
cache; the measured decode rate at that concurrency and the measured prefill rate give the
busy GPU time per day (cached input skips prefill, as it does with an engine's prefix
cache); dividing by the utilisation gives the paid node-hours. API: DashScope's
international prices, tier chosen by the request's input size, cache hits discounted
(`qwen_code.llm.pricing`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from qwen_code.agent.events import UsageInfo
from qwen_code.llm.pricing import PriceTable, request_cost
from qwen_code.serve.catalog import GpuSet, ModelChoice, ServeError, load_table
from qwen_code.serve.plan import Fit, PlanRequest, make_plan

HOURS_PER_YEAR = 8760
UPGRADES = {"H200": "H100", "B200": "H100"}
"""GPUs at least as fast as another: that one's measurement is a lower bound for them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CostRequest:
    tokens_per_day: int
    input_share: float = 0.9
    cache_hit: float = 0.6
    """Share of input tokens served from cache (API) or the prefix cache (self-host)."""
    context: int = 65_536
    """Input tokens per request."""
    choice: ModelChoice
    gpus: GpuSet
    gpu_price: float | None = None
    """USD per GPU-hour (rental); None: the default for the GPU type."""
    utilization: float = 0.6
    power_price: float | None = None
    """USD per kWh: owned hardware (power + amortisation) instead of rental."""
    hardware_price: float | None = None
    """USD per GPU, amortised over `amortize_years` (owned hardware)."""
    amortize_years: float = 3.0
    overhead: float = 0.0
    """Extra share on top of the GPU cost (storage, egress: 0.3-0.5 per serving.md §10.1)."""
    kv_cache_dtype: str = "auto"
    decode_tok_s: float | None = None
    prefill_tok_s: float | None = None
    api_models: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    per_million: float | None
    """USD per 1M tokens of the workload's mix; None: no price."""
    per_day: float | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CostReport:
    request: CostRequest
    options: tuple[Option, ...]
    break_even: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()
    figures: dict[str, Any] = field(default_factory=dict)


def validate(req: CostRequest) -> None:
    checks = [
        (req.tokens_per_day > 0, "--tokens-per-day must be positive."),
        (0 < req.input_share < 1, "--input-share must be between 0 and 1 (exclusive)."),
        (0 <= req.cache_hit <= 1, "--cache-hit must be between 0 and 1."),
        (0 < req.utilization <= 1, "--utilization must be above 0 and at most 1."),
        (req.context > 0, "--context must be positive."),
    ]
    for ok, message in checks:
        if not ok:
            raise ServeError(message)


# --- throughput ---------------------------------------------------------------------------------


def find_throughput(
    choice: ModelChoice, gpus: GpuSet, concurrency: int
) -> tuple[str, dict[str, Any], str] | None:
    """(id, entry, note) of the measurement for this model on these GPUs, or on a slower
    GPU type (a lower bound). Every benchmark is a lower bound of what the setup can do, so
    the one with the highest decode rate at `concurrency` wins."""
    table = load_table("throughput.json")
    wanted = [gpus.gpu.name, *([UPGRADES[gpus.gpu.name]] if gpus.gpu.name in UPGRADES else [])]
    found = []
    for key, entry in table.items():
        same = (entry.get("model"), entry.get("variant")) == (choice.key, choice.variant_name)
        if same and entry.get("gpu") in wanted and entry.get("gpus") == gpus.count:
            gpu = entry["gpu"]
            note = "" if gpu == gpus.gpu.name else f"measured on {gpu}: a lower bound"
            rate = decode_at(entry["decode"], concurrency, entry.get("decode_max_tok_s"))
            found.append((rate, gpu == gpus.gpu.name, key, entry, note))
    if not found:
        return None
    _, _, key, entry, note = max(found, key=lambda f: (f[0], f[1]))
    return key, entry, note


def decode_at(points: list[dict[str, float]], concurrency: int, ceiling: float | None) -> float:
    """Output tok/s at `concurrency`: interpolated between measured points; below the first
    and above the last, scaled with the concurrency (above: up to `ceiling`, default the
    last measurement)."""
    pts = sorted((p["concurrency"], p["tok_s"]) for p in points)
    first_c, first_t = pts[0]
    if concurrency <= first_c:
        return first_t * concurrency / first_c
    for (c0, t0), (c1, t1) in itertools.pairwise(pts):
        if concurrency <= c1:
            return t0 + (t1 - t0) * (concurrency - c0) / (c1 - c0)
    last_c, last_t = pts[-1]
    return min(last_t * concurrency / last_c, ceiling if ceiling else last_t)


# --- the options --------------------------------------------------------------------------------


def node_cost_per_hour(req: CostRequest) -> tuple[float, str]:
    """(USD per node-hour, how it was made up)."""
    n, gpu = req.gpus.count, req.gpus.gpu
    if req.power_price is not None:
        if gpu.tdp_w is None:
            raise ServeError(f"No power figure for {gpu.name}: add tdp_w in gpus.json.")
        factor = float(load_table("prices.json")["system_power_factor"]["value"])
        kw = n * gpu.tdp_w * factor / 1000
        power = kw * req.power_price
        amort = (req.hardware_price or 0.0) * n / (req.amortize_years * HOURS_PER_YEAR)
        how = f"owned: {kw:.2f} kW x ${req.power_price:g}/kWh = ${power:.2f}/h"
        if req.hardware_price:
            years = f"{req.amortize_years:g} years"
            how += f" + ${req.hardware_price:,.0f}/GPU over {years} = ${amort:.2f}/h"
        return (power + amort) * (1 + req.overhead), how
    price = req.gpu_price
    if price is None:
        rental = load_table("prices.json")["rental_usd_per_gpu_hour"].get(gpu.name)
        if rental is None:
            raise ServeError(
                f"No rental price for {gpu.name}.", hint="Pass --gpu-price USD_PER_GPU_HOUR."
            )
        price = float(rental["price"])
    return n * price * (1 + req.overhead), f"rental: {n} x ${price:g}/GPU-h"


def self_host(req: CostRequest) -> tuple[Option, list[str], dict[str, Any]]:
    label = f"self-host {req.gpus.count}x {req.gpus.gpu.name}, {req.choice.name}"
    kv = "fp8" if req.kv_cache_dtype == "fp8" else "auto"
    try:
        plan = make_plan(
            PlanRequest(choice=req.choice, gpus=req.gpus, context=req.context, kv_cache_dtype=kv)
        )
    except ServeError as exc:
        return Option(label, None, None, exc.message), [], {}
    fit = plan.best
    if fit is None:
        reason = plan.rejected[0].reasons[0] if plan.rejected else "no layout"
        return Option(label, None, None, f"does not fit: {reason}"), [], {}
    rates, notes = _rates(req, fit)
    if rates is None:
        return Option(label, None, None, notes[0]), [], {}
    return _self_host_option(req, fit, label, rates, notes)


def _rates(req: CostRequest, fit: Fit) -> tuple[tuple[float, float, bool] | None, list[str]]:
    """(decode tok/s, prefill tok/s, whether they overlap), and how they were found."""
    found = find_throughput(req.choice, req.gpus, fit.max_concurrency)
    if found is None and (req.decode_tok_s is None or req.prefill_tok_s is None):
        return None, [
            f"no measured throughput for {req.choice.name} on {req.gpus.label()}: pass "
            "--decode-tok-s and --prefill-tok-s"
        ]
    notes, conc = [], fit.max_concurrency
    decode, prefill, overlap = req.decode_tok_s, req.prefill_tok_s, False
    if found:
        key, entry, lower = found
        suffix = f" ({lower})" if lower else ""
        if decode is None:
            decode = decode_at(entry["decode"], conc, entry.get("decode_max_tok_s"))
            points = ", ".join(f"{p['tok_s']:,} at C={p['concurrency']}" for p in entry["decode"])
            notes.append(
                f"decode {decode:,.1f} tok/s at {conc} concurrent sequences (the KV cache of "
                f"{fit.layout.engine} {fit.layout.label()} holds {conc} x {fit.context:,} tokens); "
                f"measured {points} [{key}: {entry['source']}]{suffix}"
            )
        if prefill is None:
            prefill = float(entry["prefill_tok_s"])
            overlap = bool(entry.get("prefill_alongside_decode"))
            notes.append(f"prefill {prefill:,.0f} tok/s: {entry.get('prefill_note', '')}{suffix}")
    assert decode is not None and prefill is not None
    notes.append(
        "Prefill overlaps decode as in the measurement (busy time = the longer of the two)."
        if overlap
        else "Prefill and decode time add up (conservative)."
    )
    return (decode, prefill, overlap), notes


def _self_host_option(
    req: CostRequest, fit: Fit, label: str, rates: tuple[float, float, bool], notes: list[str]
) -> tuple[Option, list[str], dict[str, Any]]:
    """Dedicated nodes, paid all day: as many as keep each one loaded at most `utilization`."""
    decode, prefill, overlap = rates
    out, uncached = _daily_tokens(req)
    decode_s, prefill_s = out / decode, uncached / prefill
    busy_h = (max(decode_s, prefill_s) if overlap else decode_s + prefill_s) / 3600
    node_h, how = node_cost_per_hour(req)
    nodes = max(1, math.ceil(busy_h / (24 * req.utilization)))
    per_day = nodes * 24 * node_h
    load = busy_h / (24 * nodes)
    detail = (
        f"{how}; busy {busy_h:.1f} h/day: {nodes} node{'s' if nodes > 1 else ''}, {load:.0%} loaded"
    )
    figures = {
        "decode_tok_s": decode,
        "prefill_tok_s": prefill,
        "busy_hours_per_day": busy_h,
        "node_cost_per_hour": node_h,
        "nodes": nodes,
        "concurrency": fit.max_concurrency,
        "layout": f"{fit.layout.engine} {fit.layout.label()}",
    }
    per_million = per_day / req.tokens_per_day * 1e6
    return Option(label, per_million, per_day, detail), notes, figures


def _daily_tokens(req: CostRequest) -> tuple[float, float]:
    """(output tokens, input tokens that need prefill) per day."""
    inp = req.tokens_per_day * req.input_share
    return req.tokens_per_day - inp, inp * (1 - req.cache_hit)


def api_option(req: CostRequest, model: str, table: PriceTable) -> Option:
    price = table.lookup(model)
    label = f"API {model}"
    if price is None:
        return Option(label, None, None, "no built-in price")
    out = round(req.context * (1 - req.input_share) / req.input_share)
    usage = UsageInfo(
        prompt_tokens=req.context,
        completion_tokens=out,
        cached_tokens=round(req.context * req.cache_hit),
    )
    cost = request_cost(price, usage)
    tier = price.tier_for(req.context)
    if cost is None or tier is None:
        return Option(label, None, None, f"{req.context:,}-token requests are past its last tier")
    per_million = cost.usd / (req.context + out) * 1e6
    detail = f"tier up to {tier.up_to:,} input tokens" if tier.up_to else "top tier"
    detail += f": ${tier.input:g} in / ${tier.cached_input:g} cached / ${tier.output:g} out per 1M"
    return Option(label, per_million, per_million * req.tokens_per_day / 1e6, detail)


def api_models(req: CostRequest) -> tuple[str, ...]:
    if req.api_models:
        return req.api_models
    prices = load_table("prices.json")
    own = prices.get("api_model_for", {}).get(req.choice.key)
    return (*prices.get("api_models", []), *([own] if own else []))


def compare(req: CostRequest) -> CostReport:
    validate(req)
    host, notes, figures = self_host(req)
    table = PriceTable.builtin()
    apis = [api_option(req, m, table) for m in api_models(req)]
    return CostReport(
        request=req,
        options=(host, *apis),
        break_even=tuple(break_even(req, host, figures, apis)),
        assumptions=tuple(notes + assumptions(req)),
        figures=figures,
    )


def break_even(
    req: CostRequest, host: Option, figures: dict[str, Any], apis: list[Option]
) -> list[str]:
    """Where one dedicated node costs what the API does (serving.md §11)."""
    if host.per_million is None or not figures:
        return []
    node_day = figures["node_cost_per_hour"] * 24
    capacity = req.tokens_per_day * 24 / figures["busy_hours_per_day"]
    full_load = node_day / capacity * 1e6
    lines = [
        f"One node costs ${node_day:,.2f}/day and serves at most {capacity:,.0f} tokens/day "
        f"of this mix (${full_load:.2f} per 1M tokens at full load)."
    ]
    for api in apis:
        if api.per_million is not None:
            lines.append(_break_even_line(req, api, node_day / api.per_million * 1e6, capacity))
    return lines


def _break_even_line(req: CostRequest, api: Option, volume: float, capacity: float) -> str:
    share = volume / capacity
    if share > 1:
        return (
            f"vs {api.name}: the API is cheaper at any volume (break-even needs {share:.0%} load)."
        )
    where = f"self-hosting wins above {volume:,.0f} tokens/day ({share:.0%} load"
    if share > req.utilization:
        return f"vs {api.name}: {where}, above the {req.utilization:.0%} assumed)."
    return f"vs {api.name}: {where})."


def assumptions(req: CostRequest) -> list[str]:
    out, uncached = _daily_tokens(req)
    return [
        f"{req.tokens_per_day:,} tokens/day: {req.tokens_per_day - out:,.0f} input "
        f"({req.cache_hit:.0%} cached, {uncached:,.0f} to prefill) and {out:,.0f} output, "
        f"in requests of {req.context:,} input tokens.",
        "Cached input skips prefill. Long contexts slow each decode step, which short-prompt "
        "benchmarks do not show: measure your own and pass --decode-tok-s/--prefill-tok-s.",
        f"Self-host: dedicated nodes paid all day, each loaded at most {req.utilization:.0%} "
        "on average (traffic has peaks).",
        "API: DashScope international prices (USD), every token of a request billed at the "
        "tier of its input size; cache hits at the implicit-cache price.",
    ]
