"""qwen-code: a terminal coding agent for Qwen3-Coder and any OpenAI-compatible model."""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False  # not `typing`'s: importing typing costs `--version` ~15 ms
if TYPE_CHECKING:
    from typing import Any

    from qwen_code.sdk import (
        Allow,
        AssistantMessage,
        Client,
        ContentBlock,
        Deny,
        Message,
        Options,
        PermissionMode,
        PermissionResult,
        ResultMessage,
        SdkError,
        SdkTool,
        StreamEvent,
        SystemMessage,
        TextBlock,
        ToolPermissionContext,
        ToolResultBlock,
        ToolUseBlock,
        UserMessage,
        query,
        tool,
    )

__all__ = [
    "Allow",
    "AssistantMessage",
    "Client",
    "ContentBlock",
    "Deny",
    "Message",
    "Options",
    "PermissionMode",
    "PermissionResult",
    "ResultMessage",
    "SdkError",
    "SdkTool",
    "StreamEvent",
    "SystemMessage",
    "TextBlock",
    "ToolPermissionContext",
    "ToolResultBlock",
    "ToolUseBlock",
    "UserMessage",
    "__version__",
    "query",
    "tool",
]
_SDK_NAMES = frozenset(__all__) - {"__version__"}
"""The in-process API (`qwen_code.sdk`), imported on first use: `qwen-code --version` and
the command line's start-up never load it."""


def __getattr__(name: str) -> Any:
    if name in _SDK_NAMES:
        import importlib

        return getattr(importlib.import_module("qwen_code.sdk"), name)
    raise AttributeError(f"module 'qwen_code' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SDK_NAMES])
