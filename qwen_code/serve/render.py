"""Plans and cost reports as plain-text tables and as JSON."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from qwen_code.serve.cost import CostReport
from qwen_code.serve.plan import Fit, Plan


def _table(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def plan_header(plan: Plan) -> list[str]:
    req = plan.request
    choice, gpu = req.choice, req.gpus.gpu
    experts, dense, embed = choice.weights_gb()
    nodes = f" x {req.nodes} nodes" if req.nodes > 1 else ""
    kv = "FP8" if req.kv_cache_dtype == "fp8" else "BF16"
    context = f"{req.context:,} tokens" if req.context else "longest that fits (up to native)"
    lines = [
        f"{choice.model.display} {choice.variant_name.upper()} ({choice.variant.repo}) on "
        f"{req.gpus.count}x {gpu.name} {gpu.memory_gb:g} GB{nodes}",
        f"Weights {experts + dense + embed:,.1f} GB in all; "
        f"KV {plan.kv_bytes_per_token:,.0f} B per token ({kv}); "
        f"usable per GPU {req.usable_gb:.1f} GB "
        f"({gpu.memory_gb:g} x {req.mem_fraction:g} - {req.overhead_gb:g}); context: {context}",
    ]
    if plan.yarn_factor:
        lines.append(f"YaRN factor {plan.yarn_factor:g} (native {choice.model.native_context:,}).")
    return lines


def _fit_row(rank: str, fit: Fit) -> list[str]:
    lay = fit.layout
    tokens = f"{fit.kv_tokens:,}" + (f" x{lay.pools}" if lay.pools > 1 else "")
    return [
        rank,
        lay.engine,
        lay.label(),
        f"{fit.weights_gb:.1f} GB",
        f"{fit.kv_bytes_per_token:,.0f}",
        tokens,
        f"{fit.context:,}" if fit.context else "-",
        str(fit.max_concurrency) if fit.fits else "-",
    ]


def plan_text(plan: Plan) -> str:
    lines = plan_header(plan)
    head = [
        "#",
        "engine",
        "layout",
        "weights/GPU",
        "KV B/token/GPU",
        "KV tokens",
        "context",
        "seqs",
    ]
    fitting = plan.fitting
    if fitting:
        lines += ["", "Fits (best first):"]
        rows = [head, *(_fit_row(str(i), f) for i, f in enumerate(fitting, 1))]
        lines += ["  " + line for line in _table(rows, {0, 3, 4, 5, 6, 7})]
        notes = {n for f in fitting[:1] for n in f.notes}
        lines += [f"  note: {n}" for n in sorted(notes)]
    else:
        lines += ["", "Nothing fits."]
    if plan.rejected:
        lines += ["", "Rejected:"]
        for fit in plan.rejected:
            lines.append(f"  - {fit.layout.engine} {fit.layout.label()}: {' '.join(fit.reasons)}")
    lines += [f"Note: {n}" for n in plan.notes]
    return "\n".join(lines)


def fit_json(fit: Fit) -> dict[str, Any]:
    lay = fit.layout
    return {
        "engine": lay.engine,
        "layout": lay.label(),
        "tp": lay.tp,
        "dp": lay.dp,
        "pp": lay.pp,
        "ep": lay.ep,
        "dp_attention": lay.dp_attention,
        "experts_on_cpu": lay.experts_on_cpu,
        "fits": fit.fits,
        "weights_gb_per_gpu": round(fit.weights_gb, 3),
        "usable_gb_per_gpu": round(fit.usable_gb, 3),
        "kv_bytes_per_token_per_gpu": round(fit.kv_bytes_per_token, 1),
        "kv_tokens_per_replica": fit.kv_tokens,
        "replicas": lay.pools,
        "kv_tokens_total": fit.total_kv_tokens,
        "context": fit.context,
        "max_concurrency": fit.max_concurrency,
        "cpu_ram_gb": round(fit.cpu_ram_gb, 3),
        "reasons": list(fit.reasons),
        "notes": list(fit.notes),
    }


def plan_json(plan: Plan) -> dict[str, Any]:
    req = plan.request
    return {
        "model": req.choice.name,
        "repo": req.choice.variant.repo,
        "gpu": {"type": req.gpus.gpu.name, "memory_gb": req.gpus.gpu.memory_gb},
        "gpus_per_node": req.gpus.count,
        "nodes": req.nodes,
        "context": req.context,
        "concurrency": req.concurrency,
        "kv_cache_dtype": req.kv_cache_dtype,
        "kv_bytes_per_token": plan.kv_bytes_per_token,
        "yarn_factor": plan.yarn_factor,
        "usable_gb_per_gpu": round(req.usable_gb, 3),
        "layouts": [fit_json(f) for f in plan.fits],
        "notes": list(plan.notes),
    }


def _usd(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:,.2f}" if value >= 1 else f"${value:.3f}"


def cost_text(report: CostReport) -> str:
    rows = [["option", "$/1M tokens", "$/day", "how"]]
    rows += [[o.name, _usd(o.per_million), _usd(o.per_day), o.detail] for o in report.options]
    lines = _table(rows, {1, 2})
    if report.break_even:
        lines += ["", "Break-even:", *(f"  {b}" for b in report.break_even)]
    lines += ["", "Assumptions:", *(f"  - {a}" for a in report.assumptions)]
    return "\n".join(lines)


def cost_json(report: CostReport) -> dict[str, Any]:
    req = report.request
    return {
        "tokens_per_day": req.tokens_per_day,
        "input_share": req.input_share,
        "cache_hit": req.cache_hit,
        "context": req.context,
        "model": req.choice.name,
        "gpus": req.gpus.label(),
        "utilization": req.utilization,
        "options": [asdict(o) for o in report.options],
        "figures": report.figures,
        "break_even": list(report.break_even),
        "assumptions": list(report.assumptions),
    }
