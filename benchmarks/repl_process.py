"""The whole REPL process rendering a streamed answer, against a non-rendering client.

A scripted markdown answer (the generator of `repl_render.py`) is streamed as fast as the
scripted server can send it, one word per chunk, to two real `qwen-code` processes:
the interactive REPL in a pseudo-terminal (120x40), and headless `qwen-code -p` (which
only collects the text). Each is also run on a one-word answer, and that run's CPU is
subtracted, so the figures are the CPU spent on the stream itself.

    .venv/bin/python benchmarks/repl_process.py [--sizes 5000 20000 80000]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import pexpect
from _common import FakeLLM, env_for, qwen_code_command
from repl_render import answer

from tests.fakeserver import Turn

END = "END-OF-ANSWER"


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def repl_run(server: FakeLLM, workdir: Path, text: str) -> float:
    server.script(Turn(text=text, chunk_words=1))
    env = env_for(server, workdir / "home")
    env.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
    before = child_cpu()
    cmd = qwen_code_command()
    child = pexpect.spawn(
        cmd[0],
        cmd[1:],
        cwd=str(workdir),
        env=env,
        encoding="utf-8",
        dimensions=(40, 120),
        searchwindowsize=256,
        timeout=600,
        maxread=1 << 16,
    )

    def expect(pattern: str) -> None:
        while child.expect_exact([pattern, "\x1b[6n"]) == 1:
            child.send("\x1b[20;1R")

    expect("(shift+tab)")
    child.send("go\r")
    expect("(shift+tab)")  # the footer is drawn again only when the answer is complete
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    return child_cpu() - before


def headless_run(server: FakeLLM, workdir: Path, text: str) -> float:
    server.script(Turn(text=text, chunk_words=1))
    before = child_cpu()
    subprocess.run(
        [*qwen_code_command(), "-p", "go"],
        cwd=workdir,
        env=env_for(server, workdir / "home"),
        capture_output=True,
        check=True,
    )
    return child_cpu() - before


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 80000])
    sizes = parser.parse_args().sizes
    with tempfile.TemporaryDirectory() as tmp, FakeLLM() as server:
        workdir = Path(tmp)
        base_repl = repl_run(server, workdir, END)
        base_headless = headless_run(server, workdir, END)
        print(
            f"start-up + one-word answer: REPL {base_repl:.2f} s CPU, headless "
            f"{base_headless:.2f} s CPU"
        )
        per_token = {}
        for tokens in sizes:
            text = "".join(answer(tokens)) + f"\n\n{END}\n"
            chunks = len(text.split())
            repl = repl_run(server, workdir, text) - base_repl
            headless = headless_run(server, workdir, text) - base_headless
            per_token[tokens] = repl
            print(
                f"{tokens:>6} tokens ({chunks} chunks): REPL {repl:.2f} s CPU, headless "
                f"{headless:.2f} s; rendering costs {(repl - headless) / tokens * 1e6:.0f} us"
                f"/token; at 50 tok/s that is {(repl - headless) / (tokens / 50):.1%} of a core"
            )
        if len(sizes) > 1:
            first, last = sizes[0], sizes[-1]
            ratio = per_token[last] / per_token[first]
            print(f"REPL CPU {last}/{first} tokens: x{ratio:.1f} (linear: x{last / first:.1f})")


if __name__ == "__main__":
    sys.exit(main())
