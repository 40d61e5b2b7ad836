"""From the command line's words to a plan request: which model (a catalog name, or a local
GGUF file read for its dimensions), which hardware (GPUs named or detected, else the CPU),
and, once planned, which layout to start.

`--gpus auto` never fails for want of a GPU: without nvidia-smi, or when it lists none, the
plan is for the CPU (llama.cpp). `--gpus cpu` (or `0`) asks for that directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_code.serve.catalog import (
    Catalog,
    GpuSet,
    ModelChoice,
    ServeError,
    parse_gpus,
    parse_tokens,
)
from qwen_code.serve.host import CpuHost, host_with, read_host
from qwen_code.serve.layouts import ENGINES, NO_GPU, Engine, PlanRequest
from qwen_code.serve.plan import Fit, Plan

CPU_WORDS = ("cpu", "0", "none")


@dataclass(slots=True)
class Resolved:
    request: PlanRequest
    lines: list[str] = field(default_factory=list)
    """What to tell the user before the plan (detected GPUs, the CPU, the file read)."""


def engines_for(engine: str | None) -> tuple[Engine, ...]:
    if engine is None:
        return ENGINES
    name = {"llamacpp": "llama.cpp", "llama": "llama.cpp", "llama-server": "llama.cpp"}.get(
        engine.lower(), engine.lower()
    )
    found = next((e for e in ENGINES if e == name), None)
    if found is None:
        raise ServeError(f"Unknown engine {engine!r}: use vllm, sglang or llama.cpp.")
    return (found,)


def resolve_model(
    model: str | None, gguf: str | None, catalog: Catalog
) -> tuple[ModelChoice, list[str]]:
    """A catalog choice, or a local GGUF file (`--model FILE.gguf` or `--gguf FILE`) planned
    from its own metadata; with both a catalog name and `--gguf`, the name lends its
    sampling when the architectures agree."""
    from qwen_code.serve.gguf_file import file_choice, is_gguf_path, read_gguf

    named_file = model if model and is_gguf_path(model) else None
    if named_file and gguf and Path(named_file) != Path(gguf):
        raise ServeError("Pass the GGUF file once: --model FILE.gguf or --gguf FILE.")
    file = gguf or named_file
    if not file:
        if not model:
            raise ServeError("Pass --model, e.g. --model 30b:q4_k_m or --model ./model.gguf.")
        return catalog.resolve(model), []
    path = Path(file).expanduser()
    if not path.is_file():
        raise ServeError(
            f"No such GGUF file: {file}.", hint="A --model ending in .gguf is a local file."
        )
    info = read_gguf(path)
    like = catalog.resolve(model).model if model and not named_file else None
    lines = [f"GGUF {info.describe()}"]
    if like is not None and like.architecture.replace("_", "") != info.architecture:
        lines.append(
            f"Note: the file is {info.architecture}, not {like.display}: planning from it."
        )
        like = None
    return file_choice(info, catalog, like), lines


def resolve_hardware(
    gpus: str, gpu_mem: float | None, ram: float | None, threads: int | None
) -> tuple[GpuSet, CpuHost | None, list[str]]:
    """GPUs (named, or detected for `auto`), or this machine's CPU and RAM."""
    from qwen_code.serve import gpus as gpu_detect

    spec = gpus.strip().lower()
    lines: list[str] = []
    if spec == "auto":
        try:
            found = gpu_detect.detect(gpu_mem)
        except ServeError as exc:
            why = str(exc).split("\n")[0].removeprefix("--gpus auto: ")
            lines.append(f"No GPU to use ({why.rstrip('.')}): planning for the CPU (llama.cpp).")
        else:
            lines.append(found.describe())
            lines += [f"Warning: {w}" for w in found.warnings]
            return found.gpus, None, lines
    elif spec not in CPU_WORDS:
        return parse_gpus(gpus, gpu_mem), None, lines
    host = host_with(read_host(), ram_gb=ram, threads=threads)
    lines.append(host.describe())
    return NO_GPU, host, lines


def build_request(args: dict[str, Any], tables: Path) -> Resolved:
    """The plan request for the `serve` / `serve plan` options in `args`."""
    if args["kv_cache_dtype"] not in ("auto", "fp8"):
        raise ServeError("--kv-cache-dtype is auto or fp8.")
    choice, model_lines = resolve_model(args["model"], args.get("gguf"), Catalog.load(tables))
    gpu_set, cpu, hw_lines = resolve_hardware(
        args["gpus"], args["gpu_mem"], args.get("ram"), args.get("threads")
    )
    nodes = max(args["nodes"], 1)
    if cpu is not None and nodes > 1:
        raise ServeError("The CPU plan is for one machine (llama.cpp serves from one host).")
    context = args["context"]
    request = PlanRequest(
        choice=choice,
        gpus=gpu_set,
        nodes=nodes,
        context=parse_tokens(context, binary=True) if context else None,
        concurrency=args["concurrency"],
        kv_cache_dtype=args["kv_cache_dtype"],
        engines=engines_for(args["engine"]),
        mem_fraction=args["mem_fraction"],
        cpu=cpu,
    )
    return Resolved(request, [*hw_lines, *model_lines])


# --- which layout to start --------------------------------------------------------------------


def pick_fit(plan: Plan, engine: str | None, tp: int | None, dp: int | None, ep: int | None) -> Fit:
    """The best fitting layout that matches the filters; else an error that says why."""

    def matches(fit: Fit) -> bool:
        lay = fit.layout
        wanted = (engine and engines_for(engine)[0], tp, dp, ep)
        have = (lay.engine, lay.tp, lay.dp, lay.ep)
        return all(w is None or w == h for w, h in zip(wanted, have, strict=True))

    candidates = [f for f in plan.fits if matches(f)]
    if candidates and candidates[0].fits:
        return candidates[0]
    req = plan.request
    where = "the CPU" if req.cpu else f"{req.nodes * req.gpus.count}x {req.gpus.gpu.name}"
    what = f"{req.choice.name} on {where}"
    reasons = "\n".join(
        f"  - {f.layout.engine} {f.layout.label()}: {' '.join(f.reasons)}" for f in candidates[:6]
    )
    if not candidates:
        raise ServeError(f"No layout of {what} matches --engine/--tp/--dp/--ep.")
    if plan.best is not None:
        raise ServeError(
            f"The layout asked for cannot serve {what}:",
            hint=f"{reasons}\nWithout the filters the best is {plan.best.layout.engine} "
            f"{plan.best.layout.label()}.",
        )
    raise ServeError(f"Nothing fits {what}{_shortfall(plan)}", hint=reasons)


def _shortfall(plan: Plan) -> str:
    req = plan.request
    if req.cpu is not None:
        return ":"
    total, gpu = sum(req.choice.weights_gb()), req.gpus.gpu
    if req.usable_gb <= 0:
        return (
            f": {gpu.memory_gb:g} GB per GPU leaves no room after the runtime's "
            f"~{req.overhead_gb:g} GB; the weights need {total:.1f} GB: use bigger GPUs, more "
            "of them, or the CPU plan (--gpus cpu). Every layout was rejected:"
        )
    need = math.ceil(total / req.usable_gb)
    return (
        f": the weights alone need at least {need} GPUs of {gpu.memory_gb:g} GB, and every "
        "layout was rejected:"
    )


def fit_summary(fit: Fit, plan: Plan) -> str:
    lay, cpu = fit.layout, plan.request.cpu
    seqs = f"up to {fit.max_concurrency} sequence{'' if fit.max_concurrency == 1 else 's'} at once"
    if cpu is not None:
        return (
            f"Plan: llama.cpp {lay.label()} ({cpu.threads} threads): {fit.weights_gb:.1f} GB of "
            f"weights and {fit.cpu_ram_gb - fit.weights_gb:.1f} GB of KV cache in RAM, context "
            f"{fit.context:,}, {seqs}."
        )
    return (
        f"Plan: {lay.engine} {lay.label()}: {fit.weights_gb:.1f} GB of weights per GPU, "
        f"{fit.total_kv_tokens:,} KV tokens, context {fit.context:,}, {seqs}."
    )
