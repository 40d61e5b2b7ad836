"""Small helpers shared by the tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_init(root: Path) -> None:
    """Make `root` a git repository (git is a requirement of the project and of CI)."""
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
