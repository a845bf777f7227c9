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
    CONFLICT = 6  # another writer updated the document first (optimistic lock); re-read and retry
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


class Conflict(MasqueError):
    """An update named a version that is no longer current: another writer got there first (HTTP 409)."""

    exit_code = ExitCode.CONFLICT

    def __init__(self, message: str, *, expected: int, current: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint or "re-read the document and apply your change again")
        self.expected = expected
        self.current = current
