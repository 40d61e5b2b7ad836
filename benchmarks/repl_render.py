"""REPL rendering cost: a scripted markdown answer streamed into EventRenderer on a real pty.

The answer (headings, paragraphs, lists, tables, code blocks; generated deterministically)
is cut into ~4-character deltas (about one token each) and fed to `EventRenderer` with a
rich Console writing to a pseudo-terminal (width 100, height 40) whose other side a thread
reads and discards. Figures are process CPU seconds (`time.process_time()`, the reader
thread included) against a baseline that only concatenates the deltas.

Two runs per size:
- fast: deltas as fast as possible; the live tail is redrawn at most ~20 times per
  second of wall time, so this is the cost of parsing and printing, with few frames;
- paced: the clock the stream throttles by is simulated at 50 or 100 tokens/s, so the
  tail is redrawn as often as it would be with a real model (CPU is still real).

Then the bytes the terminal got for a ~24 KB answer (6,000 tokens) paced at 50 tokens/s,
drawing every frame the stream may (15 a second), read on the pty's master side: per KB
of answer, with the cursor-ups, line erases and synchronized-output frames among them.
That is what goes over SSH and through tmux. The figure depends on the colour system
(syntax colours are most of the escape codes): 256 colours, as tmux and most SSH sessions
report, unless `--bytes standard|truecolor` says otherwise.

    .venv/bin/python benchmarks/repl_render.py            # 5k, 20k, 80k tokens
    .venv/bin/python benchmarks/repl_render.py --quick    # 2k, 8k tokens
    .venv/bin/python benchmarks/repl_render.py --bytes    # only the bytes (256 colours)
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from qwen_code.agent.events import AssistantMessage, TextDelta, TurnEnd  # noqa: E402
from qwen_code.ui import markdown_stream, render, terminal  # noqa: E402
from qwen_code.ui.render import EventRenderer  # noqa: E402

_CLOCKED = (markdown_stream, terminal, render)

_PROSE = "the agent reads each file before it edits and runs the tests after every change"
WORDS = _PROSE.split()
CJK = "这个函数读取配置文件并返回解析后的结果。"


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 16))]
    if rng.random() < 0.3:
        words[rng.randrange(len(words))] = f"`{rng.choice(WORDS)}()`"
    if rng.random() < 0.2:
        words[rng.randrange(len(words))] = f"**{rng.choice(WORDS)}**"
    return " ".join(words).capitalize() + "."


def _section(rng: random.Random, n: int) -> str:
    parts = [f"## Step {n}: {rng.choice(WORDS)} {rng.choice(WORDS)}"]
    parts.append(" ".join(_sentence(rng) for _ in range(rng.randint(2, 6))))
    if rng.random() < 0.3:
        parts.append(CJK * rng.randint(1, 3))
    parts.append("\n".join(f"- {_sentence(rng)}" for _ in range(rng.randint(2, 6))))
    if rng.random() < 0.5:
        parts.append("\n".join(f"{i}. {_sentence(rng)}" for i in range(1, rng.randint(3, 6))))
    if rng.random() < 0.4:
        rows = [f"| {rng.choice(WORDS)} | {rng.randint(1, 999)} | {rng.choice(WORDS)} |"]
        parts.append("| name | count | note |\n|---|---:|---|\n" + "\n".join(rows * 4))
    code = [f"def {rng.choice(WORDS)}_{n}(path: str) -> int:"]
    code += [
        f"    value_{i} = len(path) * {i}  # {rng.choice(WORDS)}" for i in range(rng.randint(4, 24))
    ]
    parts.append("```python\n" + "\n".join([*code, "    return value_0"]) + "\n```")
    return "\n\n".join(parts)


def answer(tokens: int, seed: int = 7) -> list[str]:
    """The scripted answer as ~4-character deltas, `tokens` of them."""
    rng = random.Random(seed)
    sections, size, n = [], 0, 0
    while size < tokens * 4:
        n += 1
        sections.append(_section(rng, n))
        size += len(sections[-1]) + 2
    text = "# Plan\n\n" + "\n\n".join(sections)
    return [text[i : i + 4] for i in range(0, tokens * 4, 4)]


class Pty:
    """A pseudo-terminal whose master side a thread reads; with `keep`, what it read is
    kept in `received` (else thrown away)."""

    def __init__(self, *, keep: bool = False, colors: str | None = None) -> None:
        self.keep, self.colors = keep, colors
        self.received = bytearray()

    def __enter__(self) -> Console:
        self.master, slave = os.openpty()
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()
        self.out = os.fdopen(slave, "w", encoding="utf-8")
        return Console(
            file=self.out,
            force_terminal=True,
            force_interactive=True,
            width=100,
            height=40,
            color_system=self.colors or "auto",  # type: ignore[arg-type]
        )

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 1 << 16)
            except OSError:
                return
            if not data:
                return
            if self.keep:
                self.received += data

    def __exit__(self, *exc: object) -> None:
        self.out.flush()
        if self.keep:  # let the reader catch up before the slave side closes
            seen = -1
            while seen != len(self.received):
                seen = len(self.received)
                self.reader.join(timeout=0.2)
        self.out.close()
        os.close(self.master)
        self.reader.join(timeout=5)


def _paced_clock(rate: float, *, free_frames: bool = False) -> Iterator[None]:
    """Make the stream's throttle (and the status line's clock) see `rate` tokens per
    second: one tick per delta. With `free_frames`, frames seem to take no time, so the
    stream draws as many as it may (15 a second) whatever this machine's speed."""
    now = [0.0]
    cost = (lambda: 0.0) if free_frames else time.perf_counter
    clock = types.SimpleNamespace(monotonic=lambda: now[0], perf_counter=cost)
    for module in _CLOCKED:
        module.time = clock  # type: ignore[attr-defined]
    try:
        while True:
            yield
            now[0] += 1.0 / rate
    finally:
        for module in _CLOCKED:
            module.time = time  # type: ignore[attr-defined]


def _stream(console: Console, deltas: list[str], ticks: Iterator[None] | None) -> float:
    """Feed the answer to an EventRenderer as the REPL does; the CPU seconds it took."""
    renderer = EventRenderer(console)
    started = time.process_time()
    for delta in deltas:
        if ticks is not None:
            next(ticks)
        renderer.handle(TextDelta(text=delta))
    renderer.handle(AssistantMessage(text="".join(deltas)))
    renderer.handle(TurnEnd(reason="completed"))
    return time.process_time() - started


def render_cpu(deltas: list[str], rate: float | None = None) -> float:
    ticks = _paced_clock(rate) if rate else None
    with Pty() as console:
        cpu = _stream(console, deltas, ticks)
    if ticks is not None:
        ticks.close()
    return cpu


_CURSOR_UP = re.compile(rb"\x1b\[\d*A")
_LINE_ERASE = re.compile(rb"\x1b\[[012]?K")


def render_bytes(deltas: list[str], rate: float, colors: str) -> dict[str, int]:
    """What the terminal got for the answer streamed at `rate` tokens/s (simulated clock,
    as many frames as the stream may draw): bytes, cursor-ups, line erases and
    synchronized-output frames."""
    pty, ticks = Pty(keep=True, colors=colors), _paced_clock(rate, free_frames=True)
    with pty as console:
        _stream(console, deltas, ticks)
    ticks.close()
    raw = bytes(pty.received)
    return {
        "bytes": len(raw),
        "cursor_ups": len(_CURSOR_UP.findall(raw)),
        "line_erases": len(_LINE_ERASE.findall(raw)),
        "sync_frames": raw.count(b"\x1b[?2026h"),
    }


def report_bytes(tokens: int, rate: float = 50, colors: str = "256") -> None:
    """One colour system per process: rich caches a style's escape codes for the first
    colour system it renders them for."""
    deltas = answer(tokens)
    size = len("".join(deltas).encode())
    got = render_bytes(deltas, rate, colors)
    print(f"\nbytes written to the pty at {rate:.0f} tokens/s (simulated clock), {colors} colours")
    print(f"{'answer KB':>10} {'written KB':>11} {'x answer':>9} {'cursor-ups':>11} ", end="")
    print(f"{'line erases':>12} {'sync frames':>12}")
    print(
        f"{size / 1024:>10.1f} {got['bytes'] / 1024:>11.1f} {got['bytes'] / size:>9.2f} "
        f"{got['cursor_ups']:>11} {got['line_erases']:>12} {got['sync_frames']:>12}"
    )


def baseline_cpu(deltas: list[str]) -> float:
    started = time.process_time()
    parts: list[str] = []
    for delta in deltas:
        parts.append(delta)
    "".join(parts)
    return time.process_time() - started


def report(sizes: list[int], paced_sizes: list[int]) -> None:
    render_cpu(answer(1_000))  # warm up: imports, lexers, regex caches
    print("fast feed (as fast as possible; frames throttled by wall time)")
    print(f"{'tokens':>8} {'render s':>9} {'base s':>8} {'ms/1k tok':>10}")
    per_k: dict[int, float] = {}
    for tokens in sizes:
        deltas = answer(tokens)
        cpu, base = render_cpu(deltas), baseline_cpu(deltas)
        per_k[tokens] = (cpu - base) / tokens * 1000
        print(f"{tokens:>8} {cpu:>9.3f} {base:>8.4f} {per_k[tokens] * 1000:>10.2f}")
    small, large = sizes[-2], sizes[-1]
    ratio = (per_k[large] * large) / (per_k[small] * small)
    print(f"ratio {large // 1000}k/{small // 1000}k = {ratio:.2f} (linear: {large / small:.0f})")
    for rate in (50, 100):
        print(f"\npaced at {rate} tokens/s (simulated clock; real CPU)")
        print(f"{'tokens':>8} {'render s':>9} {'ms/1k tok':>10} {'% of stream time':>17}")
        for tokens in paced_sizes:
            deltas = answer(tokens)
            overhead = render_cpu(deltas, rate) - baseline_cpu(deltas)
            share = overhead / (tokens / rate) * 100
            print(f"{tokens:>8} {overhead:>9.3f} {overhead / tokens * 1e6:>10.2f} {share:>16.2f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--bytes",
        nargs="?",
        const="256",
        choices=["standard", "256", "truecolor"],
        help="only the bytes written for a ~24 KB answer, in this many colours (256)",
    )
    args = parser.parse_args()
    if args.bytes:
        report_bytes(6_000, colors=args.bytes)
    elif args.quick:
        report([2_000, 8_000], [2_000])
        report_bytes(6_000)
    else:
        report([5_000, 20_000, 80_000], [5_000, 20_000])
        report_bytes(6_000)


if __name__ == "__main__":
    main()
