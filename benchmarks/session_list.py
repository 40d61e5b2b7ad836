"""How long finding and listing saved sessions takes once a project has many long ones:
`qwen-code -c` (the newest), the `-r` picker (the newest 50) and `sessions list` (all),
against replaying every file as a full load would. `--empty N` adds N newer files without
a prompt (what a REPL opened and left wrote before 0.1.x), which every listing skips."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import _common  # noqa: F401  (puts the project on sys.path)

from qwen_code.session.store import SessionWriter, list_sessions, load, sessions_dir


def make_sessions(home: Path, cwd: Path, count: int, messages: int) -> int:
    folder = sessions_dir(home, cwd)
    body = "x" * 2000  # a tool result of a typical size
    for index in range(count):
        path = folder / f"s{index:04}.jsonl"
        writer = SessionWriter(path, session_id=f"s{index}", cwd=cwd, model="m")
        history = [{"role": "user", "content": f"task {index}"}]
        for turn in range(messages):
            history.append({"role": "assistant" if turn % 2 else "tool", "content": body})
        writer.sync(history)
        writer.close()
    return sum(p.stat().st_size for p in folder.glob("*.jsonl"))


def make_empty(home: Path, cwd: Path, count: int) -> None:
    """Header-only files, newer than every real session: listings must look past them."""
    folder = sessions_dir(home, cwd)
    folder.mkdir(parents=True, exist_ok=True)
    later = time.time() + 60
    for index in range(count):
        path = folder / f"e{index:04}.jsonl"
        header = {"type": "session", "id": path.stem, "cwd": str(cwd), "model": "m"}
        path.write_text(json.dumps(header) + "\n")
        os.utime(path, (later + index, later + index))


def timed(work: Callable[[], object], runs: int) -> str:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        samples.append((time.perf_counter() - start) * 1000)
    return f"median {statistics.median(samples):8.1f} ms (n={runs})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--empty", type=int, default=0, help="newer sessions without a prompt")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home, cwd = Path(tmp) / "home", Path(tmp)
        size = make_sessions(home, cwd, args.sessions, args.messages)
        make_empty(home, cwd, args.empty)
        print(
            f"{args.sessions} sessions of {args.messages} messages, {size / 1e6:.0f} MB in all"
            + (f", and {args.empty} newer without a prompt" if args.empty else "")
        )
        for label, limit in (("newest (-c)", 1), ("newest 50 (-r)", 50), ("all (list)", None)):
            listing = lambda limit=limit: list_sessions(home, cwd, limit=limit)  # noqa: E731
            print(f"{label:<22}{timed(listing, args.runs)}")
        folder = sessions_dir(home, cwd)
        replay = lambda: [load(p) for p in folder.glob("*.jsonl")]  # noqa: E731
        print(f"{'replaying every file':<22}{timed(replay, args.runs)}")


if __name__ == "__main__":
    main()
