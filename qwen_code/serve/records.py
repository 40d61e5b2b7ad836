"""The record a detached engine leaves in the run directory (`serve --detach`), read back
by `serve stop` and `serve status`."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from qwen_code.serve.engines import EngineCommand, NodeCommand, port_of


@dataclass(frozen=True, slots=True)
class Record:
    """What `serve stop` and `serve status` know about a detached engine."""

    pid: int
    port: int
    engine: str
    model: str
    base_url: str
    log: str
    started: float
    start_ticks: int | None
    argv: list[str]


def start_ticks(pid: int) -> int | None:
    """The process's start time (clock ticks since boot): tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[19]) if len(fields) > 19 else None


def write_record(
    run_dir: Path, command: EngineCommand, node: NodeCommand, pid: int, log: Path
) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    port = port_of(command)
    record = Record(
        pid=pid,
        port=port,
        engine=command.engine,
        model=command.served_name,
        base_url=command.base_url,
        log=str(log),
        started=time.time(),
        start_ticks=start_ticks(pid),
        argv=list(node.argv),
    )
    path = run_dir / f"{port}.json"
    path.write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
    return path
