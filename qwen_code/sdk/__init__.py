"""The in-process Python API: run the qwen-code agent inside your own program.

    from qwen_code import query, Options

    async for message in query("what does main.py do?", options=Options(cwd=".")):
        print(message)

It follows the Claude Agent SDK's shape (`query`, a client, options, typed messages,
`can_use_tool`, `@tool`), but the agent runs in this process: no subprocess, no Node.
See docs/sdk.md.
"""

from __future__ import annotations

from qwen_code.sdk.client import Client
from qwen_code.sdk.errors import SdkError
from qwen_code.sdk.messages import (
    AssistantMessage,
    ContentBlock,
    Message,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)
from qwen_code.sdk.options import Options, PermissionMode
from qwen_code.sdk.permissions import Allow, Deny, PermissionResult, ToolPermissionContext
from qwen_code.sdk.query import query
from qwen_code.sdk.tools import SdkTool, tool

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
    "query",
    "tool",
]
