"""Custom slash commands: prompt templates kept in files, as Qwen Code and Gemini CLI do.

Where: `<project>/.qwen/commands/` (the project is the git root above the working
directory, or the working directory) and `$QWEN_HOME/commands/`; a project command wins
over a user command of the same name. A sub-folder is a namespace: `git/commit.md` is
`/git:commit`. Names are lower case.

Formats:

- Markdown (`*.md`): an optional front matter block (`---` … `---`, simple YAML
  `key: value` lines; `description` is shown in /help), then the prompt.
- TOML (`*.toml`): `prompt = \"\"\"…\"\"\"` and an optional `description = "…"`.

A file that cannot be used (bad front matter or TOML, no prompt, an unclosed `!{` or
`@{`) is reported as a `CommandProblem` and skipped.

Expanding a command with its arguments (the text after the name) works in this order:

1. `@{path}` → the file's content (a directory: the content of its files), read through
   `Workspace.resolve`, so a path outside the workspace becomes a note; capped in size.
   `{{args}}` inside `@{…}` is replaced by the arguments.
2. `!{command}` → the command's output, run like a `run_shell_command` tool call, so
   it goes through the session's approval policy (see `tool_runner_shell`); a denied or
   failed command becomes a note. `{{args}}` inside `!{…}` is shell-quoted.
3. `{{args}}` → the arguments as typed. With no `{{args}}` anywhere in the prompt and
   non-empty arguments, they are appended after two newlines.

What a file or command produces is inserted as is and never scanned again, so a file
that contains `!{…}` cannot make anything run.
"""

from __future__ import annotations

import codecs
import itertools
import os
import re
import shlex
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from qwen_code.agent.approval import (
    SHELL_TOOL,
    ApprovalAnswer,
    ApprovalRequest,
    Ask,
    Deny,
    HeadlessApprover,
    decide,
    parse_rules,
    suggest_rule,
)
from qwen_code.agent.events import ToolCall
from qwen_code.agent.tool_runner import ToolRunner
from qwen_code.config import project_root
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

Scope: TypeAlias = Literal["project", "user"]
ARGS = "{{args}}"
EXTENSIONS = (".md", ".toml")
MAX_COMMAND_FILE_BYTES = 256 * 1024
MAX_FILE_BYTES = 256 * 1024
"""How much of one file an `@{path}` injects."""
MAX_TOTAL_BYTES = 1024 * 1024
"""How much all `@{…}` of one expansion inject together."""
MAX_DIR_FILES = 200
_NAME_RE = re.compile(r"^/([^\s/]+)(?:\s+(.*))?$", re.DOTALL)


class CommandFileError(Exception):
    """A command file that cannot be used; the message says why."""


# --- the commands ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomCommand:
    name: str
    """The name without the slash, namespaces joined with `:` (`git:commit`)."""
    prompt: str
    """The template: the Markdown body or the TOML `prompt`."""
    path: Path
    scope: Scope
    description: str = ""
    """From the front matter or the TOML; empty when the file gives none."""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)
    """Every front matter / TOML key (e.g. `argument-hint`), for front ends."""

    @property
    def help(self) -> str:
        """The one line /help shows."""
        return self.description or f"Custom command from {display_path(self.path)}"


@dataclass(frozen=True, slots=True)
class CommandProblem:
    """A file that was skipped, and why."""

    path: Path
    name: str
    reason: str

    def __str__(self) -> str:
        label = f"/{self.name} " if self.name else ""
        return f"{label}({display_path(self.path)}) skipped: {self.reason}"


@dataclass(slots=True)
class Discovery:
    commands: dict[str, CustomCommand] = field(default_factory=dict)
    problems: list[CommandProblem] = field(default_factory=list)


def display_path(path: Path) -> str:
    """A short form of a command file's path: relative to the working directory when
    inside it, `~/…` under the home directory, else absolute."""
    for base, prefix in ((Path.cwd(), ""), (Path.home(), "~/")):
        if path.is_relative_to(base):
            return prefix + str(path.relative_to(base))
    return str(path)


def command_dirs(cwd: Path, home: Path) -> list[tuple[Scope, Path]]:
    """Where commands live, lowest precedence first: the user's, then the project's."""
    dirs: list[tuple[Scope, Path]] = [("user", home / "commands")]
    project = project_root(cwd) / ".qwen" / "commands"
    if _real(project) != _real(home / "commands"):
        dirs.append(("project", project))
    return dirs


def _real(path: Path) -> str:
    return os.path.realpath(path)


def discover(cwd: Path, home: Path) -> Discovery:
    """Every custom command for a session in `cwd` with qwen-code home `home`."""
    found = Discovery()
    for scope, directory in command_dirs(cwd, home):
        commands, problems = scan_dir(directory, scope)
        found.commands.update(commands)
        found.problems.extend(problems)
    return found


def find_command(name: str, cwd: Path, home: Path) -> CustomCommand | CommandProblem | None:
    """The command called `name` (case-insensitive), the problem with its file, or None."""
    found = discover(cwd, home)
    name = name.lower()
    if name in found.commands:
        return found.commands[name]
    problems = [p for p in found.problems if p.name == name]
    return problems[-1] if problems else None


def scan_dir(
    directory: Path, scope: Scope
) -> tuple[dict[str, CustomCommand], list[CommandProblem]]:
    """The commands in one folder (recursively). Within a folder, for two files giving the
    same name (`x.md` and `x.toml`), the first in sorted order wins (Markdown first)."""
    commands: dict[str, CustomCommand] = {}
    problems: list[CommandProblem] = []
    if not directory.is_dir():
        return commands, problems

    def walk_error(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename else directory
        problems.append(CommandProblem(where, "", f"cannot read the folder ({exc.strerror})"))

    for folder, dirs, files in os.walk(directory, onerror=walk_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(folder)
        for filename in sorted(files, key=_file_order):
            path = base / filename
            if filename.startswith(".") or path.suffix not in EXTENSIONS:
                continue
            try:
                name = command_name(path, directory)
            except CommandFileError as exc:
                problems.append(CommandProblem(path, "", str(exc)))
                continue
            if name in commands:
                other = commands[name].path.name
                reason = f"{other} in the same folder defines /{name} already"
                problems.append(CommandProblem(path, name, reason))
                continue
            try:
                commands[name] = load_command_file(path, name=name, scope=scope)
            except CommandFileError as exc:
                problems.append(CommandProblem(path, name, str(exc)))
    return commands, problems


def _file_order(filename: str) -> tuple[str, int]:
    stem, _, suffix = filename.rpartition(".")
    return stem.lower(), 0 if suffix == "md" else 1


def command_name(path: Path, directory: Path) -> str:
    """`<directory>/git/commit.md` → `git:commit`. A `:` in a file name becomes `_`."""
    parts = list(path.relative_to(directory).with_suffix("").parts)
    parts = [p.lower().replace(":", "_") for p in parts]
    if any(not p or any(c.isspace() for c in p) for p in parts):
        raise CommandFileError("a command name cannot contain spaces")
    return ":".join(parts)


def load_command_file(path: Path, *, name: str, scope: Scope) -> CustomCommand:
    """Read and parse one command file; raises `CommandFileError` saying what is wrong."""
    try:
        size = path.stat().st_size
        if size > MAX_COMMAND_FILE_BYTES:
            raise CommandFileError(f"the file is larger than {MAX_COMMAND_FILE_BYTES:,} bytes")
        text = decode_bytes(path.read_bytes()).text
    except BinaryFileError as exc:
        raise CommandFileError(f"not a text file ({exc})") from exc
    except OSError as exc:
        raise CommandFileError(f"cannot read the file ({exc.strerror or exc})") from exc
    if path.suffix == ".toml":
        metadata, prompt = parse_toml(text)
    else:
        metadata, prompt = parse_front_matter(text)
        prompt = prompt.strip()
    if not prompt.strip():
        raise CommandFileError("the prompt is empty")
    find_injections(prompt)  # an unclosed !{ or @{ is a problem now, not at run time
    description = metadata.get("description", "")
    if isinstance(description, list):
        description = ", ".join(str(d) for d in description)
    if not isinstance(description, str):
        raise CommandFileError("`description` must be a string")
    return CustomCommand(
        name=name,
        prompt=prompt,
        path=path,
        scope=scope,
        description=" ".join(description.split()),
        metadata=metadata,
    )


def reload_command(command: CustomCommand) -> CustomCommand | CommandProblem:
    """Read the command's file again (it may have been edited since discovery)."""
    try:
        return load_command_file(command.path, name=command.name, scope=command.scope)
    except CommandFileError as exc:
        return CommandProblem(command.path, command.name, str(exc))


# --- file formats ----------------------------------------------------------------------


def parse_toml(text: str) -> tuple[dict[str, Any], str]:
    """(all keys, prompt) of a Gemini-style TOML command."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CommandFileError(f"invalid TOML: {exc}") from exc
    prompt = data.get("prompt")
    if prompt is None:
        raise CommandFileError("the TOML has no `prompt`")
    if not isinstance(prompt, str):
        raise CommandFileError("`prompt` must be a string")
    return data, prompt


def parse_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(front matter, body) of a Markdown command; no front matter gives ({}, text)."""
    text = normalize_newlines(text)
    lines = text.split("\n")
    if lines[0].rstrip() != "---":
        return {}, text
    for end in range(1, len(lines)):
        if lines[end].rstrip() in ("---", "..."):
            break
    else:
        raise CommandFileError("the front matter opened by `---` on line 1 is not closed")
    return parse_simple_yaml(lines[1:end], first_line=2), "\n".join(lines[end + 1 :])


_KEY_RE = re.compile(r"^([A-Za-z_][\w.-]*)\s*:(?:\s+(.*))?$")
_BLOCK_RE = re.compile(r"^([|>])([+-]?)\s*(?:#.*)?$")


def parse_simple_yaml(lines: list[str], *, first_line: int = 1) -> dict[str, Any]:
    """The YAML subset front matter needs: `key: value` (plain, 'single' or "double"
    quoted), block scalars (`key: |` / `key: >`), plain values continued on indented
    lines, and lists of `- item` lines. Comments and blank lines are skipped."""
    result: dict[str, Any] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        number = first_line + i
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _KEY_RE.match(line.rstrip())
        if line[0].isspace() or not match:
            raise CommandFileError(
                f"front matter line {number}: expected `key: value`, got {line.strip()!r}"
            )
        key, raw = match.group(1), (match.group(2) or "").strip()
        block: list[str] = []
        while i < len(lines) and (not lines[i].strip() or lines[i][0].isspace()):
            block.append(lines[i])
            i += 1
        while block and not block[-1].strip():
            block.pop()
        result[key] = _yaml_value(raw, block, number)
    return result


def _yaml_value(raw: str, block: list[str], number: int) -> Any:
    style = _BLOCK_RE.match(raw)
    if style:
        return _block_scalar(block, literal=style.group(1) == "|", chomp=style.group(2))
    items = [b.strip() for b in block if b.strip()]
    if not raw and items and all(item.startswith("-") for item in items):
        return [_scalar(item[1:].strip(), number) for item in items]
    if raw.startswith(("'", '"')):
        return _scalar(" ".join([raw, *items]), number)
    if raw.startswith(("[", "{")):
        raise CommandFileError(f"front matter line {number}: flow collections are not supported")
    return _scalar(" ".join(part for part in [raw, *items] if part), number)


def _block_scalar(block: list[str], *, literal: bool, chomp: str) -> str:
    indents = [len(b) - len(b.lstrip()) for b in block if b.strip()]
    cut = min(indents, default=0)
    lines = [b[cut:] if b.strip() else "" for b in block]
    if literal:
        text = "\n".join(lines)
    else:
        paragraphs = [" ".join(group) for blank, group in _groups(lines) if not blank]
        text = "\n".join(paragraphs)
    return text if chomp == "-" else text + "\n"


def _groups(lines: list[str]) -> list[tuple[bool, list[str]]]:
    return [(blank, list(g)) for blank, g in itertools.groupby(lines, key=lambda s: not s)]


_DOUBLE_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/", "r": "\r", "0": "\0"}


def _scalar(raw: str, number: int) -> str:
    """One scalar value: quotes removed (escapes of double quotes undone), a trailing
    ` # comment` dropped from plain values."""
    if raw.startswith('"'):
        out, i = [], 1
        while i < len(raw):
            ch = raw[i]
            if ch == "\\" and i + 1 < len(raw):
                out.append(_DOUBLE_ESCAPES.get(raw[i + 1], raw[i + 1]))
                i += 2
                continue
            if ch == '"':
                return "".join(out)
            out.append(ch)
            i += 1
        raise CommandFileError(f"front matter line {number}: the double quote is not closed")
    if raw.startswith("'"):
        match = re.match(r"'((?:[^']|'')*)'", raw)
        if not match:
            raise CommandFileError(f"front matter line {number}: the single quote is not closed")
        return match.group(1).replace("''", "'")
    return re.sub(r"\s+#.*$", "", raw).strip()


# --- injections ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Injection:
    """One `@{…}` (kind "file") or `!{…}` (kind "shell") in a prompt."""

    kind: Literal["file", "shell"]
    source: str
    """What is between the braces, as written."""
    start: int
    end: int
    """The span of the whole `@{…}` / `!{…}` in the prompt."""


def find_injections(prompt: str) -> list[Injection]:
    """The `@{…}` and `!{…}` in `prompt`, in order. Braces nest (`!{echo {a,b}}`).
    Raises `CommandFileError` for one that is not closed."""
    found: list[Injection] = []
    i = 0
    while i < len(prompt) - 1:
        trigger = prompt[i : i + 2]
        if trigger not in ("@{", "!{"):
            i += 1
            continue
        depth, j = 1, i + 2
        while j < len(prompt) and depth:
            depth += {"{": 1, "}": -1}.get(prompt[j], 0)
            j += 1
        if depth:
            line = prompt.count("\n", 0, i) + 1
            raise CommandFileError(f"the {trigger} on line {line} of the prompt is not closed")
        kind: Literal["file", "shell"] = "file" if trigger == "@{" else "shell"
        found.append(Injection(kind, prompt[i + 2 : j - 1], i, j))
        i = j
    return found


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
    with the shell tool (its timeout, process group and output caps)."""

    counter = itertools.count(1)

    async def run(command: str) -> ShellOutcome:
        call = ToolCall(
            id=f"custom-command-{next(counter)}", name=SHELL_TOOL, arguments={"command": command}
        )
        valid = runner.registry.validate(SHELL_TOOL, dict(call.arguments))
        if isinstance(valid, str):
            return ShellOutcome(command, ran=False, reason="the shell tool is not enabled")
        decision = decide(runner.mode, valid.tool.kind, call, runner.rules)
        if isinstance(decision, Deny):
            return ShellOutcome(command, ran=False, reason=decision.reason)
        if isinstance(decision, Ask):
            request = ApprovalRequest(
                call=call,
                kind=valid.tool.kind,
                reason=f"{decision.reason} (for a custom command)",
                summary=valid.tool.summary(valid.params),
                preview=await valid.tool.preview(valid.params, runner.ctx),
                suggested_rule=suggest_rule(call),
            )
            answer = await runner.approver(request)
            if not answer.approved:
                return ShellOutcome(command, ran=False, reason=_denial(runner, request, answer))
            if answer.remember:
                runner.rules.extend(parse_rules([answer.rule or request.suggested_rule]))
        output = await runner.registry.execute(valid, runner.ctx)
        data = output.data or {}
        if "exit_code" not in data:
            return ShellOutcome(command, ran=False, reason=output.content.removeprefix("Error: "))
        return ShellOutcome(
            command,
            ran=True,
            output=_shell_output(output.content),
            exit_code=data.get("exit_code"),
            timed_out=bool(data.get("timed_out")),
        )

    return run


def _denial(runner: ToolRunner, request: ApprovalRequest, answer: ApprovalAnswer) -> str:
    if isinstance(runner.approver, HeadlessApprover):
        return (
            f"it needs approval in {runner.mode!r} mode and a non-interactive run cannot ask "
            f"(allow it with --yolo or --allowed-tools '{request.suggested_rule}')"
        )
    return answer.message.strip() or "the user denied it"


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
