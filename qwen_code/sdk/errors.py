"""The one exception the in-process API raises for its own reasons."""

from __future__ import annotations

from qwen_code.errors import QwenCodeError


class SdkError(Exception):
    """Options that cannot be used (a bad permission mode, unknown settings, no provider),
    or a client used out of order (a query before `connect`). The message says what to
    change. Failures of a running turn (the model server, a tool) are not raised: the
    turn's `ResultMessage` reports them (`is_error`, `error`)."""

    @classmethod
    def wrap(cls, exc: QwenCodeError, where: str = "") -> SdkError:
        """The error for a `QwenCodeError` (its message and hint), naming `where`."""
        error = cls(f"{where}: {exc}" if where else str(exc))
        error.__cause__ = exc
        return error
