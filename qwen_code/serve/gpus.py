"""`--gpus auto`: the GPUs of this machine, as nvidia-smi lists them."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from qwen_code.serve.catalog import GpuSet, GpuType, ServeError, find_gpu_type

QUERY = ("--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits")
NO_SMI_HINT = "Pass --gpus COUNTxTYPE (e.g. 8xH200) to plan for another machine."


@dataclass(frozen=True, slots=True)
class DetectedGpu:
    index: int
    name: str
    memory_mib: int


@dataclass(frozen=True, slots=True)
class Detection:
    gpus: GpuSet
    found: tuple[DetectedGpu, ...]
    warnings: tuple[str, ...] = ()

    def describe(self) -> str:
        names = sorted({g.name for g in self.found})
        return (
            f"nvidia-smi: {len(self.found)} GPU(s) ({', '.join(names)}) -> planning for "
            f"{self.gpus.count}x {self.gpus.gpu.name} {self.gpus.gpu.memory_gb:g} GB"
        )


def query_nvidia_smi(timeout_s: float = 30) -> list[DetectedGpu]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        raise ServeError(
            "--gpus auto: nvidia-smi was not found, so no NVIDIA GPU can be detected here.",
            hint=NO_SMI_HINT,
        )
    try:
        proc = subprocess.run(
            [exe, *QUERY], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServeError(
            f"--gpus auto: nvidia-smi did not answer: {exc}", hint=NO_SMI_HINT
        ) from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise ServeError(
            f"--gpus auto: nvidia-smi failed (exit {proc.returncode}): "
            f"{detail[0] if detail else 'no output'}",
            hint=NO_SMI_HINT,
        )
    return parse_query(proc.stdout)


def parse_query(text: str) -> list[DetectedGpu]:
    """Lines of `index, name, memory.total` (MiB)."""
    found = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        try:
            found.append(DetectedGpu(int(parts[0]), parts[1], int(float(parts[2]))))
        except ValueError:
            continue
    return found


def visible(found: list[DetectedGpu], env: dict[str, str] | None = None) -> list[DetectedGpu]:
    """Only the GPUs CUDA_VISIBLE_DEVICES names (by index), when it names any."""
    value = (env if env is not None else os.environ).get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return found
    wanted = {int(p) for p in value.split(",") if p.strip().isdigit()}
    if not wanted and value.strip():
        return found
    return [g for g in found if g.index in wanted]


def gpu_type_for(gpu: DetectedGpu) -> GpuType:
    """The catalog type when the name matches and the memory agrees with it (within 10%),
    else the reported memory in GiB."""
    reported_gib = gpu.memory_mib / 1024
    known = find_gpu_type(gpu.name)
    if known and 0.9 <= gpu.memory_mib * 1.048576 / 1000 / known.memory_gb <= 1.1:
        return known
    name = known.name if known else gpu.name.removeprefix("NVIDIA ").replace(" ", "-")
    cc = known.compute_capability if known else None
    return GpuType(name, round(reported_gib, 1), cc, known.tdp_w if known else None)


def detect(gpu_mem: float | None = None, env: dict[str, str] | None = None) -> Detection:
    found = visible(query_nvidia_smi(), env)
    if not found:
        raise ServeError(
            "--gpus auto: nvidia-smi lists no usable GPU (check the driver and "
            "CUDA_VISIBLE_DEVICES).",
            hint=NO_SMI_HINT,
        )
    smallest = min(found, key=lambda g: g.memory_mib)
    gpu = gpu_type_for(smallest)
    if gpu_mem is not None:
        gpu = GpuType(gpu.name, float(gpu_mem), gpu.compute_capability, gpu.tdp_w)
    warnings = []
    if len({g.name for g in found}) > 1:
        warnings.append(f"Mixed GPU types: planning with the smallest ({smallest.name}).")
    return Detection(GpuSet(len(found), gpu), tuple(found), tuple(warnings))
