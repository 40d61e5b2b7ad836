"""Every ```python example in docs/sdk.md runs, as a program of its own, against the scripted
model server (the examples read the provider from the environment, which points at it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakeserver import FakeLLM, ScriptEntry, Turn, call, text, tool_turn

DOC = Path(__file__).resolve().parent.parent / "docs" / "sdk.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Example:
    marker: str
    """Text only this example's block holds."""
    script: Callable[[], list[ScriptEntry]]
    prints: tuple[str, ...]
    """What its output must hold."""


EXAMPLES = [
    Example(
        'query("What does this project do?"',
        lambda: [text("A calculator.")],
        ("A calculator.", "[success] 1 turn(s)"),
    ),
    Example(
        "Explain it in one sentence.",
        lambda: [text("calc.py"), text("It adds two numbers.")],
        (
            "Which file defines add()? -> calc.py",
            "Explain it in one sentence. -> It adds two numbers.",
            "session: ",
        ),
    ),
    Example(
        "Only git commands",
        lambda: [tool_turn(call("run_shell_command", command="rm -rf build")), text("Left it.")],
        ("asked: run_shell_command", "denied: ['run_shell_command']"),
    ),
    Example(
        "word_count",
        lambda: [tool_turn(call("word_count", text="one two three")), text("Three.")],
        ("tool result: 3",),
    ),
    Example(
        "client.interrupt()",
        lambda: [Turn(text="Tabs. ", forever=True)],
        ("error_interrupted",),
    ),
    Example(
        "json_schema=SCHEMA",
        lambda: [tool_turn(call("structured_output", language="Python", files=1))],
        ("success {'language': 'Python', 'files': 1}",),
    ),
]


def blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text(encoding="utf-8"))


def block_for(example: Example) -> str:
    found = [b for b in blocks() if example.marker in b]
    assert len(found) == 1, f"{example.marker!r} is in {len(found)} python blocks of {DOC.name}"
    return found[0]


def test_every_python_block_is_tested() -> None:
    untested = [b for b in blocks() if not any(e.marker in b for e in EXAMPLES)]
    assert untested == [], "a new example in docs/sdk.md needs its script in EXAMPLES"
    assert len(blocks()) == len(EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.marker[:24])
def test_the_example_runs(example: Example, tmp_path: Path, fake_llm: FakeLLM) -> None:
    project = tmp_path / "project"
    (project / "build").mkdir(parents=True)
    (project / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    program = tmp_path / "example.py"
    program.write_text(block_for(example), encoding="utf-8")
    fake_llm.script(*example.script())
    run = subprocess.run(
        [sys.executable, str(program)],
        cwd=project,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,  # only stops a hung example; not a speed check
    )
    assert run.returncode == 0, run.stderr
    for line in example.prints:
        assert line in run.stdout, run.stdout
    assert (fake_llm.remaining, fake_llm.unscripted) == (0, 0)
    assert (project / "build").is_dir()  # the denied `rm -rf build` never ran
