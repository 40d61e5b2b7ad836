"""Reading a command's output file back: a head and tail excerpt within the caps.

Small files are read whole and cut with `truncate_text`; big ones are never read whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qwen_code.tools.base import ToolLimits, truncate_text

WHOLE_READ_BYTES = 4 * 1024 * 1024
"""Outputs up to this size are read whole; larger ones only in a head and a tail chunk."""


@dataclass(slots=True, frozen=True)
class Excerpt:
    text: str
    truncated: bool
    total_bytes: int
    total_lines: int


def read_output(path: Path, limits: ToolLimits) -> Excerpt:
    """The output capped to the limits (head and tail). Small files are read whole and
    cut with `truncate_text`; big ones are never read whole."""
    size = path.stat().st_size
    if size <= max(WHOLE_READ_BYTES, limits.max_output_chars * 8):
        raw = path.read_bytes()
        lines = raw.count(b"\n") + (1 if raw and not raw.endswith(b"\n") else 0)
        text, truncated = truncate_text(
            raw.decode("utf-8", errors="replace"),
            max_chars=limits.max_output_chars,
            max_lines=limits.max_output_lines,
        )
        return Excerpt(text, truncated, size, lines)
    return Excerpt(_head_tail(path, size, limits), True, size, _count_lines(path))


def _head_tail(path: Path, size: int, limits: ToolLimits) -> str:
    """Head 1/5 and tail 4/5 of the caps, as `truncate_text` keeps, read from the file."""
    head_c = limits.max_output_chars // 5
    tail_c = limits.max_output_chars - head_c
    head_n = limits.max_output_lines // 5
    tail_n = limits.max_output_lines - head_n
    with path.open("rb") as f:
        head_raw = f.read(head_c * 4)
        f.seek(max(size - tail_c * 4, 0))
        tail_raw = f.read()
    head_lines = head_raw.decode("utf-8", errors="replace").splitlines(keepends=True)
    head = "".join(head_lines[:head_n])[:head_c]
    tail_lines = tail_raw.decode("utf-8", errors="replace").splitlines(keepends=True)
    tail = "".join(tail_lines[-tail_n:] if tail_n else [])[-tail_c:]
    omitted = size - len(head.encode()) - len(tail.encode())
    return f"{head}\n... [{size_text(omitted)} truncated] ...\n{tail}"


def _count_lines(path: Path) -> int:
    count, last = 0, b""
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk
    return count + (1 if last and not last.endswith(b"\n") else 0)


def size_text(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"
