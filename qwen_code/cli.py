"""Command line: parses flags and picks a front end (headless or interactive).

Only typer is imported at module level; everything heavy (rich, the agent, the HTTP client) is
imported inside the command that needs it, so `--help` and `--version` stay fast.
`main` reads the process once (`Environment.detect`) and hands that Environment to the
parser as its context object; every command takes its streams, working directory and
home from it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from qwen_code import cli_compat, cli_eval, cli_mcp, cli_proxy, cli_serve, cli_sessions
from qwen_code import cli_options as opt
from qwen_code.cli_help import HelpGroup
from qwen_code.environment import Environment, from_context

if TYPE_CHECKING:
    from qwen_code.config import Flags, Settings

DEFAULT_COMMAND = "run"


class DefaultCommandGroup(HelpGroup):
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


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for v in values or () for part in v.split(",") if part.strip()]


@app.command(
    DEFAULT_COMMAND,
    cls=RunCommand,
    epilog="\b\nExamples:\n"
    "  qwen-code                         # an interactive session\n"
    "  qwen-code -p 'fix the tests' -y   # one task, headless\n"
    "  git diff | qwen-code -p 'review this' -o json\n"
    "  qwen-code -c                      # continue the latest session\n"
    "\n\b\nOther commands (each has --help):\n"
    "  serve, proxy, eval, cost, sessions, checkpoints, prompts, mcp",
)
def run(
    ctx: typer.Context,
    query: opt.Query = None,
    prompt: opt.Prompt = None,
    prompt_interactive: opt.Interactive = None,
    model: opt.Model = None,
    base_url: opt.BaseUrl = None,
    api_key: opt.ApiKey = None,
    approval_mode: opt.Mode = None,
    yolo: opt.Yolo = False,
    allowed_tools: opt.AllowedTools = None,
    disallowed_tools: opt.DisallowedTools = None,
    tools: opt.ToolsOnly = None,
    max_session_turns: opt.MaxTurns = None,
    include_directories: opt.IncludeDirs = None,
    output_format: opt.OutputFormat = "text",
    include_partial_messages: opt.Partial = False,
    system_prompt: opt.SystemPrompt = None,
    append_system_prompt: opt.AppendSystemPrompt = None,
    continue_session: opt.Continue = False,
    resume: opt.Resume = None,
    trust_workspace: opt.TrustWorkspace = False,
    sandbox: opt.Sandbox = None,
    mcp_config: opt.McpConfig = None,
    allowed_mcp_server_names: opt.AllowedMcp = None,
    json_schema: opt.JsonSchema = None,
    max_budget_usd: opt.MaxBudget = None,
    max_wall_time: opt.MaxWallTime = None,
    max_tool_calls: opt.MaxToolCalls = None,
    input_format: opt.InputFormat = "text",
    permission_prompt_tool: opt.PromptTool = None,
    replay_user_messages: opt.Replay = False,
    new_session_id: opt.NewSessionId = None,
    fork_session: opt.Fork = False,
    settings: opt.SettingsArg = None,
    setting_sources: opt.SettingSources = None,
    strict_mcp_config: opt.StrictMcp = False,
    acp: opt.Acp = False,
    debug: opt.Debug = False,
    version: opt.Version = None,
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
    where = _where(given)
    output_format = given["output_format"]
    if given["input_format"] == "stream-json":
        from qwen_code.ui import stream_input

        talk = {"prompt_tool": given["permission_prompt_tool"] is not None}
        talk["replay"] = given["replay_user_messages"]
        return stream_input.main(env, flags, text, output_format=output_format, **where, **talk)
    _check_stream_only(given)
    if given["prompt_interactive"] is not None or (not text and env.stdin_isatty):
        _check_headless_only(given)
        where = {"latest": where["latest"], "session_id": where["session_id"]}
        return _interactive(env, flags, given["prompt_interactive"], output_format, **where)
    from qwen_code.ui import headless

    return headless.main(env, flags, text, output_format=output_format, **where)


def _where(given: dict[str, Any]) -> dict[str, Any]:
    """Which session, and partial messages or not (keyword arguments of the headless
    front ends' `main`)."""
    from qwen_code.errors import InputError

    tool = given["permission_prompt_tool"]
    if tool is not None and tool != "stdio":
        raise InputError(
            f"--permission-prompt-tool: only 'stdio' is supported (got {tool!r}); an MCP "
            "tool as the approver is not."
        )
    if given["fork_session"] and not (given["continue_session"] or given["resume"]):
        raise InputError("--fork-session goes with --continue or --resume.")
    return {
        "latest": given["continue_session"],
        "session_id": given["resume"],
        "new_session_id": _session_id_flag(given["new_session_id"]),
        "fork": given["fork_session"],
        "partial": given["include_partial_messages"],
    }


def _session_id_flag(value: str | None) -> str | None:
    import uuid

    from qwen_code.errors import InputError

    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InputError(f"--session-id: {value!r} is not a UUID.") from None


def _check_stream_only(given: dict[str, Any]) -> None:
    from qwen_code.errors import InputError

    for flag, name in (
        ("--permission-prompt-tool", "permission_prompt_tool"),
        ("--replay-user-messages", "replay_user_messages"),
    ):
        if given[name]:
            raise InputError(f"{flag} goes with --input-format stream-json.")


def _check_headless_only(given: dict[str, Any]) -> None:
    from qwen_code.errors import InputError

    for flag, name in (("--session-id", "new_session_id"), ("--fork-session", "fork_session")):
        if given[name]:
            raise InputError(f"{flag} applies to headless runs: pass a prompt with -p.")


def _flags(given: dict[str, Any]) -> Flags:
    """`Flags` from `run`'s parameters of the same names; the lists are split here."""
    from dataclasses import fields

    from qwen_code.config import Flags

    values = {f.name: given[f.name] for f in fields(Flags) if f.name in given}
    values.update(
        include_directories=_split(given["include_directories"]),
        allowed_tools=list(given["allowed_tools"] or ()),  # split by the rule parser later
        disallowed_tools=_rule_list(given["disallowed_tools"]),
        tools=None if given["tools"] is None else _split([given["tools"]]),
        setting_sources=None if given["setting_sources"] is None else _sources(given),
        sandbox=_sandbox_flag(given["sandbox"]),
        mcp_config=list(given["mcp_config"] or ()),
        allowed_mcp_server_names=_split(given["allowed_mcp_server_names"]) or None,
    )
    return Flags(**values)


def _rule_list(values: list[str] | None) -> list[str]:
    """Rules given as `A,B(x, y)`: split at commas outside parentheses."""
    from qwen_code.agent.permission_rules import split_rule_list

    return [rule for value in values or () for rule in split_rule_list(value)]


def _sources(given: dict[str, Any]) -> list[str]:
    from qwen_code.errors import InputError

    sources = _split([given["setting_sources"]])
    unknown = [s for s in sources if s not in ("user", "project", "local")]
    if unknown:
        raise InputError(f"--setting-sources: {unknown[0]!r} is not user, project or local.")
    return sources


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
    cls=HelpGroup,
    help="Inspect and customize the prompts sent to the model.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(prompts_app, name="prompts")
cli_serve.register(app)
cli_sessions.register(app)
cli_mcp.register(app)
cli_proxy.register(app)
cli_eval.register(app)


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


_SUBCOMMANDS = ("serve", "cost", "sessions", "checkpoints", "prompts", "mcp", "proxy", "eval")
"""Commands with flags of their own (the Claude Code names are rewritten for `run` only)."""

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


def _usage_error(exc: Exception, stderr: Any) -> None:
    """A command-line mistake: the usage line, where help is (`qwen-code --help`, not the
    hidden default command's), and the message without pydantic's "Value error," and
    with suggestions only for options that are really close."""
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "qwen-code"
    if path == f"qwen-code {DEFAULT_COMMAND}":
        path = "qwen-code"
    if ctx is not None:
        print(ctx.get_usage(), file=stderr)
    print(f"Try '{path} --help' for help.\n", file=stderr)
    print(f"Error: {_usage_message(exc, ctx)}", file=stderr)


def _usage_message(exc: Exception, ctx: Any) -> str:
    import difflib

    option = getattr(exc, "option_name", None)
    if option and getattr(exc, "possibilities", None) is not None and ctx is not None:
        known = {o for p in ctx.command.params for o in (*p.opts, *p.secondary_opts)}
        close = difflib.get_close_matches(option, sorted(known), n=3, cutoff=0.75)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        return f"No such option: {option}{hint}"
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    return message.replace("Value error, ", "")


def main(argv: list[str] | None = None, env: Environment | None = None) -> int:
    """Entry point: returns the process exit code. `env`: the process as
    `Environment.detect()` reads it, unless given (tests)."""
    from qwen_code.errors import ExitCode, QwenCodeError

    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] not in ("mcp", "proxy"):  # `mcp add ... -- CMD -r`: own flags
        args = _optional_sandbox_value(_optional_resume_value(args))
    try:
        env = env or Environment.detect()
    except OSError as exc:  # the working directory was deleted under us
        print(f"qwen-code: cannot use the working directory: {exc.strerror}", file=sys.stderr)
        return int(ExitCode.INPUT)
    try:
        if not args or args[0] not in _SUBCOMMANDS:
            args = cli_compat.translate(args, env.cwd)
        result = app(args=args, prog_name="qwen-code", standalone_mode=False, obj=env)
    except QwenCodeError as exc:
        print(f"qwen-code: {exc}", file=env.stderr)
        return int(exc.exit_code)
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        return int(ExitCode.INTERRUPTED)
    except typer.TyperException as exc:
        _usage_error(exc, env.stderr)
        return int(ExitCode.INPUT)
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)
    return int(result) if isinstance(result, int) else 0
