"""What `masque assume` and `masque release` do once their options are read, without importing Typer.

The Typer commands in masque.cli.sessions declare the options (and help) and call these functions; the
cached lean path (masque.cli.lean_cache) calls them directly, so the cold agent cycle never pays for
importing Typer. Keep them free of `typer` imports: tests/test_cli_lean.py checks it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from masque.errors import NotFound

if TYPE_CHECKING:
    from masque.sessions.lifecycle import Session

FORMATS = ("env", "json", "text")

# What `assume --format env` exports and `release --format env` unsets, in that order.
SESSION_VARS = (
    "MASQUE_SESSION_ID",
    "MASQUE_TOKEN",
    "MASQUE_MASQUE",
    "MASQUE_VERSION",
    "MASQUE_ACTOR_NAME",
    "MASQUE_ROLE",
    "MASQUE_ACCESSOR",
    "MASQUE_EXPIRES_AT",
    "MASQUE_INTENT",
    "MASQUE_SYSTEM_PROMPT",
)
UNSET = f"unset {' '.join(SESSION_VARS)}\n"


def fmt_value(value: Any) -> str:
    if value is None:
        return "-"
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value)


def exports(pairs: dict[str, Any]) -> str:
    import shlex  # only `--format env` quotes for the shell

    return "".join(f"export {k}={shlex.quote(str(v))}\n" for k, v in pairs.items() if v is not None)


def session_env(s: Session) -> dict[str, Any]:
    values = [s.session_id, s.token, s.masque, s.version, s.actor, s.role, s.accessor]
    values += [fmt_value(s.credential_expires_at), s.intent, s.system_prompt]
    return dict(zip(SESSION_VARS, values, strict=True))


def choose_format(fmt: str | None) -> str:
    if fmt is None:
        return "text" if sys.stdout.isatty() else "env"
    if fmt not in FORMATS:
        from masque.errors import UsageError

        raise UsageError(f"unknown --format {fmt!r}", hint="use env, json or text")
    return fmt


def render_assumed(s: Session, fmt: str) -> None:
    from masque.cli.output import console, print_json, print_warning

    for k in s.knowledge:
        if k.endpoint is None:
            print_warning(f"knowledge pointer {k.uri} is unresolved (map its server under [knowledge])")
    if fmt == "json":
        print_json(s.to_dict(with_token=True))
    elif fmt == "env":
        sys.stdout.write(exports(session_env(s)))
    else:
        from rich.markup import escape
        from rich.panel import Panel

        from masque.masques.intent_text import one_line

        body = (
            f"[bold]session[/] {s.session_id}\n[bold]actor[/]   {escape(s.actor)} ({s.actor_ring})\n"
            f"[bold]intent[/]  {escape(one_line(s.intent))}\n[bold]expires[/] {fmt_value(s.credential_expires_at)}\n"
            f"[bold]role[/]    {escape(s.role or '-')}   [bold]accessor[/] {s.accessor}\n"
            f"[bold]token[/]   {s.token}  [dim](shown once)[/]\n\n{escape(s.system_prompt or '')}"
        )
        console().print(Panel(body, title=f"masque {s.ref}", expand=False))


def assume(
    *,
    ref: str,
    intent: str,
    as_name: str | None,
    key_file: Path | None,
    ttl: str | None,
    local: bool,
    strict_knowledge: bool,
    fmt: str | None,
) -> None:
    from masque.sessions import lifecycle as sessions
    from masque.trust import rings

    fmt = choose_format(fmt)
    selection = rings.selection_from_env(as_name, key_file)
    # The holder is the shell that runs us (bash execs `$(masque ...)` directly), so
    # `masque sessions --stale` can tell when it is gone.
    s = sessions.assume(
        ref,
        intent,
        selection=selection,
        ttl=ttl,
        local=local,
        strict_knowledge=strict_knowledge,
        holder_pid=os.getppid(),
    )
    render_assumed(s, fmt)


def _say(message: str) -> None:
    """What typer.echo(message, err=True) prints."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def release(*, session_id: str | None, score: str | None, notes: str | None, fmt: str) -> None:
    from masque.cli.output import print_json
    from masque.sessions import end  # not the lifecycle module: releasing needs none of assume's machinery

    if fmt not in FORMATS:
        from masque.errors import UsageError

        raise UsageError(f"unknown --format {fmt!r}", hint="use text, json or env")
    try:
        ended = end.release(session_id, score=score, notes=notes)
    except NotFound:
        if fmt == "env" and session_id is None:
            sys.stdout.write(UNSET)  # the shell's session does not exist: still clear it, then say why
        raise
    s = ended.session
    if fmt == "json":
        print_json(
            {
                **s.to_dict(),
                "already_ended": ended.already_ended,
                "ended": list(ended.ended),
                "revoked": list(ended.revoked),
            }
        )
    elif fmt == "env":
        sys.stdout.write(UNSET)
    elif ended.already_ended:
        _say(f"session {s.session_id} had already ended ({s.status}, {s.end_reason}); nothing to do")
    else:
        chained = f"; also ended {len(ended.ended) - 1} chained session(s)" if len(ended.ended) > 1 else ""
        _say(f"released {s.session_id} ({s.ref}); {len(ended.revoked)} credential(s) revoked{chained}")
