"""Expanding a custom command: `@{path}`, `!{command}` (through the approval policy) and
`{{args}}`, and recognising `/name args` invocations."""

from __future__ import annotations

import codecs
import itertools
import os
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

from qwen_code.agent.approval import (
    SHELL_TOOL,
    ApprovalAnswer,
    Ask,
    Deny,
    HeadlessApprover,
    suggest_rule,
)
from qwen_code.agent.events import ToolCall
from qwen_code.agent.tool_runner import ToolRunner
from qwen_code.custom_commands.files import (
    _NAME_RE,
    ARGS,
    MAX_DIR_FILES,
    MAX_FILE_BYTES,
    MAX_TOTAL_BYTES,
    CommandFileError,
    CommandProblem,
    CustomCommand,
    Discovery,
    Injection,
    command_dirs,
    discover,
    display_path,
    find_command,
    find_injections,
    load_command_file,
    parse_front_matter,
    parse_simple_yaml,
    parse_toml,
    reload_command,
)
from qwen_code.tools.base import ToolError
from qwen_code.tools.fileio import (
    BinaryFileError,
    decode_bytes,
    list_files,
    looks_binary,
    normalize_newlines,
    sniff_format,
)
from qwen_code.tools.workspace import Workspace

# --- expansion -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShellOutcome:
    """What came of one `!{command}`."""

    command: str
    ran: bool
    output: str = ""
    """stdout and stderr interleaved (capped like the shell tool's output)."""
    exit_code: int | None = None
    timed_out: bool = False
    reason: str = ""
    """Why it did not run (denied, shell tool unavailable, empty command)."""


ShellRunner: TypeAlias = Callable[[str], Awaitable[ShellOutcome]]


@dataclass(slots=True)
class Expansion:
    text: str
    """The prompt to send."""
    notes: list[str] = field(default_factory=list)
    """What went wrong (unreadable file, command not run or failed), for the user; each
    is also in `text` for the model."""
    shell: list[ShellOutcome] = field(default_factory=list)


@dataclass(slots=True)
class _Budget:
    left: int


async def expand(
    command: CustomCommand,
    args: str,
    *,
    workspace: Workspace,
    shell: ShellRunner | None,
) -> Expansion:
    """The prompt of `command` with its injections and `{{args}}` filled in (see the module
    docstring). `shell` runs `!{…}` commands; None leaves each as a "not run" note."""
    return await expand_template(command.prompt, args, workspace=workspace, shell=shell)


async def expand_template(
    prompt: str, args: str, *, workspace: Workspace, shell: ShellRunner | None
) -> Expansion:
    args = args.strip()
    result = Expansion(text="")
    injections = find_injections(prompt)
    replaced: dict[int, str] = {}
    budget = _Budget(MAX_TOTAL_BYTES)
    for n, item in enumerate(injections):  # 1. files
        if item.kind == "file":
            replaced[n] = await _inject_file(item, args, workspace, budget, result.notes)
    for n, item in enumerate(injections):  # 2. shell commands
        if item.kind == "shell":
            replaced[n] = await _inject_shell(item, args, shell, result)
    pieces: list[str] = []  # 3. {{args}} in the template's own text
    position = 0
    for n, item in enumerate(injections):
        pieces += [prompt[position : item.start].replace(ARGS, args), replaced[n]]
        position = item.end
    pieces.append(prompt[position:].replace(ARGS, args))
    text = "".join(pieces)
    if ARGS not in prompt and args:
        text = f"{text.rstrip()}\n\n{args}"
    result.text = text
    return result


async def _inject_file(
    item: Injection, args: str, workspace: Workspace, budget: _Budget, notes: list[str]
) -> str:
    ref = item.source.replace(ARGS, args).strip()

    def failed(reason: str) -> str:
        note = f"@{{{ref}}}: {reason}"
        notes.append(note)
        return f"[{note}]"

    if not ref:
        return failed("no path given")
    try:
        path = workspace.resolve(ref)
    except ToolError:
        return failed("outside the workspace, not read")
    if not path.exists():
        return failed("no such file or directory")
    if path.is_dir():
        return await _inject_dir(path, workspace, budget, failed)
    if not path.is_file():
        return failed("not a regular file, not read")
    if budget.left <= 0:
        return failed(f"not read, the {MAX_TOTAL_BYTES:,}-byte limit for @{{…}} is reached")
    try:
        text, read, size = read_capped(path, min(MAX_FILE_BYTES, budget.left))
    except BinaryFileError:
        return failed("binary file, not read")
    except OSError as exc:
        return failed(f"cannot read ({exc.strerror or exc})")
    budget.left -= read
    if read < size:
        notes.append(f"@{{{ref}}}: only the first {read:,} of {size:,} bytes were included")
        text += f"\n[truncated: the first {read:,} of {size:,} bytes of {ref}]"
    return text


async def _inject_dir(
    path: Path, workspace: Workspace, budget: _Budget, failed: Callable[[str], str]
) -> str:
    try:
        files = sorted(await list_files(path))
    except OSError as exc:
        return failed(f"cannot list the directory ({exc.strerror or exc})")
    sections: list[str] = []
    skipped = 0
    for file in files[:MAX_DIR_FILES]:
        if budget.left <= 0:
            skipped += 1
            continue
        try:
            text, read, size = read_capped(file, min(MAX_FILE_BYTES, budget.left))
        except (BinaryFileError, OSError):
            continue
        budget.left -= read
        cut = f"\n[truncated: the first {read:,} of {size:,} bytes]" if read < size else ""
        sections.append(f"--- {workspace.display(file)} ---\n{text}{cut}")
    skipped += max(len(files) - MAX_DIR_FILES, 0)
    if skipped:
        failed(f"{skipped} file(s) left out (size limits)")
        sections.append(f"[{skipped} more file(s) left out: size limits]")
    if not sections:
        return failed("no readable text files in the directory")
    return "\n\n".join(sections)


def read_capped(path: Path, cap: int) -> tuple[str, int, int]:
    """(text, bytes read, file size) for the first `cap` bytes of a text file; a
    character split by the cut is dropped. Raises `BinaryFileError`."""
    with path.open("rb") as fh:
        data = fh.read(cap + 1)
        size = max(os.fstat(fh.fileno()).st_size, len(data))
    if len(data) <= cap:
        return decode_bytes(data).text, len(data), len(data)
    data = data[:cap]
    if looks_binary(data):
        raise BinaryFileError("the file contains NUL bytes")
    fmt = sniff_format(path)
    codec = fmt.encoding
    if fmt.bom:
        codec = {"utf-8": "utf-8-sig"}.get(codec, codec.rsplit("-", 1)[0])
    text = codecs.getincrementaldecoder(codec)(errors="replace").decode(data, final=False)
    return normalize_newlines(text), len(data), size


async def _inject_shell(
    item: Injection, args: str, shell: ShellRunner | None, result: Expansion
) -> str:
    command = item.source.replace(ARGS, shlex.quote(args)).strip()
    if not command:
        outcome = ShellOutcome(command="", ran=False, reason="the command is empty")
    elif shell is None:
        outcome = ShellOutcome(command=command, ran=False, reason="shell commands are off")
    else:
        outcome = await shell(command)
    result.shell.append(outcome)
    if not outcome.ran:
        note = f"!{{{command}}} was not run: {outcome.reason}"
        result.notes.append(note)
        return f"[Shell command `{command}` was not run: {outcome.reason}]"
    text = outcome.output.rstrip("\n")
    if outcome.timed_out:
        note = f"!{{{command}}} was killed: it timed out"
    elif outcome.exit_code != 0:
        note = f"!{{{command}}} exited with code {outcome.exit_code}"
    else:
        return text
    result.notes.append(note)
    status = "timed out" if outcome.timed_out else f"exited with code {outcome.exit_code}"
    return f"{text}\n[Shell command `{command}` {status}]".lstrip("\n")


# --- running !{…} through the session's approval policy --------------------------------


def tool_runner_shell(runner: ToolRunner) -> ShellRunner:
    """A `ShellRunner` that treats each `!{command}` as a `run_shell_command` call of the
    session: the mode and allow rules decide (`decide`), `Ask` goes to the session's
    approver (the REPL asks the user; headless denies), and an approved command runs
    with the shell tool (its timeout, process group, output caps and environment without
    the provider credentials); credential values in its output are redacted."""

    counter = itertools.count(1)

    async def run(command: str) -> ShellOutcome:
        call = ToolCall(
            id=f"custom-command-{next(counter)}", name=SHELL_TOOL, arguments={"command": command}
        )
        valid = runner.registry.validate(SHELL_TOOL, dict(call.arguments))
        if isinstance(valid, str):
            return ShellOutcome(command, ran=False, reason="the shell tool is not enabled")
        decision = runner.decide(call, valid)
        if isinstance(decision, Deny):
            return ShellOutcome(command, ran=False, reason=decision.reason)
        if isinstance(decision, Ask):
            answer = await runner.ask(call, valid, decision, why="for a custom command")
            if not answer.approved:
                return ShellOutcome(
                    command, ran=False, reason=_denial(runner, call, decision, answer)
                )
        output = await runner.registry.execute(valid, runner.ctx)
        content = runner.ctx.credentials.redact(output.content)
        data = output.data or {}
        if "exit_code" not in data:
            return ShellOutcome(command, ran=False, reason=content.removeprefix("Error: "))
        return ShellOutcome(
            command,
            ran=True,
            output=_shell_output(content),
            exit_code=data.get("exit_code"),
            timed_out=bool(data.get("timed_out")),
        )

    return run


def _denial(runner: ToolRunner, call: ToolCall, decision: Ask, answer: ApprovalAnswer) -> str:
    if not isinstance(runner.approver, HeadlessApprover):
        return answer.message.strip() or "the user denied it"
    if decision.source != "mode":
        return f"{decision.reason}; a non-interactive run cannot ask for that confirmation"
    rule = suggest_rule(call)
    return (
        f"it needs approval in {runner.mode!r} mode and a non-interactive run cannot ask "
        f"(allow it with --allowed-tools {shlex.quote(rule)} or --yolo)"
    )


def _shell_output(content: str) -> str:
    """The output part of a shell tool result (`Exit code: N` / `Output:` / text / notes)."""
    lines = content.split("\n")
    if len(lines) >= 2 and lines[1] == "Output:":
        text = "\n".join(lines[2:])
        return "" if text == "(no output)" else text
    return content


# --- invocations -----------------------------------------------------------------------


def split_invocation(text: str) -> tuple[str, str] | None:
    """`/git:commit fix typo` → ("git:commit", "fix typo"); None when `text` does not
    start with a slash and a name (a path such as `/usr/bin` is not a name)."""
    match = _NAME_RE.match(text.strip())
    if not match:
        return None
    return match.group(1).lower(), (match.group(2) or "").strip()


__all__ = [
    "CommandFileError",
    "CommandProblem",
    "CustomCommand",
    "Discovery",
    "Expansion",
    "Injection",
    "ShellOutcome",
    "ShellRunner",
    "command_dirs",
    "discover",
    "display_path",
    "expand",
    "expand_template",
    "find_command",
    "find_injections",
    "load_command_file",
    "parse_front_matter",
    "parse_simple_yaml",
    "parse_toml",
    "reload_command",
    "split_invocation",
    "tool_runner_shell",
]
