"""Plans and cost reports as plain-text tables and as JSON."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from qwen_code.serve.cost import CostReport
from qwen_code.serve.plan import Fit, Plan, cpu_budget_gb


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


def _source(plan: Plan) -> str:
    choice = plan.request.choice
    if choice.gguf is not None:
        return f"{choice.model.display} ({choice.gguf.path})"
    return f"{choice.model.display} {choice.variant_name.upper()} ({choice.variant.repo})"


def cpu_header(plan: Plan) -> list[str]:
    req = plan.request
    cpu, native = req.cpu, req.choice.model.native_context
    assert cpu is not None
    kv = "q8_0" if req.kv_cache_dtype == "fp8" else "F16"
    context = f"{req.context:,} tokens" if req.context else f"longest that fits (up to {native:,})"
    budget = cpu_budget_gb(req)
    return [
        f"{_source(plan)} on the CPU: {cpu.threads} threads, {cpu.ram_available_gb:.1f} GB "
        f"of RAM available",
        f"Weights {sum(req.choice.weights_gb()):,.1f} GB; KV {plan.kv_bytes_per_token:,.0f} B "
        f"per token ({kv}); RAM budget {budget:.1f} GB ({cpu.ram_available_gb:.1f} GB less "
        f"{cpu.ram_available_gb - budget:.1f} GB kept free); context: {context}",
    ]


def plan_header(plan: Plan) -> list[str]:
    req = plan.request
    if req.cpu is not None:
        return cpu_header(plan)
    choice, gpu = req.choice, req.gpus.gpu
    experts, dense, embed = choice.weights_gb()
    nodes = f" x {req.nodes} nodes" if req.nodes > 1 else ""
    kv = "FP8" if req.kv_cache_dtype == "fp8" else "BF16"
    context = f"{req.context:,} tokens" if req.context else "longest that fits (up to native)"
    clamped = ", none left" if req.usable_gb <= 0 else ""
    lines = [
        f"{_source(plan)} on {req.gpus.count}x {gpu.name} {gpu.memory_gb:g} GB{nodes}",
        f"Weights {experts + dense + embed:,.1f} GB in all; "
        f"KV {plan.kv_bytes_per_token:,.0f} B per token ({kv}); "
        f"usable per GPU {req.usable_gb:.1f} GB "
        f"({gpu.memory_gb:g} x {req.mem_fraction:g} - {req.overhead_gb:g}{clamped}); "
        f"context: {context}",
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
    per = "" if plan.request.cpu else "/GPU"
    head = ["#", "engine", "layout", f"weights{per}", f"KV B/token{per}", "KV tokens"]
    head += ["context", "seqs"]
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
        "cpu": _cpu_json(plan),
        "gguf": _gguf_json(plan),
        "layouts": [fit_json(f) for f in plan.fits],
        "notes": list(plan.notes),
    }


def _cpu_json(plan: Plan) -> dict[str, Any] | None:
    cpu = plan.request.cpu
    if cpu is None:
        return None
    return {
        "threads": cpu.threads,
        "logical_cpus": cpu.logical_cpus,
        "ram_available_gb": round(cpu.ram_available_gb, 3),
        "ram_total_gb": round(cpu.ram_total_gb, 3),
        "ram_budget_gb": round(cpu_budget_gb(plan.request), 3),
    }


def _gguf_json(plan: Plan) -> dict[str, Any] | None:
    info = plan.request.choice.gguf
    if info is None:
        return None
    return {
        "path": str(info.path),
        "name": info.name,
        "architecture": info.architecture,
        "layers": info.layers,
        "attention_heads": info.attention_heads,
        "kv_heads": info.kv_heads,
        "head_dim": info.head_dim,
        "embedding_length": info.embedding_length,
        "context_length": info.context_length,
        "experts": info.expert_count,
        "quant": info.quant,
        "file_bytes": info.file_size,
        "chat_template": info.chat_template is not None,
        "template_takes_tools": info.template_takes_tools,
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
