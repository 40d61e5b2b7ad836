"""Parallel layouts: which (engine, TP, DP, PP, EP) shapes to try for a model on some
GPUs, and the structural checks that rule some out before any memory is counted
(attention and KV heads per TP rank, experts per EP rank, FP8 block divisibility,
serving.md §3). Pure functions; sizing is in `plan.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from qwen_code.serve.catalog import GpuSet, GpuType, ModelChoice

if TYPE_CHECKING:
    from qwen_code.serve.host import CpuHost

Engine = Literal["vllm", "sglang", "llama.cpp"]
ENGINES: tuple[Engine, ...] = ("vllm", "sglang", "llama.cpp")
NO_GPU = GpuSet(0, GpuType("CPU", 0.0))
"""The `gpus` of a CPU plan."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRequest:
    choice: ModelChoice
    gpus: GpuSet
    """GPUs per node."""
    nodes: int = 1
    context: int | None = None
    """Tokens per sequence; None: the largest of CONTEXT_LADDER that fits (up to native)."""
    concurrency: int | None = None
    """Sequences that must fit at `context` at once, across all replicas."""
    kv_cache_dtype: Literal["auto", "fp8"] = "auto"
    engines: tuple[Engine, ...] = ENGINES
    mem_fraction: float = 0.90
    overhead_gb: float = 3.0
    """Per GPU, for activations and CUDA graphs."""
    cpu: CpuHost | None = None
    """Set for a CPU plan (llama.cpp, no GPU): the RAM and threads to size for."""

    @property
    def total_gpus(self) -> int:
        return self.gpus.count * self.nodes

    @property
    def usable_gb(self) -> float:
        """Per GPU, never below 0 (a small --gpu-mem leaves nothing after the overhead)."""
        return max(self.gpus.gpu.memory_gb * self.mem_fraction - self.overhead_gb, 0.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    engine: Engine
    tp: int = 1
    dp: int = 1
    pp: int = 1
    ep: int = 1
    """Expert-parallel size; 1 = off."""
    dp_attention: bool = False
    """SGLang --enable-dp-attention: attention replicated over the DP ranks of one TP group."""
    experts_on_cpu: bool = False
    """llama.cpp: routed experts kept in system RAM."""
    on_cpu: bool = False
    """llama.cpp with no GPU at all (`--n-gpu-layers 0`)."""
    gpus: int = 1
    """All GPUs the layout uses (every node)."""

    @property
    def attn_tp(self) -> int:
        return self.tp // self.dp if self.dp_attention else self.tp

    @property
    def moe_group(self) -> int:
        """GPUs one layer's experts are spread over (vLLM: the DP x TP group)."""
        return self.tp * self.dp if self.engine == "vllm" else self.tp

    @property
    def pools(self) -> int:
        return 1 if self.engine == "llama.cpp" else self.gpus // (self.attn_tp * self.pp)

    def label(self) -> str:
        if self.on_cpu:
            return "all layers on the CPU"
        if self.engine == "llama.cpp":
            where = "experts on CPU, rest" if self.experts_on_cpu else "all layers"
            return f"{where} on {self.gpus} GPU{'s' if self.gpus > 1 else ''}"
        parts = [f"TP{self.tp}"] if self.tp > 1 or self.dp == 1 else []
        if self.dp_attention:
            parts.append(f"DP-attention {self.dp}")
        elif self.dp > 1:
            parts.append(f"DP{self.dp}")
        if self.pp > 1:
            parts.append(f"PP{self.pp}")
        text = " x ".join(parts) if not self.dp_attention else " + ".join(parts)
        return f"{text} + EP{self.ep}" if self.ep > 1 else text


def engine_serves(engine: Engine, choice: ModelChoice) -> bool:
    """vLLM and SGLang serve safetensors checkpoints, llama.cpp GGUF files."""
    return (engine == "llama.cpp") == choice.is_gguf


# --- layouts ----------------------------------------------------------------------------------


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def engine_layouts(req: PlanRequest, engine: Engine) -> list[Layout]:
    if not engine_serves(engine, req.choice):
        return []
    if engine == "vllm":
        return vllm_layouts(req)
    if engine == "sglang":
        return sglang_layouts(req)
    return llama_layouts(req)


def vllm_layouts(req: PlanRequest) -> list[Layout]:
    """TP within a node, DP over the rest (across nodes too); with more than one node also
    TP = GPUs per node x PP = nodes (Ray). EP on and off for MoE models."""
    n, per_node, moe = req.total_gpus, req.gpus.count, req.choice.model.experts > 0
    shapes = [(tp, n // tp, 1) for tp in sorted(_divisors(per_node), reverse=True)]
    if req.nodes > 1:
        shapes.insert(0, (per_node, 1, req.nodes))
    layouts = []
    for tp, dp, pp in shapes:
        base = Layout(engine="vllm", tp=tp, dp=dp, pp=pp, gpus=n)
        layouts.append(base)
        if moe and tp * dp > 1:
            layouts.append(replace(base, ep=tp * dp))
    return layouts


def sglang_layouts(req: PlanRequest) -> list[Layout]:
    """TP over all GPUs (across nodes with --nnodes), with EP sizes and DP attention; on
    one node also smaller TP groups as DP replicas."""
    n = req.total_gpus
    tps = [n] if req.nodes > 1 else sorted(_divisors(n), reverse=True)
    layouts = []
    for tp in tps:
        for ep in _sglang_eps(req, tp):
            layouts.append(Layout(engine="sglang", tp=tp, dp=n // tp, ep=ep, gpus=n))
    if req.choice.model.experts and n > 1:
        for ep in _sglang_eps(req, n):
            layouts.append(Layout(engine="sglang", tp=n, dp=n, ep=ep, dp_attention=True, gpus=n))
    return layouts


def _sglang_eps(req: PlanRequest, tp: int) -> list[int]:
    """EP off, the smallest EP that passes the FP8 check, and EP = TP."""
    if not req.choice.model.experts or tp == 1:
        return [1]
    eps = [1]
    if _expert_tp_problem(req, tp):
        eps += [ep for ep in _divisors(tp)[1:-1] if not _expert_tp_problem(req, tp // ep)][:1]
    return [*eps, tp]


def llama_layouts(req: PlanRequest) -> list[Layout]:
    n = req.total_gpus
    full = Layout(engine="llama.cpp", gpus=n)
    return [full, replace(full, experts_on_cpu=True)] if req.choice.model.experts else [full]


# --- checks -----------------------------------------------------------------------------------


def structure_problems(req: PlanRequest, lay: Layout) -> list[str]:
    """Reasons the layout cannot be started at all (before memory)."""
    if lay.engine == "llama.cpp":
        if req.nodes > 1:
            return ["llama.cpp serves from one machine (its RPC backend is a proof of concept)."]
        return []
    model, tp = req.choice.model, lay.attn_tp
    problems = []
    if model.attention_heads % tp:
        problems.append(f"{model.attention_heads} attention heads do not split over TP {tp}.")
    if tp > model.kv_heads and tp % model.kv_heads:
        problems.append(
            f"KV heads ({model.kv_heads}) fewer than TP {tp}, and {tp} is not a multiple of "
            f"{model.kv_heads}: the heads cannot be replicated evenly."
        )
    elif tp < model.kv_heads and model.kv_heads % tp:
        problems.append(f"{model.kv_heads} KV heads do not split over TP {tp}.")
    if model.experts and lay.ep > 1 and model.experts % lay.ep:
        problems.append(f"{model.experts} experts do not split over EP {lay.ep}.")
    if model.experts:
        problem = _expert_tp_problem(req, lay.moe_group // lay.ep)
        problems += [f"{problem} {_ep_fix(req, lay)}"] if problem else []
    return problems


def _expert_tp_problem(req: PlanRequest, expert_tp: int) -> str | None:
    cols, block = req.choice.model.moe_intermediate_size, req.choice.variant.quant_block
    if expert_tp == 1:
        return None
    if cols % expert_tp:
        return f"moe_intermediate_size {cols} does not split over expert TP {expert_tp}."
    if block and (cols // expert_tp) % block:
        valid = [t for t in _divisors(cols // block) if cols % t == 0 and (cols // t) % block == 0]
        return (
            f"FP8 block divisibility: {cols}/{expert_tp} = {cols // expert_tp}, not a multiple of "
            f"{block} (the engine fails: 'output_size ... = {cols // expert_tp} is not divisible "
            f"by weight quantization block_n = {block}'); expert TP must be one of "
            f"{', '.join(map(str, valid))}."
        )
    return None


def _ep_fix(req: PlanRequest, lay: Layout) -> str:
    if lay.engine == "vllm":
        return "Turn on expert parallel (--enable-expert-parallel, the +EP layout)."
    return "Use a larger --ep."
