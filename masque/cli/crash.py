"""Unexpected errors: one line for the user, the traceback with versions in a crash log."""

from __future__ import annotations

import datetime as dt
import platform
import sys
import traceback

from masque import __version__, config
from masque.errors import ExitCode


def report_crash(exc: BaseException) -> int:
    """Write the crash log (no locals: tokens could leak) and print where it is. Returns the exit code."""
    path = config.crash_log_path()
    try:
        config.ensure_home()
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"### {dt.datetime.now(dt.timezone.utc).isoformat()} masque {__version__}\n")
            fh.write(f"python {platform.python_version()} on {platform.platform()}\n")
            fh.write(f"argv: {[_redact(a) for a in sys.argv]}\n")
            fh.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
            fh.write("\n")
        path.chmod(0o600)
        where = f"details in {path}"
    except OSError:
        where = "could not write the crash log"
    sys.stderr.write(
        f"masque: unexpected error: {type(exc).__name__}: {_redact(str(exc))}\n"
        f"  hint: this is a bug; {where}; rerun with --debug for the traceback\n"
    )
    return int(ExitCode.FAILED)


def _redact(text: str) -> str:
    import re

    return re.sub(r"msq_[A-Za-z0-9_-]+", "msq_[REDACTED]", text)
