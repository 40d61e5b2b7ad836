"""Detached engines: the pid files `serve --detach` writes, `serve stop` and `serve status`."""

from __future__ import annotations

import json
import time
from pathlib import Path

from qwen_code.llm.server_cards import remove_card
from qwen_code.processes import group_alive, stop_group
from qwen_code.serve.catalog import ServeError
from qwen_code.serve.launch import STOP_GRACE_S, ReadyProbe, argv_key
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


def stop_detached(
    run_dir: Path,
    port: int | None,
    grace_s: float = STOP_GRACE_S,
    cards_home: Path | None = None,
) -> list[str]:
    """Stop the detached engine on `port` (every one when None); one message each. Its
    server card (in `cards_home`) goes with it."""
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
        if cards_home is not None:
            remove_card(cards_home, record.base_url)
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
        state = _state(record.base_url, argv_key(record.argv))
        uptime = _duration(time.time() - record.started)
        lines.append(
            f"port {record.port}: {record.engine} {record.model}, pid {record.pid}, {state}, "
            f"up {uptime}\n  OPENAI_BASE_URL={record.base_url}  log: {record.log}"
        )
    return lines or ["No detached engine is running."]


def _state(base_url: str, api_key: str | None) -> str:
    readiness = ReadyProbe(base_url, api_key)
    try:
        return "ready" if readiness.ready() else f"loading or unhealthy ({readiness.detail})"
    except ServeError:
        return "not an OpenAI-compatible engine (404 on /health and /v1/models)"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
