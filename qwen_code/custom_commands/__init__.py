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

from qwen_code.custom_commands.expand import (
    Expansion,
    Injection,
    ShellOutcome,
    expand,
    expand_template,
    find_injections,
    read_capped,
    split_invocation,
    tool_runner_shell,
)
from qwen_code.custom_commands.files import (
    ARGS,
    EXTENSIONS,
    MAX_COMMAND_FILE_BYTES,
    MAX_DIR_FILES,
    MAX_FILE_BYTES,
    MAX_TOTAL_BYTES,
    CommandFileError,
    CommandProblem,
    CustomCommand,
    Discovery,
    Scope,
    command_dirs,
    command_name,
    discover,
    display_path,
    find_command,
    load_command_file,
    parse_front_matter,
    parse_simple_yaml,
    parse_toml,
    reload_command,
    scan_dir,
)

__all__ = [
    "ARGS",
    "EXTENSIONS",
    "MAX_COMMAND_FILE_BYTES",
    "MAX_DIR_FILES",
    "MAX_FILE_BYTES",
    "MAX_TOTAL_BYTES",
    "CommandFileError",
    "CommandProblem",
    "CustomCommand",
    "Discovery",
    "Expansion",
    "Injection",
    "Scope",
    "ShellOutcome",
    "command_dirs",
    "command_name",
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
    "read_capped",
    "reload_command",
    "scan_dir",
    "split_invocation",
    "tool_runner_shell",
]
