"""Command-line mistakes get a message a new user can act on: where help is, no pydantic
prefixes, and option suggestions only when they are really close."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qwen_code.cli import main
from qwen_code.errors import ExitCode
from tests.helpers import captured_env, run_qwen_code


def run(tmp_path: Path, *argv: str) -> str:
    env = captured_env(tmp_path, tmp_path / "home")
    assert main(list(argv), env=env) == int(ExitCode.INPUT)
    return env.stderr.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("argv", "expected", "absent"),
    [
        (["--foo"], "Error: No such option: --foo\n", "Possible options"),
        (["--yollo", "-p", "hi"], "No such option: --yollo (did you mean --yolo?)", "--tools"),
        (["--approval-mode", "bogus", "-p", "hi"], "'bogus' is not one of", "Value error"),
    ],
)
def test_mistakes_point_at_the_real_help(
    tmp_path: Path, argv: list[str], expected: str, absent: str
) -> None:
    err = run(tmp_path, *argv)
    assert "Try 'qwen-code --help' for help." in err
    assert "run -h" not in err
    assert expected in err and absent not in err


def test_a_subcommand_keeps_its_own_help(tmp_path: Path) -> None:
    err = run(tmp_path, "eval", "run", "--bad")
    assert "Try 'qwen-code eval run --help' for help." in err
    assert "No such option: --bad" in err


@pytest.mark.parametrize("columns", ["50", "80"])
def test_help_examples_and_subcommand_descriptions_read_whole(tmp_path: Path, columns: str) -> None:
    env = {**os.environ, "COLUMNS": columns}
    main_help = run_qwen_code(tmp_path, "--help", env=env).stdout
    examples = main_help[main_help.index("Examples:") :].splitlines()
    assert "    git diff | qwen-code -p 'review this' -o json" in examples
    assert all(len(line) <= 70 for line in examples)  # never rewrapped into one pipeline
    serve_help = run_qwen_code(tmp_path, "serve", "--help", env=env).stdout
    words = " ".join(serve_help[serve_help.index("Commands:") :].split())
    assert "for a model on some GPUs" in words and "..." not in words
