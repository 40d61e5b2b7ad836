"""`Sandbox`: what a session holds to run its agent's commands sandboxed.

It knows the setting (and lets `/sandbox` change it), decides per command whether `auto`
is on (that depends on the approval mode at that moment), says once when the sandbox
cannot be had, refuses commands when it was asked for explicitly and cannot be had,
starts the network proxy the first time a command needs it, and explains failures the
sandbox caused.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from qwen_code.sandbox import bwrap
from qwen_code.sandbox.blocked import explain
from qwen_code.sandbox.launch import Launch, status_pipe, wrapped_shell
from qwen_code.sandbox.policy import (
    AGENT_VARIABLES,
    Network,
    SandboxMode,
    SandboxPolicy,
    SandboxSetting,
    effective_mode,
    existing,
    system_sockets,
    tools_under_tmp,
)

if TYPE_CHECKING:
    from qwen_code.sandbox.proxy import NetworkProxy

PROXY_PORT = 3128
"""Where the in-sandbox bridge to the proxy listens (each command has its own loopback)."""
_BRIDGE = Path(__file__).with_name("bridge.py")


class SandboxUnavailable(Exception):
    """The sandbox was asked for explicitly and cannot be had: commands are refused."""


@dataclass(slots=True, kw_only=True)
class Sandbox:
    """The session's sandbox settings and state."""

    setting: SandboxSetting = "auto"
    network: Network = "none"
    hosts: Mapping[str, str] = field(default_factory=dict)
    hidden: tuple[Path, ...] = ()
    """Paths hidden from commands (credentials), as configured; those that exist at each
    command are hidden."""
    headless: bool = False
    shell_preapproved: bool = False
    """A headless run's allow rules let some shell commands through without asking."""
    _warned: bool = field(default=False, init=False)
    _proxy: NetworkProxy | None = field(default=None, init=False)

    def mode_for(self, approval_mode: str) -> SandboxMode:
        """The mode the next command gets, before any fallback."""
        return effective_mode(
            self.setting,
            approval_mode=approval_mode,
            headless=self.headless,
            shell_preapproved=self.shell_preapproved,
        )

    @staticmethod
    def unavailable_reason() -> str | None:
        return bwrap.unavailable_reason()

    def launch(
        self,
        command: str,
        *,
        approval_mode: str,
        env: dict[str, str],
        cwd: Path,
        roots: Sequence[Path],
        scratch: Path,
    ) -> Launch:
        """How to start `command`: inside bubblewrap when the mode says so and it works;
        unsandboxed when it is off, or `auto` and it cannot be had (said once)."""
        bash = shutil.which("bash") or "/bin/sh"
        plain = Launch(argv=[bash, "-c", command], env=env)
        mode = self.mode_for(approval_mode)
        if mode == "off":
            return plain
        reason = self.unavailable_reason()
        if reason is not None:
            if self.setting != "auto":
                raise SandboxUnavailable(
                    f"The command was not run: the sandbox ({self.setting}) was asked for "
                    f"but {reason}. Install bubblewrap, or let the user choose "
                    "`--sandbox off`."
                )
            if not self._warned:
                self._warned = True
                plain.notes.append(f"Commands run unsandboxed: {reason}.")
            return plain
        return self._sandboxed(command, mode, bash, env, cwd, roots, scratch)

    def _sandboxed(
        self,
        command: str,
        mode: SandboxMode,
        bash: str,
        env: dict[str, str],
        cwd: Path,
        roots: Sequence[Path],
        scratch: Path,
    ) -> Launch:
        private_tmp = scratch / "sandbox-tmp"
        private_tmp.mkdir(parents=True, exist_ok=True)
        policy = SandboxPolicy(
            mode=mode,
            writable=existing(roots) if mode == "workspace-write" else (),
            readable=existing([*roots, scratch] if mode == "read-only" else [scratch]),
            private_tmp=private_tmp,
            hidden=existing([*self.hidden, *map(Path, system_sockets(os.getuid()))]),
            exposed=tools_under_tmp(env.get("PATH", ""), _interpreters()),
            network=self.network,
            proxy_socket=self._proxy_socket(scratch),
        )
        pipe = status_pipe()
        argv = wrapped_shell(bash, command, pipe[1])
        inner_env = {k: v for k, v in env.items() if k not in AGENT_VARIABLES}
        inner_env.update(_sandbox_env())
        if policy.proxy_socket is not None:
            argv = _bridged(policy.proxy_socket, argv)
            inner_env.update(_proxy_env())
        return Launch(
            argv=bwrap.bwrap_argv(policy, argv, cwd),
            env=inner_env,
            mode=mode,
            status_pipe=pipe,
        )

    def _proxy_socket(self, scratch: Path) -> Path | None:
        if isinstance(self.network, str):
            return None
        if self._proxy is None:
            from qwen_code.sandbox.proxy import NetworkProxy

            self._proxy = NetworkProxy(
                self.network, socket_path=_socket_path(scratch), hosts=self.hosts
            )
        self._proxy.start()
        return self._proxy.socket_path

    def explain(self, output: str, launch: Launch, *, failed: bool) -> str | None:
        """A plain sentence about what the sandbox blocked, when the output or the proxy
        shows it (refusals are collected since the previous command)."""
        if launch.mode == "off":
            return None
        denied = self._proxy.take_denials() if self._proxy is not None else []
        hidden = existing(self.hidden)
        return explain(
            output,
            mode=launch.mode,
            network=self.network,
            denied=denied,
            hidden=hidden,
            failed=failed,
        )

    def describe(self, approval_mode: str) -> dict[str, object]:
        """What `/sandbox` shows."""
        return {
            "setting": self.setting,
            "effective": self.mode_for(approval_mode),
            "available": self.unavailable_reason() is None,
            "reason": self.unavailable_reason(),
            "network": self.network,
            "hidden": [str(p) for p in existing(self.hidden)],
        }

    def close(self) -> None:
        if self._proxy is not None:
            self._proxy.close()
            self._proxy = None


def _interpreters() -> list[Path]:
    """qwen-code's own Python (the bridge runs on it) and the bridge's directory."""
    return [Path(sys.prefix), Path(sys.base_prefix), _BRIDGE.parent]


def _sandbox_env() -> dict[str, str]:
    """Caches go to the private /tmp (the home directory is read-only inside)."""
    return {
        "TMPDIR": "/tmp",
        "QWEN_CODE_SANDBOX": "1",
        "XDG_CACHE_HOME": "/tmp/.cache",
        "npm_config_cache": "/tmp/.npm",
    }


def _proxy_env() -> dict[str, str]:
    url = f"http://127.0.0.1:{PROXY_PORT}"
    env = dict.fromkeys(("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"), url)
    env.update(ALL_PROXY=url, all_proxy=url, NO_PROXY="", no_proxy="")
    return env


def _bridged(socket: Path, argv: list[str]) -> list[str]:
    bridge = [sys.executable, "-I", "-S", str(_BRIDGE), "--socket", str(socket)]
    return [*bridge, "--port", str(PROXY_PORT), "--", *argv]


def _socket_path(scratch: Path) -> Path:
    """A short path: Unix socket paths are limited to about 107 bytes."""
    import tempfile

    candidate = scratch / "proxy.sock"
    if len(str(candidate)) < 100:
        return candidate
    return Path(tempfile.mkdtemp(prefix="qc-")) / "proxy.sock"
