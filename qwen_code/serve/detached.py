"""Detached engines: the pid files `serve --detach` writes, `serve stop` and `serve status`."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from qwen_code.serve.engines import EngineCommand, NodeCommand
from qwen_code.serve.launch import STOP_GRACE_S, port_of, probe, root_url, stop_group
from qwen_code.tools.process_group import group_alive


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


def records(run_dir: Path) -> list[tuple[Path, Record]]:
    found = []
    for path in sorted(run_dir.glob("*.json")) if run_dir.is_dir() else []:
        try:
            found.append((path, Record(**json.loads(path.read_text(encoding="utf-8")))))
        except (OSError, ValueError, TypeError):
            continue
    return found


def is_running(record: Record) -> bool:
    if not group_alive(record.pid):
        return False
    ticks = start_ticks(record.pid)
    return record.start_ticks is None or ticks is None or ticks == record.start_ticks


def stop_detached(run_dir: Path, port: int | None, grace_s: float = STOP_GRACE_S) -> list[str]:
    """Stop the detached engine on `port` (every one when None); one message each."""
    messages = []
    for path, record in records(run_dir):
        if port is not None and record.port != port:
            continue
        if is_running(record):
            stopped = stop_group(record.pid, grace_s)
            state = "stopped" if stopped else "did not stop (still alive after SIGKILL)"
        else:
            state = "was no longer running"
        path.unlink(missing_ok=True)
        messages.append(
            f"{record.engine} {record.model} on port {record.port} (pid {record.pid}) {state}."
        )
    if not messages:
        where = f" on port {port}" if port is not None else ""
        messages.append(f"No detached engine is running{where}.")
    return messages


def status_lines(run_dir: Path) -> list[str]:
    lines = []
    for path, record in records(run_dir):
        if not is_running(record):
            path.unlink(missing_ok=True)
            gone = f"{record.model} (pid {record.pid}) has exited; removed its pid file."
            lines.append(f"port {record.port}: {gone}")
            continue
        health = probe(f"{root_url(record.base_url)}/health")[0]
        state = (
            "ready" if health == 200 else f"loading or unhealthy (/health: {health or 'no answer'})"
        )
        uptime = _duration(time.time() - record.started)
        lines.append(
            f"port {record.port}: {record.engine} {record.model}, pid {record.pid}, {state}, "
            f"up {uptime}\n  OPENAI_BASE_URL={record.base_url}  log: {record.log}"
        )
    return lines or ["No detached engine is running."]


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
