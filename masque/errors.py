"""The one exception root. Each error carries its exit code and a hint saying what to do next."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented process exit codes (docs/configuration.md, "Exit codes")."""

    OK = 0
    FAILED = 1  # validation found errors, or a check/test failed
    USAGE = 2  # bad arguments or options
    REFUSED = 3  # intent denied, ring not qualified, token expired or revoked
    NOT_FOUND = 4  # masque, session, actor or memory not found
    STORE = 5  # store busy (locked) or damaged
    INTERRUPTED = 130


class MasqueError(Exception):
    """Base of every error Masque raises on purpose. `str()` is the one-line user-facing message."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(MasqueError):
    exit_code = ExitCode.USAGE


class ValidationFailed(MasqueError):
    exit_code = ExitCode.FAILED


class Refused(MasqueError):
    """An assumption or token check was refused; `reason` is a stable machine-readable code."""

    exit_code = ExitCode.REFUSED

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


class NotFound(MasqueError):
    exit_code = ExitCode.NOT_FOUND


class StoreError(MasqueError):
    exit_code = ExitCode.STORE


class StoreBusy(StoreError):
    pass
