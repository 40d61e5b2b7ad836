"""The bubblewrap command line for one sandboxed command, and whether bubblewrap works here.

The command runs in new user, pid, ipc, uts and cgroup namespaces (and a new network
namespace unless the network is `all`), sees the whole file system read-only except the
writable roots and a private /tmp, and finds the credential directories empty. bwrap is
not given `--new-session`: the command stays in the process group qwen-code made for it,
so timeouts, Ctrl+C and the end of the session still kill everything it started (the
group has no controlling terminal, so the TIOCSTI escape `--new-session` guards against
does not apply).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from qwen_code.sandbox.policy import PROTECTED_NAMES, SandboxPolicy

NAMESPACES = (
    "--unshare-user-try",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--die-with-parent",
)


BWRAP_ENV = "QWEN_CODE_BWRAP"
"""The bubblewrap binary to use, when it is not `bwrap` on PATH."""


def find_bwrap() -> str | None:
    given = os.environ.get(BWRAP_ENV)
    if given:
        return given if os.access(given, os.X_OK) else None
    return shutil.which("bwrap")


def unavailable_reason() -> str | None:
    """Why commands cannot be sandboxed here (None when they can): no bubblewrap, or
    bubblewrap cannot make namespaces (user namespaces off, a locked-down container).
    Checked once per process (and binary) by running `true` in a sandbox."""
    return _probe(find_bwrap())


@functools.cache
def _probe(bwrap: str | None) -> str | None:
    if not sys.platform.startswith("linux"):
        return f"the sandbox needs Linux and bubblewrap ({sys.platform} is not supported yet)"
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt install bubblewrap)"
    probe = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", *NAMESPACES]
    try:
        done = subprocess.run(
            [*probe, "--unshare-net", "--", "true"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not start: {exc}"
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        why = detail[-1] if detail else f"exit code {done.returncode}"
        return f"bubblewrap cannot create namespaces here ({why})"
    return None


def bwrap_argv(policy: SandboxPolicy, argv: list[str], cwd: Path) -> list[str]:
    """`bwrap … -- argv` for the policy. Mount order matters: later mounts cover earlier
    ones, so the hidden paths come after the workspace roots (a workspace that contains
    `~/.ssh` does not expose it), and a root inside a hidden directory (the scratch
    directory under $QWEN_HOME) is mounted again after them."""
    args = [find_bwrap() or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    args += NAMESPACES
    if policy.network != "all":
        args.append("--unshare-net")
    args += ["--bind", str(policy.private_tmp), "/tmp"]
    for path in policy.exposed:
        args += ["--ro-bind", str(path), str(path)]
    mounts = [("--bind", root) for root in policy.writable]
    mounts += [
        ("--ro-bind", path)
        for path in policy.readable
        if not any(_under(path, w) for w in policy.writable)
    ]
    for how, path in mounts:
        args += [how, str(path), str(path)]
    shown = [path for _, path in mounts]
    hidden = [
        p
        for p in policy.hidden
        if not _under(p, Path("/tmp")) or any(_under(p, root) for root in shown)
    ]
    for path in hidden:
        args += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
    for how, path in mounts:
        if any(_under(path, h) for h in hidden):
            args += [how, str(path), str(path)]
    for root in policy.writable:
        args += _protected(root)
    if policy.proxy_socket is not None:
        args += ["--ro-bind", str(policy.proxy_socket), str(policy.proxy_socket)]
    return [*args, "--chdir", str(cwd), "--", *argv]


def _protected(root: Path) -> list[str]:
    args: list[str] = []
    for name in PROTECTED_NAMES:
        path = root / name
        if path.exists() and not path.is_symlink():
            args += ["--ro-bind", str(path), str(path)]
    return args


def _under(path: Path, parent: Path) -> bool:
    return path == parent or path.is_relative_to(parent)
