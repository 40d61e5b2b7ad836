"""`qwen-code --acp`: the Agent Client Protocol (Zed's) over stdio, for editors."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qwen_code.config import Flags
    from qwen_code.environment import Environment


def main(env: Environment, flags: Flags) -> int:
    """Serve ACP on the process's stdin/stdout until the editor closes them."""
    from qwen_code.errors import InputError

    raise InputError("--acp is not available yet.")
