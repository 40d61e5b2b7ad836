"""The built-in tools, in the order the model sees them."""

from __future__ import annotations

from qwen_code.tools.ask_user import AskUserQuestionTool
from qwen_code.tools.edit import EditTool
from qwen_code.tools.exit_plan_mode import ExitPlanModeTool
from qwen_code.tools.glob import GlobTool
from qwen_code.tools.grep import GrepTool
from qwen_code.tools.ls import ListDirectoryTool
from qwen_code.tools.memory import SaveMemoryTool
from qwen_code.tools.read import ReadFileTool
from qwen_code.tools.shell import ShellTool
from qwen_code.tools.todo import TodoWriteTool
from qwen_code.tools.web_fetch import WebFetchTool
from qwen_code.tools.web_search import WebSearchTool
from qwen_code.tools.write import WriteFileTool

BUILTIN_TOOLS = (
    ReadFileTool,
    WriteFileTool,
    EditTool,
    GlobTool,
    GrepTool,
    ListDirectoryTool,
    ShellTool,
    TodoWriteTool,
    SaveMemoryTool,
    WebFetchTool,
    AskUserQuestionTool,
    ExitPlanModeTool,
    WebSearchTool,
)
