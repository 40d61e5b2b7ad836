"""Terminal output while an engine runs: the log summarised (errors, warnings, load and KV
lines), a one-line progress display while weights load, and the tail of the log on failure.
Plain text; a status line is redrawn in place only on a terminal.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections import deque
from pathlib import Path
from typing import TextIO

SHOWN = re.compile(
    r"error|exception|traceback|warn|out of memory|kv cache|maximum concurrency|"
    r"loading|loaded|uvicorn running|startup complete|server is listening|model loaded|"
    r"kv_cache\w*: size|kv buffer size",
    re.IGNORECASE,
)
QUIET = re.compile(r"\b(debug)\b", re.IGNORECASE)
TENSOR_LINES = {
    "loading tensors": re.compile(r"create_tensor:\s+loading tensor"),
    "listing tensors": re.compile(r"llama_model_loader: - tensor\s+\d+"),
}
"""llama.cpp writes a line per tensor (hundreds): counted, not shown."""
NOISE = re.compile(
    r"llama_model_loader: - (kv|type)\s|load_tensors: layer\s+\d+ assigned|"
    r"^(print_info|llm_load_print_meta|llama_context): (?!.*(error|warn))",
    re.IGNORECASE,
)
"""llama.cpp's metadata dump: neither shown nor taken as the last line."""
TENSOR_TOTAL = re.compile(r"key-value pairs and (\d+) tensors")
PERCENT = re.compile(r"(\d{1,3})%\s*\|")
KV_TOKENS = re.compile(r"KV cache size:\s*([\d,]+)\s*tokens", re.IGNORECASE)
MAX_LINE = 200


class Display:
    """Lines for the record; a status line that later lines replace."""

    def __init__(self, out: TextIO, *, tty: bool | None = None, every_s: float = 15.0) -> None:
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.every_s = every_s
        self._lock = threading.Lock()
        self._status_shown = False
        self._last_status = 0.0

    def line(self, text: str) -> None:
        with self._lock:
            self._clear()
            self.out.write(text + "\n")
            self.out.flush()

    def status(self, text: str) -> None:
        with self._lock:
            if self.tty:
                width = shutil.get_terminal_size((100, 20)).columns - 1
                self.out.write("\r" + text[:width] + "\x1b[K")
                self._status_shown = True
            elif time.monotonic() - self._last_status >= self.every_s:
                self.out.write(text + "\n")
                self._last_status = time.monotonic()
            self.out.flush()

    def done_status(self) -> None:
        with self._lock:
            self._clear()
            self.out.flush()

    def _clear(self) -> None:
        if self._status_shown:
            self.out.write("\r\x1b[K")
            self._status_shown = False


class LogFollower(threading.Thread):
    """Reads the engine's log as it grows: shows the lines that matter, remembers the last
    one and the last progress percentage for the status line."""

    def __init__(self, path: Path, display: Display, *, planned_kv_tokens: int | None = None):
        super().__init__(name="engine-log", daemon=True)
        self.path = path
        self.display = display
        self.planned_kv_tokens = planned_kv_tokens
        self.last_line = ""
        self.percent: int | None = None
        self.tensor_kind = ""
        self.tensors = 0
        """Tensor lines in the current run of them."""
        self.tensor_total: int | None = None
        self.consumed = 0
        self._stop_event = threading.Event()
        self._wake = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        self._wake.set()
        if self.is_alive():
            self.join(timeout=2)

    def catch_up(self, timeout_s: float = 2.0) -> None:
        """Wait until every line written so far is shown, so that what the engine logged
        while loading (the KV cache size) comes before the announcement that it is ready."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return
        deadline = time.monotonic() + timeout_s
        while self.is_alive() and self.consumed < size and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.01)

    def run(self) -> None:
        try:
            handle = self.path.open("rb")
        except OSError:
            return
        pending = b""
        with handle:
            while True:
                chunk = handle.read(65536)
                if chunk:
                    pending = self._feed(pending + chunk)
                    self.consumed += len(chunk)
                    continue
                self._wake.wait(0.2)
                self._wake.clear()
                if self._stop_event.is_set():
                    self._feed(handle.read() + b"\n")
                    return

    def _feed(self, data: bytes) -> bytes:
        *lines, rest = re.split(rb"[\r\n]", data)
        for raw in lines:
            self.handle_line(raw.decode("utf-8", "replace").strip())
        return rest

    def handle_line(self, line: str) -> None:
        if not line:
            return
        kind = next((k for k, p in TENSOR_LINES.items() if p.search(line)), "")
        if kind:
            self._count_tensor(kind)
            return
        self._end_tensors()
        if NOISE.search(line):
            return
        total = TENSOR_TOTAL.search(line)
        if total:
            self.tensor_total = int(total[1])
        self.last_line = line
        percent = PERCENT.search(line)
        if percent:
            self.percent = min(int(percent[1]), 100)
            return
        if SHOWN.search(line) and not QUIET.search(line):
            self.display.line("  | " + self._annotate(line)[:MAX_LINE])

    def _count_tensor(self, kind: str) -> None:
        if kind != self.tensor_kind:
            self._end_tensors()
            self.tensor_kind = kind
        self.tensors += 1
        of = f"/{self.tensor_total}" if self.tensor_total else ""
        self.last_line = f"{kind}: {self.tensors}{of}"
        if kind == "loading tensors" and self.tensor_total:
            self.percent = min(100 * self.tensors // self.tensor_total, 100)

    def _end_tensors(self) -> None:
        """After a run of tensor lines, one line that counts them."""
        if self.tensors:
            self.display.line(f"  | {self.tensor_kind}: {self.tensors} (one line each in the log)")
        self.tensors, self.tensor_kind = 0, ""

    def _annotate(self, line: str) -> str:
        match = KV_TOKENS.search(line)
        if match and self.planned_kv_tokens:
            return f"{line}  (planned: {self.planned_kv_tokens:,} tokens)"
        return line

    def progress_text(self, elapsed: float) -> str:
        done = f" {self.percent}%" if self.percent is not None else ""
        last = f": {self.last_line[:80]}" if self.last_line else ""
        return f"Loading{done}, {elapsed:.0f} s{last}"


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        with path.open("rb") as handle:
            text = handle.read()[-65536:].decode("utf-8", "replace")
    except OSError:
        return "  (no log)"
    tail: deque[str] = deque(maxlen=lines)
    left_out = 0
    for line in re.split(r"[\r\n]", text):
        if any(p.search(line) for p in TENSOR_LINES.values()) or NOISE.search(line):
            left_out += 1
        elif line.strip():
            tail.append(line.rstrip())
    if left_out:
        tail.append(f"({left_out} tensor and metadata lines left out)")
    return "\n".join(f"  {line}" for line in tail) or "  (empty log)"
