"""Command-line mistakes get a message a new user can act on: where help is, no pydantic
prefixes, and option suggestions only when they are really close."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_code.cli import main
from qwen_code.errors import ExitCode
from tests.helpers import captured_env


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
