"""Unexpected errors: one line for the user, the traceback with versions in a crash log."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import sys
import traceback

from masque import __version__, config
from masque.errors import ExitCode

# Session tokens (msq_...) and actor keys (msqk_...), as `credentials` and `rings` mint them.
_SECRET = re.compile(r"(msqk?)_[A-Za-z0-9_-]+")
_SECRET_ENV = ("MASQUE_TOKEN", "MASQUE_ACTOR_KEY")


def report_crash(exc: BaseException) -> int:
    """Write the crash log (no locals, secrets redacted) and print where it is. Returns the exit code."""
    path = config.crash_log_path()
    text = (
        f"### {dt.datetime.now(dt.timezone.utc).isoformat()} masque {__version__}\n"
        f"python {platform.python_version()} on {platform.platform()}\n"
        f"argv: {sys.argv}\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)) + "\n"
    )
    try:
        config.ensure_home()
        # Created 0600 from the start: the log may hold paths and intents, never a window of 0644.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(redact(text))
        path.chmod(0o600)
        where = f"details in {path}"
    except Exception:  # the crash handler itself must never crash (e.g. on a broken home)
        where = "could not write the crash log"
    sys.stderr.write(
        f"masque: unexpected error: {type(exc).__name__}: {redact(str(exc))}\n"
        f"  hint: this is a bug; {where}; rerun with --debug for the traceback\n"
    )
    return int(ExitCode.FAILED)


def redact(text: str) -> str:
    """`text` with every session token and actor key (and the values of their variables) masked."""
    for name in _SECRET_ENV:
        value = config.env_value(name)
        if value and len(value) >= 8:  # a secret in an unexpected form is still masked
            text = text.replace(value, "[REDACTED]")
    return _SECRET.sub(r"\1_[REDACTED]", text)
