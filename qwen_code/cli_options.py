"""The default command's options, declared once (`cli.run` takes them as parameters).

Typer reads each option's flags and help from its `Annotated` type; keeping them here
keeps `cli.py` to parsing and dispatch. Imports nothing heavy (see `cli`).
"""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from qwen_code.environment import from_context


def _version(ctx: typer.Context, value: bool) -> None:
    """`--version` among other flags (alone, `__main__` answered it before typer loaded)."""
    if value:
        from qwen_code.version import print_version

        print_version(from_context(ctx).stdout)
        raise typer.Exit()


Query = Annotated[list[str] | None, typer.Argument(help="The prompt (runs headless).")]
Prompt = Annotated[
    str | None, typer.Option("-p", "--prompt", help="Run this prompt headless and exit.")
]
Interactive = Annotated[
    str | None,
    typer.Option(
        "-i", "--prompt-interactive", help="Start the interactive session with this message."
    ),
]
Model = Annotated[str | None, typer.Option("-m", "--model", help="Model id.")]
BaseUrl = Annotated[
    str | None,
    typer.Option("--base-url", "--openai-base-url", help="OpenAI-compatible endpoint URL."),
]
ApiKey = Annotated[str | None, typer.Option("--api-key", "--openai-api-key", help="API key.")]
Mode = Annotated[
    Literal["plan", "default", "auto-edit", "yolo"] | None,
    typer.Option("--approval-mode", help="When tools need approval."),
]
Yolo = Annotated[bool, typer.Option("-y", "--yolo", help="Allow every tool call without asking.")]
AllowedTools = Annotated[
    list[str] | None,
    typer.Option(
        "--allowed-tools",
        "--allowedTools",
        help="Rules for calls allowed without asking, e.g. edit or 'Bash(git status *)'.",
    ),
]
DisallowedTools = Annotated[
    list[str] | None,
    typer.Option(
        "--disallowed-tools",
        "--disallowedTools",
        help="Rules for calls always refused, e.g. 'Bash(rm *)' or web_fetch.",
    ),
]
ToolsOnly = Annotated[
    str | None,
    typer.Option(
        "--tools",
        metavar="NAMES",
        help="Only these built-in tools, comma-separated ('' none, 'default' all).",
    ),
]
MaxTurns = Annotated[
    int | None,
    typer.Option("--max-session-turns", "--max-turns", help="Stop after N model turns."),
]
IncludeDirs = Annotated[
    list[str] | None,
    typer.Option("--include-directories", "--add-dir", help="More directories the tools may use."),
]
OutputFormat = Annotated[
    Literal["text", "json", "stream-json"],
    typer.Option("-o", "--output-format", help="How to print the result."),
]
Partial = Annotated[
    bool,
    typer.Option("--include-partial-messages", help="stream-json: also stream text as it arrives."),
]
Debug = Annotated[bool, typer.Option("-d", "--debug", help="Log details to stderr.")]
Continue = Annotated[
    bool, typer.Option("-c", "--continue", help="Continue this project's latest session.")
]
Resume = Annotated[
    str | None,
    typer.Option(
        "-r", "--resume", help="Continue a saved session by id (alone: pick one in the session)."
    ),
]
SystemPrompt = Annotated[
    str | None, typer.Option("--system-prompt", help="Replace the built-in system prompt.")
]
AppendSystemPrompt = Annotated[
    str | None,
    typer.Option("--append-system-prompt", help="Add this text after the system prompt."),
]
TrustWorkspace = Annotated[
    bool,
    typer.Option(
        "--trust-workspace",
        help="Trust this folder for this run: apply all of its .qwen/settings.json "
        "(for CI; same as QWEN_CODE_TRUST_WORKSPACE=true).",
    ),
]
Sandbox = Annotated[
    str | None,
    typer.Option(
        "-s",
        "--sandbox",
        metavar="MODE",
        help="Sandbox the agent's commands: auto (default), off, workspace-write "
        "(alone: this), read-only. See docs/sandbox.md.",
    ),
]
McpConfig = Annotated[
    list[str] | None,
    typer.Option("--mcp-config", metavar="FILE", help="Load MCP servers from this JSON file."),
]
AllowedMcp = Annotated[
    list[str] | None,
    typer.Option("--allowed-mcp-server-names", help="Only these configured MCP servers start."),
]
JsonSchema = Annotated[
    str | None,
    typer.Option(
        "--json-schema",
        metavar="SCHEMA|@FILE",
        help="Headless: end with a structured_output call matching this JSON Schema; "
        "the result holds it.",
    ),
]
MaxBudget = Annotated[
    float | None,
    typer.Option(
        "--max-budget-usd", metavar="USD", help="Headless: stop before spending more (exit 55)."
    ),
]
MaxWallTime = Annotated[
    str | None,
    typer.Option(
        "--max-wall-time",
        metavar="DURATION",
        help="Headless: stop after this long, e.g. 90, 30s, 5m, 1.5h (exit 55).",
    ),
]
MaxToolCalls = Annotated[
    int | None,
    typer.Option("--max-tool-calls", metavar="N", help="Headless: at most N tool calls (exit 55)."),
]
InputFormat = Annotated[
    Literal["text", "stream-json"],
    typer.Option(
        "--input-format",
        help="stream-json: read user messages and control requests as JSON lines on stdin "
        "(with -o stream-json; see docs/headless.md).",
    ),
]
PromptTool = Annotated[
    str | None,
    typer.Option(
        "--permission-prompt-tool",
        metavar="stdio",
        help="stream-json input: ask the program on stdin about calls that need approval.",
    ),
]
NewSessionId = Annotated[
    str | None, typer.Option("--session-id", metavar="UUID", help="Id for the new session.")
]
Fork = Annotated[
    bool,
    typer.Option("--fork-session", help="With --resume/--continue: save under a new id."),
]
SettingsArg = Annotated[
    str | None,
    typer.Option(
        "--settings", metavar="FILE|JSON", help="More settings, above the settings files."
    ),
]
SettingSources = Annotated[
    str | None,
    typer.Option(
        "--setting-sources",
        metavar="user,project,local",
        help="Which settings files to read (default: all).",
    ),
]
Replay = Annotated[
    bool,
    typer.Option("--replay-user-messages", help="stream-json input: echo each user message."),
]
StrictMcp = Annotated[
    bool,
    typer.Option("--strict-mcp-config", help="Only the MCP servers of --mcp-config."),
]
Acp = Annotated[
    bool, typer.Option("--acp", help="Talk to an editor over stdio (Agent Client Protocol).")
]
Version = Annotated[
    bool | None,
    typer.Option("--version", "-v", callback=_version, is_eager=True, help="Show the version."),
]
