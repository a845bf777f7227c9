"""`masque token verify|renew|lookup|revoke`: credentials by token or by accessor."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from masque.cli.app import app

if TYPE_CHECKING:
    from masque.trust.credentials import TokenStatus

token_app = typer.Typer(name="token", help="Verify, renew, look up and revoke credentials.", no_args_is_help=True)
app.add_typer(token_app)


def _token_or_env(token: str | None) -> str:
    from masque import config
    from masque.errors import UsageError

    value = token or config.env_value("MASQUE_TOKEN") or config.env_value("MASQUE_CREDENTIAL")
    if not value:
        raise UsageError(
            "no token given and neither MASQUE_TOKEN nor MASQUE_CREDENTIAL is set",
            hint="pass the token (msq_...) as an argument",
        )
    return value


def _print_status(s: TokenStatus, json_out: bool) -> None:
    from masque.cli.output import print_json

    if json_out:
        print_json(s.to_dict())
        return
    if s.valid:
        typer.echo(
            f"valid: session {s.session_id} ({s.masque}@{s.version}) role={s.role} "
            f"actor={s.actor} accessor={s.accessor}; {s.message}"
        )
    else:
        typer.echo(f"{s.reason}: {s.message}", err=True)


@token_app.command("verify")
def verify_cmd(
    token: str | None = typer.Argument(None, help="The token (default: $MASQUE_TOKEN or $MASQUE_CREDENTIAL)."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Exit 0 when the token is valid now; 3 when unknown, expired, revoked or its actor no longer
    qualifies."""
    from masque.errors import ExitCode
    from masque.trust.credentials import broker

    status = broker().verify(_token_or_env(token))
    _print_status(status, json_out)
    if not status.valid:
        raise typer.Exit(int(ExitCode.REFUSED))


@token_app.command("renew")
def renew_cmd(
    token: str | None = typer.Argument(None, help="The token (default: $MASQUE_TOKEN or $MASQUE_CREDENTIAL)."),
    ttl: str | None = typer.Option(None, "--ttl", help="Extend to now + this (default: its original lifetime)."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Extend a valid credential, never past its maximum (a longer --ttl exits 3)."""
    from masque.durations import parse_duration
    from masque.trust.credentials import broker

    status = broker().renew(_token_or_env(token), parse_duration(ttl) if ttl else None)
    _print_status(status, json_out)


@token_app.command("lookup")
def lookup_cmd(
    accessor: str = typer.Argument(..., help="Accessor id (acc_...), as shown by `masque sessions`."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Look a credential up by accessor (no secret needed). Exit 0 when valid, 3 otherwise."""
    from masque.errors import ExitCode
    from masque.trust import accessors

    status = accessors.lookup(accessor)
    _print_status(status, json_out)
    if not status.valid:
        raise typer.Exit(int(ExitCode.REFUSED))


@token_app.command("revoke")
def revoke_cmd(
    accessor: str = typer.Argument(..., help="Accessor id (acc_...) of the credential to revoke."),
) -> None:
    """Revoke one credential by accessor; the session stays open (use `masque revoke` to end it)."""
    from masque.trust import accessors

    status = accessors.revoke_accessor(accessor)
    typer.echo(f"revoked {status.accessor} (session {status.session_id})", err=True)
