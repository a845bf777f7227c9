"""The one error handler: every entry point (`masque`, its fast paths, `mythatron`) ends here.

Like pre-commit's `error_handler`: a MasqueError prints its one-line message and hint and exits with
its code; Ctrl-C exits 130; anything unexpected prints one line and writes the redacted traceback to
the crash log. `--debug` or `MASQUE_DEBUG=1` re-raises instead, for a full traceback. Typer-free, so
the `validate` fast path can use it without importing Typer.
"""

from __future__ import annotations

from masque import config
from masque.errors import ExitCode, MasqueError

_state = {"debug": False}


def set_debug(debug: bool) -> None:
    """`--debug` on the command line."""
    _state["debug"] = debug


def debug_enabled() -> bool:
    return _state["debug"] or (config.env_value("MASQUE_DEBUG") or "0") != "0"


def exit_code_for(exc: BaseException) -> int | None:
    """Report `exc` to the user and return the exit code; None when it must propagate (debugging)."""
    from masque.cli.output import print_error

    if isinstance(exc, KeyboardInterrupt):
        print_error("interrupted")
        return int(ExitCode.INTERRUPTED)
    if debug_enabled():
        return None
    if isinstance(exc, MasqueError):
        print_error(str(exc), exc.hint)
        return int(exc.exit_code)
    from masque.cli.crash import report_crash

    return report_crash(exc)
