"""The planner: which engine and parallel layout fit a model on some GPUs, and how much
KV cache is left. Pure functions over the catalog (serving.md §3 and §8).

    usable_per_gpu  = gpu_mem * mem_fraction - overhead
    weights_per_gpu = experts / (moe_group * PP) + (dense + embeddings) / (TP_attn * PP)
    kv_per_tok_gpu  = 2 * L_kv * kv_heads * head_dim * kv_bytes / PP / min(TP_attn, kv_heads)
    kv_tokens       = (usable_per_gpu - weights_per_gpu) / kv_per_tok_gpu   # per KV pool
    FP8:            (moe_intermediate_size / expert_TP) % 128 == 0, expert_TP = moe_group / EP

A KV pool is one replica's cache: a TP group, or one DP rank when attention is replicated.
Layouts and their structural checks are in `layouts.py`.

The CPU plan (no GPU: llama.cpp with `--n-gpu-layers 0`) sizes against system RAM:

    budget   = MemAvailable - max(2 GB, 10%)     # the OS, other programs, compute buffers
    context  = min(native, (budget - weights) / (kv_per_token * parallel)), in 1,024 steps
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from qwen_code.serve.catalog import GB, ModelChoice, ServeError
from qwen_code.serve.gguf_file import template_note
from qwen_code.serve.layouts import (
    ENGINES,
    Engine,
    Layout,
    PlanRequest,
    engine_layouts,
    engine_serves,
    structure_problems,
)

__all__ = ["ENGINES", "Engine", "Fit", "Layout", "Plan", "PlanRequest", "make_plan"]

CONTEXT_LADDER = (262_144, 131_072, 65_536, 32_768)
"""Contexts tried, largest first, when none is asked for (never past the native window)."""
LLAMA_Q8_BYTES = 34 / 32
"""llama.cpp q8_0 KV cache: 32 int8 values and one fp16 scale per block."""
CPU_RESERVE_GB = 2.0
CPU_RESERVE_SHARE = 0.10
"""RAM left to the OS, other programs and llama.cpp's compute buffers: the larger of the two."""
CPU_MIN_CONTEXT = 2048
"""Below this a coding agent's system prompt and tools do not fit."""
CONTEXT_STEP = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Fit:
    """One layout, sized: it fits, or the reasons it does not."""

    layout: Layout
    fits: bool
    weights_gb: float = 0.0
    """Per GPU."""
    usable_gb: float = 0.0
    kv_bytes_per_token: float = 0.0
    """Per GPU."""
    kv_tokens: int = 0
    """Per KV pool (a replica, or a DP rank)."""
    context: int | None = None
    max_concurrency: int = 0
    """Sequences of `context` tokens that fit, all pools together."""
    cpu_ram_gb: float = 0.0
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def total_kv_tokens(self) -> int:
        return self.kv_tokens * self.layout.pools


@dataclass(frozen=True, slots=True)
class Plan:
    request: PlanRequest
    fits: tuple[Fit, ...]
    """Fitting layouts first, best first; then the rejected ones."""
    kv_bytes_per_token: float
    """Whole model, one token, at the KV dtype."""
    yarn_factor: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def best(self) -> Fit | None:
        return self.fits[0] if self.fits and self.fits[0].fits else None

    @property
    def fitting(self) -> tuple[Fit, ...]:
        return tuple(f for f in self.fits if f.fits)

    @property
    def rejected(self) -> tuple[Fit, ...]:
        return tuple(f for f in self.fits if not f.fits)


def make_plan(req: PlanRequest) -> Plan:
    """Size every layout of every engine asked for; rank the ones that fit."""
    if req.context is not None and req.context < 1:
        raise ServeError("--context must be a positive number of tokens.")
    yarn = yarn_factor(req.choice, req.context)
    if req.cpu is not None:
        return make_cpu_plan(req, yarn)
    fits = [size_layout(req, lay) for engine in req.engines for lay in engine_layouts(req, engine)]
    ranked = sorted((f for f in fits if f.fits), key=_rank)
    return Plan(
        request=req,
        fits=(*ranked, *(f for f in fits if not f.fits)),
        kv_bytes_per_token=full_kv_bytes(req, "vllm"),
        yarn_factor=yarn,
        notes=tuple(plan_notes(req)),
    )


_ENGINE_ORDER = {e: i for i, e in enumerate(ENGINES)}


def _rank(fit: Fit) -> tuple[bool, int, int, int, float]:
    """All on the GPUs before experts on the CPU; then the longest context, the most
    concurrent sequences, the engine order, the lightest."""
    lay = fit.layout
    context, engine = -(fit.context or 0), _ENGINE_ORDER[lay.engine]
    return (lay.experts_on_cpu, context, -fit.max_concurrency, engine, fit.weights_gb)


def yarn_factor(choice: ModelChoice, context: int | None) -> float | None:
    """The static YaRN factor a context past the native window needs (a power of two,
    qwen3-coder.md §2), or None within the native window."""
    model = choice.model
    if context is None or context <= model.native_context:
        return None
    if model.yarn is None:
        raise ServeError(
            f"{model.display} has no published YaRN setting: its longest context is "
            f"{model.native_context:,} tokens (asked for {context:,})."
        )
    factor = float(2 ** math.ceil(math.log2(context / model.native_context)))
    if factor > model.yarn.max_factor:
        limit = int(model.native_context * model.yarn.max_factor)
        raise ServeError(
            f"{context:,} tokens is past what YaRN reaches for {model.display}: at most "
            f"{limit:,} (factor {model.yarn.max_factor:g} x {model.native_context:,})."
        )
    return factor


def plan_notes(req: PlanRequest) -> list[str]:
    notes = []
    variant, gpu = req.choice.variant, req.gpus.gpu
    if variant.quant_block and gpu.compute_capability is not None and not gpu.native_fp8:
        notes.append(
            "Block-wise FP8 runs natively from compute capability 9.0 (H100 and newer); "
            f"{gpu.name} is {gpu.compute_capability:g}: expect a slower fallback, or use BF16."
        )
    skipped = [e for e in req.engines if not engine_serves(e, req.choice)]
    if skipped and req.cpu is None:
        kind = "GGUF files" if req.choice.is_gguf else "safetensors (BF16/FP8) checkpoints"
        notes.append(f"Not planned: {', '.join(skipped)} (they do not serve {kind}).")
    if req.context and req.context > req.choice.model.native_context:
        notes.append(
            "Static YaRN lowers quality on short prompts: use it only when you need the length."
        )
    template = template_note(req.choice.gguf) if req.choice.gguf else None
    return [*notes, template] if template else notes


# --- sizing -----------------------------------------------------------------------------------


def full_kv_bytes(req: PlanRequest, engine: Engine) -> float:
    """KV bytes of one token for the whole model (serving.md §8.1)."""
    model = req.choice.model
    per = 2.0
    if req.kv_cache_dtype == "fp8":
        per = LLAMA_Q8_BYTES if engine == "llama.cpp" else 1.0
    return 2 * model.kv_layers * model.kv_heads * model.head_dim * per


def per_gpu_memory(req: PlanRequest, lay: Layout) -> tuple[float, float, float, float]:
    """(weights GB, KV bytes per token, fixed bytes per sequence, system RAM GB) per GPU."""
    experts, dense, embed = req.choice.weights_gb()
    model = req.choice.model
    kv, state = full_kv_bytes(req, lay.engine), float(model.recurrent_state_bytes)
    if lay.engine == "llama.cpp":
        n = lay.gpus
        on_gpu = dense + embed + (0.0 if lay.experts_on_cpu else experts)
        return on_gpu / n, kv / n, state / n, experts if lay.experts_on_cpu else 0.0
    weights = experts / (lay.moe_group * lay.pp) + (dense + embed) / (lay.attn_tp * lay.pp)
    kv_gpu = kv / lay.pp / min(lay.attn_tp, model.kv_heads)
    state_gpu = state / lay.pp / min(lay.attn_tp, max(model.linear_v_heads, 1))
    return weights, kv_gpu, state_gpu, 0.0


def size_layout(req: PlanRequest, lay: Layout) -> Fit:
    weights, kv, state, ram = per_gpu_memory(req, lay)
    usable = req.usable_gb
    fit = Fit(
        layout=lay,
        fits=False,
        weights_gb=weights,
        usable_gb=usable,
        kv_bytes_per_token=kv,
        cpu_ram_gb=ram,
        notes=tuple(layout_notes(req, lay)),
    )
    problems = structure_problems(req, lay)
    if problems:
        return replace(fit, reasons=tuple(problems))
    free = (usable - weights) * GB
    if free <= 0:
        return replace(fit, reasons=(oom_reason(req, weights),))
    fit = replace(fit, kv_tokens=int(free // kv))

    def seqs(context: int) -> int:
        return int(free // (context * kv + state)) * lay.pools

    context = choose_context(req, seqs)
    if context is None:
        return replace(fit, reasons=(kv_reason(req, fit, seqs),))
    return replace(fit, fits=True, context=context, max_concurrency=seqs(context))


def context_ladder(req: PlanRequest) -> list[int]:
    native = req.choice.model.native_context
    return sorted({native, *(c for c in CONTEXT_LADDER if c < native)}, reverse=True)


def choose_context(req: PlanRequest, seqs: Callable[[int], int]) -> int | None:
    """The asked-for context if enough sequences fit, else (none asked) the longest that does."""
    need = req.concurrency or 1
    candidates = [req.context] if req.context else context_ladder(req)
    return next((c for c in candidates if seqs(c) >= need), None)


def oom_reason(req: PlanRequest, weights: float) -> str:
    gpu = req.gpus.gpu
    if req.usable_gb <= 0:
        return (
            f"{gpu.memory_gb:g} GB per GPU leaves no room after the runtime's "
            f"~{req.overhead_gb:g} GB; the weights need {weights:.1f} GB per GPU: use bigger "
            "GPUs, more of them, or the CPU plan (--gpus cpu)."
        )
    return (
        f"Out of memory: weights need {weights:.1f} GB per GPU, {req.usable_gb:.1f} GB usable "
        f"({gpu.memory_gb:g} GB x {req.mem_fraction:g} - {req.overhead_gb:g} GB); "
        f"short by {weights - req.usable_gb:.1f} GB."
    )


def kv_reason(req: PlanRequest, fit: Fit, seqs: Callable[[int], int]) -> str:
    wanted = req.context or context_ladder(req)[-1]
    pools = fit.layout.pools
    where = f"{fit.kv_tokens:,} tokens per replica" + (f" x {pools}" if pools > 1 else "")
    if req.concurrency and seqs(wanted) >= 1:
        return (
            f"The KV cache ({where}) holds {seqs(wanted)} sequences of {wanted:,} tokens; "
            f"--concurrency {req.concurrency} needs more."
        )
    smallest = "" if req.context else " (the shortest context tried)"
    hint = "; try --kv-cache-dtype fp8" if req.kv_cache_dtype == "auto" else ""
    return (
        f"Weights fit ({fit.weights_gb:.1f} of {fit.usable_gb:.1f} GB per GPU), but the KV "
        f"cache holds only {where}: less than one {wanted:,}-token sequence{smallest}{hint}."
    )


def layout_notes(req: PlanRequest, lay: Layout) -> list[str]:
    model, notes = req.choice.model, []
    if lay.engine != "llama.cpp" and lay.attn_tp > model.kv_heads:
        copies = lay.attn_tp // model.kv_heads
        notes.append(
            f"KV heads ({model.kv_heads}) fewer than TP {lay.attn_tp}: each is replicated on "
            f"{copies} GPUs, so KV per GPU stops shrinking."
        )
    if lay.engine == "vllm" and lay.dp > 1:
        notes.append("vLLM counts --max-num-seqs per DP rank.")
    if lay.engine == "sglang" and lay.dp > 1 and not lay.dp_attention:
        notes.append(f"SGLang balances its {lay.dp} replicas itself (--dp).")
    if lay.engine == "sglang" and req.nodes > 1:
        notes.append(f"TP spans {req.nodes} nodes: needs a fast interconnect (InfiniBand).")
    if lay.experts_on_cpu:
        ram = req.choice.weights_gb()[0]
        notes.append(
            f"Routed experts stay in system RAM (about {ram:.1f} GB, -ot '.ffn_.*_exps.=CPU'): "
            "decode speed follows the CPU's memory bandwidth."
        )
    return notes


# --- the CPU plan -----------------------------------------------------------------------------


def cpu_budget_gb(req: PlanRequest) -> float:
    """RAM the weights and the KV cache may take, never below 0."""
    ram = req.cpu.ram_available_gb if req.cpu else 0.0
    return max(ram - max(CPU_RESERVE_GB, ram * CPU_RESERVE_SHARE), 0.0)


def make_cpu_plan(req: PlanRequest, yarn: float | None) -> Plan:
    """One layout: every layer on the CPU, the longest context the RAM holds."""
    if "llama.cpp" not in req.engines:
        names = " and ".join({"vllm": "vLLM", "sglang": "SGLang"}[e] for e in req.engines)
        raise ServeError(
            f"{names} {'need' if len(req.engines) > 1 else 'needs'} a GPU: on the CPU "
            "qwen-code serves GGUF files with llama.cpp (--engine llama.cpp, or leave "
            "--engine out)."
        )
    if not req.choice.is_gguf:
        variants = req.choice.model.variants
        ggufs = [f"{req.choice.key}:{n}" for n, v in variants.items() if v.format == "gguf"]
        other = f" ({', '.join(ggufs)})" if ggufs else ""
        raise ServeError(
            f"{req.choice.name} is a safetensors checkpoint, which vLLM and SGLang serve on "
            f"GPUs. On the CPU qwen-code serves GGUF files with llama.cpp: pick a GGUF "
            f"variant{other} or pass --model FILE.gguf."
        )
    fit = size_cpu(req, Layout(engine="llama.cpp", gpus=0, on_cpu=True))
    return Plan(
        request=req,
        fits=(fit,),
        kv_bytes_per_token=full_kv_bytes(req, "llama.cpp"),
        yarn_factor=yarn,
        notes=tuple(plan_notes(req)),
    )


def size_cpu(req: PlanRequest, lay: Layout) -> Fit:
    weights, budget = sum(req.choice.weights_gb()), cpu_budget_gb(req)
    kv, state = full_kv_bytes(req, "llama.cpp"), float(req.choice.model.recurrent_state_bytes)
    fit = Fit(layout=lay, fits=False, weights_gb=weights, usable_gb=budget, kv_bytes_per_token=kv)
    free = (budget - weights) * GB
    if free <= 0:
        return replace(fit, reasons=(cpu_oom_reason(req, weights, budget),))
    fit = replace(fit, kv_tokens=int(free // kv))
    parallel = req.concurrency or 1
    if req.context:
        context: int = req.context
    else:
        per_seq = (free / parallel - state) / kv
        context = min(req.choice.model.native_context, int(per_seq) // CONTEXT_STEP * CONTEXT_STEP)
    seqs = int(free // (context * kv + state))
    if seqs < parallel or (not req.context and context < CPU_MIN_CONTEXT):
        return replace(fit, reasons=(cpu_kv_reason(req, fit, context, seqs),))
    ram = weights + parallel * (context * kv + state) / GB
    return replace(fit, fits=True, context=context, max_concurrency=seqs, cpu_ram_gb=ram)


def cpu_kv_reason(req: PlanRequest, fit: Fit, context: int, seqs: int) -> str:
    room = f"the KV cache holds {fit.kv_tokens:,} tokens"
    if req.context and req.concurrency and seqs >= 1:
        return (
            f"After the weights ({fit.weights_gb:.1f} of {fit.usable_gb:.1f} GB of RAM) {room}: "
            f"{seqs} sequences of {context:,} tokens; --concurrency {req.concurrency} needs more."
        )
    wanted = req.context or CPU_MIN_CONTEXT
    hint = "; try --kv-cache-dtype fp8" if req.kv_cache_dtype == "auto" else ""
    return (
        f"Weights fit ({fit.weights_gb:.1f} of {fit.usable_gb:.1f} GB of RAM), but {room}: "
        f"less than {req.concurrency or 1} x {wanted:,}{hint}."
    )


def cpu_oom_reason(req: PlanRequest, weights: float, budget: float) -> str:
    ram = req.cpu.ram_available_gb if req.cpu else 0.0
    return (
        f"Out of memory: the weights need {weights:.1f} GB of RAM, {budget:.1f} GB usable "
        f"({ram:.1f} GB available, less {ram - budget:.1f} GB kept free); short by "
        f"{weights - budget:.1f} GB: close programs, or use a smaller quant."
    )
