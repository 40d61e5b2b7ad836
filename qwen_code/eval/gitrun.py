"""Running git for the eval: no user or system configuration, no hooks, no prompts, and
errors that say in one sentence what failed."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

BRANCH = "main"

_KEPT_GIT_VARS = (
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
    "GIT_PROXY_COMMAND",
)
"""The only GIT_* variables passed on: how to reach a remote. Others (GIT_DIR,
GIT_INDEX_FILE, GIT_AUTHOR_DATE, ...) would point git elsewhere or change the base sha."""

_SAFE_CONFIG = (
    f"core.hooksPath={os.devnull}",
    "core.fsmonitor=false",
    f"init.defaultBranch={BRANCH}",
    "advice.detachedHead=false",
    "protocol.ext.allow=never",
    "gc.auto=0",
)


class EvalRepoError(Exception):
    """A repository, template or workspace could not be made or used; the message is one
    sentence for the run's `error`."""


def git_env(extra: Mapping[str, str | Path] | None = None) -> dict[str, str]:
    """The environment git runs in: the caller's, less its GIT_* settings, with no global
    or system configuration and no terminal prompts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _KEPT_GIT_VARS}
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_LITERAL_PATHSPECS="1",
        LC_ALL="C",
    )
    if "GIT_SSH_COMMAND" not in env and "GIT_SSH" not in env:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


def git_argv(args: Sequence[str | Path]) -> list[str]:
    argv = ["git"]
    for item in _SAFE_CONFIG:
        argv += ["-c", item]
    return argv + [str(a) for a in args]


def git(
    *args: str | Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    what: str | None = None,
) -> bytes:
    """Run git; its stdout. A failure raises EvalRepoError naming `what` (or the git
    command) and git's own first line of complaint."""
    proc = run_git(*args, cwd=cwd, env=env, input=input)
    if proc.returncode != 0:
        raise EvalRepoError(f"{what or 'git ' + str(args[0])} failed: {first_line(proc.stderr)}")
    return proc.stdout


def run_git(
    *args: str | Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            git_argv(args),
            cwd=cwd,
            env=dict(env) if env is not None else git_env(),
            input=input,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        raise EvalRepoError("git is not installed (or not on PATH).") from None
    except OSError as exc:
        raise EvalRepoError(f"git could not run: {exc}") from None


def first_line(stderr: bytes) -> str:
    """git's most telling line: the first `fatal:`/`error:` line, else the first line."""
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line.split(":", 1)[1].strip()
    return lines[0] if lines else "no message"


def git_pipe(
    producer: Sequence[str],
    consumer: Sequence[str],
    *,
    source: Path,
    dest: Path,
    stdin: IO[bytes],
    what: str,
) -> None:
    """`git PRODUCER` in `source` piped into `git CONSUMER` in `dest` (pack-objects into
    index-pack), without holding the stream in memory."""
    env = git_env()
    with tempfile.TemporaryFile() as errors:
        try:
            first = subprocess.Popen(
                git_argv(producer),
                cwd=source,
                env=env,
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=errors,
            )
        except OSError as exc:
            raise EvalRepoError(f"git could not run: {exc}") from None
        assert first.stdout is not None
        try:
            second = subprocess.run(
                git_argv(consumer),
                cwd=dest,
                env=env,
                stdin=first.stdout,
                capture_output=True,
                check=False,
            )
        finally:
            first.stdout.close()
            code = first.wait()
        errors.seek(0)
        if code != 0:
            raise EvalRepoError(f"{what} failed: {first_line(errors.read())}")
        if second.returncode != 0:
            raise EvalRepoError(f"{what} failed: {first_line(second.stderr)}")
