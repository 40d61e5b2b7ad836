"""Detached engines: the pid files `serve --detach` writes, `serve stop` and `serve status`."""

from __future__ import annotations

import json
import time
from pathlib import Path

from qwen_code.processes import group_alive, stop_group
from qwen_code.serve.launch import STOP_GRACE_S, probe, root_url
from qwen_code.serve.records import Record, start_ticks


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
