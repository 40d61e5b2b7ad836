"""Command line: parses flags and picks a front end (headless or interactive).

Only typer is imported at module level; everything heavy (rich, the agent, the HTTP client) is
imported inside the command that needs it, so `--help` and `--version` stay fast.
`main` reads the process once (`Environment.detect`) and hands that Environment to the
parser as its context object; every command takes its streams, working directory and
home from it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from typer.core import TyperCommand, TyperGroup

from qwen_code import cli_mcp, cli_serve, cli_sessions
from qwen_code.environment import Environment, from_context

if TYPE_CHECKING:
    from qwen_code.config import Flags, Settings

DEFAULT_COMMAND = "run"


class DefaultCommandGroup(TyperGroup):
    """`qwen-code [flags] [QUERY]` runs the agent; `qwen-code SUBCOMMAND` runs a subcommand."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if not args or args[0] not in self.commands or args[0] == DEFAULT_COMMAND:
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


class RunCommand(TyperCommand):
    """The default command; its usage line reads as the program's own."""

    def format_usage(self, ctx: typer.Context, formatter: Any) -> None:  # type: ignore[override]
        formatter.write_usage("qwen-code", "[OPTIONS] [QUERY]...  |  qwen-code COMMAND ...")


app = typer.Typer(
    cls=DefaultCommandGroup,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _group() -> None:
    """qwen-code: a terminal coding agent for Qwen3-Coder and OpenAI-compatible models."""


def _version(ctx: typer.Context, value: bool) -> None:
    """`--version` among other flags (alone, `__main__` answered it before typer loaded)."""
    if value:
        from qwen_code.version import print_version

        print_version(from_context(ctx).stdout)
        raise typer.Exit()


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for v in values or () for part in v.split(",") if part.strip()]


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
        help="Rules for calls allowed without asking, e.g. edit or 'Bash(git status *)'.",
    ),
]
MaxTurns = Annotated[
    int | None, typer.Option("--max-session-turns", help="Stop after N model turns.")
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
Acp = Annotated[
    bool, typer.Option("--acp", help="Talk to an editor over stdio (Agent Client Protocol).")
]
Version = Annotated[
    bool | None,
    typer.Option("--version", "-v", callback=_version, is_eager=True, help="Show the version."),
]


@app.command(
    DEFAULT_COMMAND,
    cls=RunCommand,
    epilog="Examples: qwen-code -p 'fix the failing test' --yolo | "
    "git diff | qwen-code -p 'review this' -o json. "
    "Other commands: qwen-code serve|cost|sessions|checkpoints|prompts|mcp (each has --help).",
)
def run(
    ctx: typer.Context,
    query: Query = None,
    prompt: Prompt = None,
    prompt_interactive: Interactive = None,
    model: Model = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    approval_mode: Mode = None,
    yolo: Yolo = False,
    allowed_tools: AllowedTools = None,
    max_session_turns: MaxTurns = None,
    include_directories: IncludeDirs = None,
    output_format: OutputFormat = "text",
    include_partial_messages: Partial = False,
    system_prompt: SystemPrompt = None,
    append_system_prompt: AppendSystemPrompt = None,
    continue_session: Continue = False,
    resume: Resume = None,
    trust_workspace: TrustWorkspace = False,
    sandbox: Sandbox = None,
    mcp_config: McpConfig = None,
    allowed_mcp_server_names: AllowedMcp = None,
    json_schema: JsonSchema = None,
    max_budget_usd: MaxBudget = None,
    max_wall_time: MaxWallTime = None,
    max_tool_calls: MaxToolCalls = None,
    input_format: InputFormat = "text",
    acp: Acp = False,
    debug: Debug = False,
    version: Version = None,
) -> int:
    """Start an interactive session, or run a prompt headless: `qwen-code -p "task"`.

    With no prompt in a terminal, qwen-code starts the interactive session. A prompt (-p or
    positional) or piped stdin (it goes first) runs headless. Provider: DASHSCOPE_API_KEY,
    or OPENAI_BASE_URL (+ OPENAI_API_KEY, OPENAI_MODEL)."""
    return _dispatch(from_context(ctx), dict(locals()))


def _dispatch(env: Environment, given: dict[str, Any]) -> int:
    """The front end `run`'s flags ask for: ACP, stream-json input, the REPL or headless."""
    _check_mode(given["yolo"], given["approval_mode"])
    flags = _flags(given)
    _configure_logging(given["debug"], env)
    if given["acp"]:
        from qwen_code.acp import main as acp_main

        return acp_main(env, flags)
    text = _prompt_text(given["prompt"], given["query"])
    where = {"latest": given["continue_session"], "session_id": given["resume"]}
    output_format = given["output_format"]
    if given["input_format"] == "stream-json":
        from qwen_code.ui import stream_input

        return stream_input.main(env, flags, text, output_format=output_format, **where)
    if given["prompt_interactive"] is not None or (not text and env.stdin_isatty):
        return _interactive(env, flags, given["prompt_interactive"], output_format, **where)
    from qwen_code.ui import headless

    partial = given["include_partial_messages"]
    return headless.main(env, flags, text, output_format=output_format, partial=partial, **where)


def _flags(given: dict[str, Any]) -> Flags:
    """`Flags` from `run`'s parameters of the same names; the lists are split here."""
    from dataclasses import fields

    from qwen_code.config import Flags

    values = {f.name: given[f.name] for f in fields(Flags) if f.name in given}
    values.update(
        include_directories=_split(given["include_directories"]),
        allowed_tools=list(given["allowed_tools"] or ()),  # split by the rule parser later
        sandbox=_sandbox_flag(given["sandbox"]),
        mcp_config=list(given["mcp_config"] or ()),
        allowed_mcp_server_names=_split(given["allowed_mcp_server_names"]) or None,
    )
    return Flags(**values)


def _check_mode(yolo: bool, approval_mode: str | None) -> None:
    from qwen_code.errors import InputError

    if yolo and approval_mode not in (None, "yolo"):
        raise InputError("--yolo and --approval-mode cannot be used together.")


def _sandbox_flag(value: str | None) -> str | None:
    from qwen_code.errors import InputError
    from qwen_code.settings_model import sandbox_mode_value

    if value is None:
        return None
    mode = sandbox_mode_value(value)
    if mode not in ("auto", "off", "workspace-write", "read-only"):
        raise InputError(
            f"--sandbox: {value!r} is not a mode; use auto, off, workspace-write or read-only."
        )
    return str(mode)


def _interactive(
    env: Environment,
    flags: Flags,
    first_message: str | None,
    output_format: str,
    *,
    latest: bool,
    session_id: str | None,
) -> int:
    from qwen_code.config import load_settings, resolve_provider
    from qwen_code.errors import InputError

    if not env.stdin_isatty:
        raise InputError("-i/--prompt-interactive needs a terminal; stdin is piped.")
    if output_format != "text":
        raise InputError("--output-format applies to headless runs: pass a prompt with -p.")
    limits = flags.run_limits_given()
    if limits:
        raise InputError(f"{limits[0]} applies to headless runs: pass a prompt with -p.")
    import asyncio

    settings = load_settings(flags, cwd=env.cwd, home=env.home)
    if _needs_trust_decision(settings):
        settings = asyncio.run(_ask_trust(env, flags))
    provider = resolve_provider(settings, home=env.home)

    from qwen_code.ui.repl import run_interactive

    return asyncio.run(
        run_interactive(
            env,
            settings,
            provider,
            first_message=first_message,
            latest=latest,
            session_id=session_id,
        )
    )


def _needs_trust_decision(settings: Settings) -> bool:
    """Nobody has decided about this folder, and its settings hold keys that apply only
    when it is trusted: worth asking (a folder with nothing to gate is not asked about)."""
    return bool(settings.untrusted_keys) and settings.trust.trusted is None


async def _ask_trust(env: Environment, flags: Flags) -> Settings:
    """The first interactive run in an undecided folder: ask, then load the settings as
    the answer allows."""
    from qwen_code.config import load_settings
    from qwen_code.ui.terminal import Terminal, make_console
    from qwen_code.ui.trust_dialog import ask_trust

    terminal = Terminal.detect(stdout=env.stdout, stdin=env.stdin)
    await ask_trust(make_console(terminal, env.stdout), env.cwd, env.home)
    return load_settings(flags, cwd=env.cwd, home=env.home)


def _prompt_text(prompt: str | None, query: list[str] | None) -> str:
    words = " ".join(query or [])
    if prompt is None:
        return words
    return f"{prompt}\n\n{words}" if words else prompt


prompts_app = typer.Typer(
    help="Inspect and customize the prompts sent to the model.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(prompts_app, name="prompts")
cli_serve.register(app)
cli_sessions.register(app)
cli_mcp.register(app)


@prompts_app.command("show")
def prompts_show(ctx: typer.Context) -> None:
    """Print the system prompt exactly as this directory's sessions send it."""
    from qwen_code.config import load_settings
    from qwen_code.prompts import build_system_prompt

    env = from_context(ctx)
    settings = load_settings(cwd=env.cwd, home=env.home)
    cwd = env.cwd.resolve()
    extra = [(cwd / d).resolve() for d in settings.context.include_directories]
    prompt, _ = build_system_prompt(settings, cwd, home=env.home, extra_roots=extra)
    print(prompt, file=env.stdout)


@prompts_app.command("export")
def prompts_export(
    ctx: typer.Context,
    directory: Annotated[str, typer.Argument(help="Where to write the templates.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Write the shipped templates to DIRECTORY for editing.

    Put edited copies in .qwen/prompts/ (this project) or ~/.qwen/prompts/ (you) and they
    replace the shipped ones. Templates use $name placeholders ($$ for a dollar sign).
    """
    from qwen_code.prompts import export_templates

    env = from_context(ctx)
    for path, written in export_templates(directory, force=force):
        print(f"{'wrote' if written else 'kept existing'} {path}", file=env.stdout)


def _configure_logging(debug: bool, env: Environment) -> None:
    import logging

    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="qwen-code %(levelname)s %(name)s: %(message)s",
        stream=env.stderr,
    )


def _optional_resume_value(args: list[str]) -> list[str]:
    """`-r`/`--resume` with no id (last, or followed by an option) means "let me pick"."""
    fixed = list(args)
    for index, arg in enumerate(fixed):
        if arg in ("-r", "--resume"):
            following = fixed[index + 1] if index + 1 < len(fixed) else None
            if following is None or following.startswith("-"):
                fixed.insert(index + 1, "__pick__")
            break
    return fixed


SANDBOX_WORDS = ("auto", "off", "workspace-write", "read-only", "true", "false", "docker", "podman")


def _optional_sandbox_value(args: list[str]) -> list[str]:
    """`-s`/`--sandbox` with no mode after it (Qwen Code's boolean flag) means
    workspace-write; a following word that is no mode stays the prompt."""
    fixed = list(args)
    for index, arg in enumerate(fixed):
        if arg == "--":
            break
        if arg in ("-s", "--sandbox"):
            following = fixed[index + 1] if index + 1 < len(fixed) else None
            if following is None or following.lower() not in SANDBOX_WORDS:
                fixed.insert(index + 1, "workspace-write")
            break
    return fixed


def main(argv: list[str] | None = None, env: Environment | None = None) -> int:
    """Entry point: returns the process exit code. `env`: the process as
    `Environment.detect()` reads it, unless given (tests)."""
    from qwen_code.errors import ExitCode, QwenCodeError

    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] != "mcp":  # `mcp add -s SCOPE NAME -- CMD -r`: its own flags
        args = _optional_sandbox_value(_optional_resume_value(args))
    try:
        env = env or Environment.detect()
    except OSError as exc:  # the working directory was deleted under us
        print(f"qwen-code: cannot use the working directory: {exc.strerror}", file=sys.stderr)
        return int(ExitCode.INPUT)
    try:
        result = app(args=args, prog_name="qwen-code", standalone_mode=False, obj=env)
    except QwenCodeError as exc:
        print(f"qwen-code: {exc}", file=env.stderr)
        return int(exc.exit_code)
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        return int(ExitCode.INTERRUPTED)
    except typer.TyperException as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show(file=env.stderr)
        else:
            print(f"qwen-code: {exc.format_message()}", file=env.stderr)
        return int(ExitCode.INPUT)
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)
    return int(result) if isinstance(result, int) else 0
