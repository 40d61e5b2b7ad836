"""Claude Code's (and Qwen Code's) command-line names, so the SDKs that start those CLIs
start qwen-code: `ClaudeAgentOptions(cli_path="qwen-code")`, Qwen Code's SDK with
`path_to_qwen_executable`.

The Claude Agent SDK starts its CLI with flags named as Claude Code names them. Those with
a qwen-code equivalent are rewritten here before the parser sees them (`--permission-mode
acceptEdits` is `--approval-mode auto-edit`); those that only add output qwen-code always
writes are dropped; those naming something qwen-code does not have are refused with a
message naming the flag, instead of the parser's bare "No such option". Flags with the
same name and meaning in both (`--model`, `--resume`, `--allowedTools`, ...) are declared
by the parser itself. Qwen Code's SDK passes `--channel=SDK` (its approvals then go to the
program, as `--permission-prompt-tool stdio`), `--core-tools` (`--tools`),
`--exclude-tools` (deny rules) and `--auth-type` (ignored: the provider comes from the
settings and the environment).
"""

from __future__ import annotations

from pathlib import Path

from qwen_code.errors import InputError

PERMISSION_MODES = {
    "default": "default",
    "acceptEdits": "auto-edit",
    "plan": "plan",
    "bypassPermissions": "yolo",
    "dontAsk": "default",
    "auto-edit": "auto-edit",
    "yolo": "yolo",
}
"""Claude Code's permission modes (and ours) as qwen-code approval modes. `dontAsk` is
`default` without `--permission-prompt-tool`: whatever would ask is refused."""

DROPPED = frozenset({"--verbose", "--include-hook-events"})
"""Accepted and ignored: stream-json output always holds every message."""

UNSUPPORTED = {
    "--fallback-model": "qwen-code retries the same model; set another with --model",
    "--betas": "Anthropic API betas do not apply to OpenAI-compatible servers",
    "--plugin-dir": "Claude Code plugins are not supported",
    "--task-budget": "use --max-budget-usd or --max-tool-calls",
    "--resume-session-at": "resume a whole session (--resume) or rewind with checkpoints",
    "--resume-drops-turn": "resume a whole session (--resume)",
    "--session-mirror": "sessions are saved under QWEN_HOME; no mirror",
    "--thinking": "thinking settings are not supported",
    "--max-thinking-tokens": "thinking settings are not supported",
    "--thinking-display": "thinking settings are not supported",
    "--effort": "effort settings are not supported",
    "--agents": "put agents in .qwen/agents/ or send them in the initialize request",
    "--ide": "see --acp for editors",
    "--chrome": "browser control is not supported",
}
"""Claude Code flags qwen-code refuses, with what to do instead."""

_WITH_VALUE = {
    "--permission-mode",
    "--channel",
    "--core-tools",
    "--exclude-tools",
    "--auth-type",
    "--system-prompt-file",
    "--fallback-model",
    "--betas",
    "--plugin-dir",
    "--task-budget",
    "--resume-session-at",
    "--resume-drops-turn",
    "--thinking",
    "--max-thinking-tokens",
    "--thinking-display",
    "--effort",
    "--agents",
}


def permission_mode(name: str) -> str:
    """Our approval mode for a Claude Code (or our own) mode name; InputError if none."""
    mode = PERMISSION_MODES.get(name)
    if mode is None:
        known = ", ".join(PERMISSION_MODES)
        raise InputError(f"--permission-mode: {name!r} is not a mode; use one of {known}.")
    return mode


def translate(args: list[str], cwd: Path) -> list[str]:
    """`args` with Claude Code's names rewritten to ours (up to a `--`)."""
    out: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            return [*out, *args[index:]]
        name, eq, inline = arg.partition("=")
        value: str | None = inline if eq else None
        if name in _WITH_VALUE and value is None:
            if index + 1 >= len(args):
                raise InputError(f"{name} needs a value.")
            value = args[index + 1]
            index += 1
        index += 1
        out.extend(_rewrite(name, value, arg, cwd))
    return out


def _rewrite(name: str, value: str | None, arg: str, cwd: Path) -> list[str]:
    if name in UNSUPPORTED:
        raise InputError(
            f"{name} is a Claude Code option qwen-code does not support: {UNSUPPORTED[name]}."
        )
    if name in DROPPED:
        return []
    if name == "--permission-mode" and value is not None:
        return ["--approval-mode", permission_mode(value)]
    if name == "--channel":  # Qwen Code's SDK: approvals go to the program
        return ["--permission-prompt-tool", "stdio"] if value == "SDK" else []
    if name == "--core-tools" and value is not None:
        return ["--tools", value]
    if name == "--exclude-tools" and value is not None:
        return ["--disallowed-tools", value]
    if name == "--auth-type":  # the provider comes from settings and the environment
        return []
    if name == "--system-prompt-file" and value is not None:
        return ["--system-prompt", _read_prompt_file(cwd / Path(value).expanduser())]
    return [arg]


def _read_prompt_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--system-prompt-file: cannot read {path} ({exc}).") from None
