"""Error types shared by the core and the front ends, and the process exit codes.

Exit codes follow Qwen Code's (packages/core/src/utils/errors.ts) so scripts written
against `qwen` keep working.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    AUTH = 41
    INPUT = 42
    CONFIG = 52
    MAX_TURNS = 53
    TOOL_EXECUTION = 54
    BUDGET = 55
    """--max-budget-usd, --max-wall-time or --max-tool-calls stopped the run."""
    MAX_TOKENS = 56
    """A reply was cut off at the output token limit (the model was asked to continue
    once), or streamed far past it."""
    INTERRUPTED = 130


class QwenCodeError(Exception):
    """An error with a message written for the user, and the exit code it maps to."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class ConfigError(QwenCodeError):
    """Settings or credentials are missing or invalid."""

    exit_code = ExitCode.CONFIG


class CredentialsError(ConfigError):
    """No credential or endpoint is configured."""

    exit_code = ExitCode.AUTH


class InputError(QwenCodeError):
    """The user's input (prompt, flags, stdin) cannot be used."""

    exit_code = ExitCode.INPUT


class ModelError(QwenCodeError):
    """The model server failed in a way retries did not fix.

    `kind` classifies it (auth, rate_limit, not_found, bad_request, server, network,
    timeout, context_overflow) so front ends and exit codes can tell them apart.
    """

    def __init__(
        self, message: str, *, kind: str, hint: str | None = None, retryable: bool = False
    ) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind
        self.retryable = retryable
        if kind == "auth":
            self.exit_code = ExitCode.AUTH
