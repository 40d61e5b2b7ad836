"""Provider credentials kept away from the commands qwen-code starts and from tool output.

Two things use this module:

- `child_environment` builds the environment of every process started for the user or
  the model (the shell tool, the REPL's `!cmd`, custom-command `!{…}`; later MCP servers
  and hooks): the process environment without the provider credentials, unless the user
  opted in with `security.passCredentialsToCommands`.
- `Credentials.redact` replaces each known credential value in text (tool output, `!cmd`
  output) with `[redacted NAME]` before it reaches the model, the session file or a
  checkpoint. Only the plain value is caught, not an encoded form (base64, URL-encoded).

A credential is a provider variable (`is_credential_variable`), a variable the settings
name as holding the key, or any variable whose value is the resolved provider key.
Values shorter than `MIN_SECRET_CHARS` are never matched by value: a key `x` must not
redact every `x` in the output.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MIN_SECRET_CHARS = 8
"""Shorter values are not treated as secrets when matching by value."""
PLACEHOLDER_KEY = "no-key"
"""The key sent to servers that need none (`qwen_code.config.NO_KEY`): not a secret."""

CREDENTIAL_VARIABLES = frozenset(
    {
        "OPENAI_API_KEY",
        "DASHSCOPE_API_KEY",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "OPENROUTER_API_KEY",
        "QWEN_API_KEY",
        "QWEN_CODE_API_KEY",
        "TAVILY_API_KEY",
        "BRAVE_API_KEY",
    }
)
"""The provider credentials qwen-code (and Qwen Code / Claude Code settings) use."""
_CREDENTIAL_NAME = re.compile(
    r"(OPENAI|DASHSCOPE|ANTHROPIC|OPENROUTER|QWEN|BAILIAN)(_[A-Z0-9]+)*_(API_KEY|AUTH_TOKEN)",
    re.IGNORECASE,
)
"""Provider-prefixed key names beyond the list: `QWEN_CODE_API_KEY`, `OPENAI_ORG_API_KEY`."""
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _secret(value: str) -> str:
    """`value` without surrounding space when it can count as a secret, else ""."""
    value = value.strip()
    return value if len(value) >= MIN_SECRET_CHARS and value != PLACEHOLDER_KEY else ""


def is_credential_variable(name: str) -> bool:
    """True for the provider credential variables, whatever the settings say."""
    return name.upper() in CREDENTIAL_VARIABLES or _CREDENTIAL_NAME.fullmatch(name) is not None


@dataclass(frozen=True, slots=True, eq=False)
class Credentials:
    """The credentials of one session: which variables hold them, their values (for
    redaction), and whether commands may inherit them."""

    names: frozenset[str] = frozenset()
    """Variables that hold a credential besides the built-in provider names."""
    values: Mapping[str, str] = field(default_factory=dict)
    """Each secret value (`MIN_SECRET_CHARS` or longer) → the name shown in its place."""
    pass_to_commands: bool = False
    """`security.passCredentialsToCommands`: child processes keep the credentials."""
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.values:
            longest_first = sorted(self.values, key=len, reverse=True)
            pattern = re.compile("|".join(re.escape(v) for v in longest_first))
            object.__setattr__(self, "_pattern", pattern)

    @classmethod
    def collect(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        api_key: str | None = None,
        api_key_source: str = "",
        extra_names: Iterable[str] = (),
        pass_to_commands: bool = False,
    ) -> Credentials:
        """The credentials in `env` (default: the process environment) plus the resolved
        provider key `api_key`, which came from `api_key_source` (a variable name, a flag
        or a settings key). `extra_names`: variables the settings name as holding a key."""
        env = os.environ if env is None else env
        source_is_variable = _VARIABLE_NAME.fullmatch(api_key_source) is not None
        names = {*extra_names, *([api_key_source] if source_is_variable else [])}
        values: dict[str, str] = {}
        key = _secret(api_key or "")
        if key:
            values[key] = api_key_source if source_is_variable else "API key"
        for name, value in sorted(env.items()):
            if is_credential_variable(name) or name in names or (key and value.strip() == key):
                names.add(name)
                if secret := _secret(value):
                    values.setdefault(secret, name)
        return cls(names=frozenset(names), values=values, pass_to_commands=pass_to_commands)

    def holds(self, name: str, value: str) -> bool:
        """True when the variable `name=value` carries a credential."""
        if is_credential_variable(name) or name in self.names:
            return True
        secret = value.strip()
        return len(secret) >= MIN_SECRET_CHARS and secret in self.values

    def redact(self, text: str) -> str:
        """`text` with every known secret value replaced by `[redacted NAME]`."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(lambda m: f"[redacted {self.values[m.group(0)]}]", text)

    def child_environment(
        self, base: Mapping[str, str] | None = None, *, extra: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """`child_environment` with this session's credentials and opt-in."""
        return child_environment(
            base, keep_credentials=self.pass_to_commands, credentials=self, extra=extra
        )


def child_environment(
    base: Mapping[str, str] | None = None,
    *,
    keep_credentials: bool = False,
    credentials: Credentials | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment for a process qwen-code starts: `base` (default: the process
    environment) without the credential variables unless `keep_credentials`, then
    `extra` on top. `credentials` adds the session's own names and values (a variable
    holding the resolved key under another name); by default only `base` is looked at."""
    env = dict(os.environ if base is None else base)
    if not keep_credentials:
        known = credentials if credentials is not None else Credentials.collect(env)
        env = {name: value for name, value in env.items() if not known.holds(name, value)}
    env.update(extra or {})
    return env
