"""This machine's CPU side, for the CPU plan: the memory free for a model (MemAvailable in
/proc/meminfo) and the threads to run it on (the CPUs this process may use, one per physical
core: llama.cpp decodes no faster on the second thread of a core, and often slower).

The readers take their sources as arguments so that another machine can be described.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MEMINFO = Path("/proc/meminfo")
CPUINFO = Path("/proc/cpuinfo")
KIB = 1024


@dataclass(frozen=True, slots=True)
class CpuHost:
    """What a CPU plan sizes for."""

    ram_available_gb: float
    """Memory free for the engine now (GB = 1e9 bytes)."""
    ram_total_gb: float
    threads: int
    """Threads for llama.cpp (`--threads`)."""
    logical_cpus: int = 0
    source: str = ""
    """Where the figures came from, for the plan's header."""

    def describe(self) -> str:
        cpus = f" of {self.logical_cpus} CPUs" if self.logical_cpus > self.threads else ""
        return (
            f"CPU: {self.threads} threads{cpus}, {self.ram_available_gb:.1f} GB of "
            f"{self.ram_total_gb:.1f} GB RAM available{self.source}"
        )


def parse_meminfo(text: str) -> tuple[float, float]:
    """(available GB, total GB) from /proc/meminfo's text. Kernels before 3.14 have no
    MemAvailable: free + buffers + page cache stands in for it."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key.strip()] = int(parts[0]) * KIB
    total = values.get("MemTotal", 0)
    available = values.get("MemAvailable")
    if available is None:
        available = sum(values.get(k, 0) for k in ("MemFree", "Buffers", "Cached"))
    return available / 1e9, total / 1e9


def usable_cpus() -> set[int]:
    """The CPUs this process may run on (its affinity: a container's or taskset's limit)."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def physical_cores(cpuinfo_text: str, cpus: set[int]) -> int:
    """Distinct (package, core) pairs among `cpus`; 0 when /proc/cpuinfo does not say
    (some ARM and virtual machines list no core ids)."""
    cores: set[tuple[str, str]] = set()
    for block in cpuinfo_text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        processor = fields.get("processor", "")
        if not processor.isdigit() or int(processor) not in cpus or "core id" not in fields:
            continue
        cores.add((fields.get("physical id", "0"), fields["core id"]))
    return len(cores)


def read_host(
    meminfo: Path = MEMINFO, cpuinfo: Path = CPUINFO, cpus: set[int] | None = None
) -> CpuHost:
    """This machine (or the files given): RAM available and threads to use."""
    try:
        available, total = parse_meminfo(meminfo.read_text(encoding="utf-8"))
    except OSError:
        available = total = 0.0
    usable = usable_cpus() if cpus is None else cpus
    try:
        cores = physical_cores(cpuinfo.read_text(encoding="utf-8"), usable)
    except OSError:
        cores = 0
    threads = cores if 0 < cores <= len(usable) else len(usable)
    return CpuHost(available, total, max(threads, 1), len(usable), f" ({meminfo})")


def host_with(host: CpuHost, *, ram_gb: float | None, threads: int | None) -> CpuHost:
    """`--ram` and `--threads` over what was read (planning for another machine)."""
    if ram_gb is None and threads is None:
        return host
    return CpuHost(
        ram_available_gb=host.ram_available_gb if ram_gb is None else ram_gb,
        ram_total_gb=host.ram_total_gb if ram_gb is None else ram_gb,
        threads=host.threads if threads is None else max(threads, 1),
        logical_cpus=host.logical_cpus,
        source=host.source if ram_gb is None else " (--ram)",
    )
