"""`masque remote add|list|remove` and `masque sync push|pull|status`. Thin: parse, call masque.sync.client, render."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from masque.cli.app import app

remote_app = typer.Typer(
    name="remote",
    help="Servers (`masque serve`) this home syncs with: a name, a URL and the file holding your key there.",
    no_args_is_help=True,
)
sync_app = typer.Typer(
    name="sync",
    help="Sync with a remote: push local observations, feedback, sessions and scores; pull mappers and profiles.",
    no_args_is_help=True,
)
app.add_typer(remote_app, name="remote")
app.add_typer(sync_app, name="sync")

_JSON = typer.Option(False, "--json", help="Print JSON.")
_AS = typer.Option(None, "--as", help="Act locally as this actor (needs --key-file).")
_KEY_FILE = typer.Option(None, "--key-file", help="File holding that local actor's key.")
_REMOTE = typer.Option(None, "--remote", help="Remote name (needed when more than one is configured).")


def _sel(as_name: str | None, key_file: Path | None) -> Any:
    from masque.trust import rings

    return rings.selection_from_env(as_name, key_file)


def _json(value: Any) -> None:
    from masque.cli.output import print_json

    print_json(value)


@remote_app.command("add")
def remote_add(
    name: str = typer.Argument(..., help="Short name, e.g. origin."),
    url: str = typer.Argument(..., help="Base URL of the server, e.g. http://127.0.0.1:8765."),
    key_file: Path = typer.Option(
        ..., "--key-file", help="File holding your actor key ON THAT SERVER (mode 0600); only its path is stored."
    ),
    json_out: bool = _JSON,
) -> None:
    """Add a remote (a local admin verb; the local caller comes from MASQUE_ACTOR/_KEY, else the founder)."""
    from masque.sync import client

    remote = client.add_remote(name, url, key_file, selection=_sel(None, None))
    if json_out:
        _json(remote.to_json())
    else:
        typer.echo(f"added remote {remote.name} {remote.url} (key read from {remote.key_file} at each sync)")


@remote_app.command("list")
def remote_list(json_out: bool = _JSON) -> None:
    """The configured remotes."""
    from masque.sync import client

    found = client.list_remotes(selection=_sel(None, None))
    if json_out:
        _json([r.to_json() for r in found])
        return
    if not found:
        typer.echo("no remotes; `masque remote add NAME URL --key-file F` adds one")
    for r in found:
        typer.echo(f"{r.name}\t{r.url}\tkey file {r.key_file}")


@remote_app.command("remove")
def remote_remove(name: str = typer.Argument(..., help="Remote name.")) -> None:
    """Forget a remote and what it confirmed (adding it again re-sends; the server skips what it has)."""
    from masque.sync import client

    client.remove_remote(name, selection=_sel(None, None))
    typer.echo(f"removed remote {name}")


@sync_app.command("push")
def sync_push(
    remote: str | None = _REMOTE,
    batch_size: int = typer.Option(100, "--batch-size", help="Records per batch (1-1000); each is one transaction."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Send what the remote has not confirmed; a record leaves the outbox only on confirmation.

    Safe to repeat at any time: a batch whose reply was lost is answered again, never applied twice.
    Exit 5 when the server cannot be reached (nothing is lost), 3 when it refuses the key, 1 when it
    rejected some records (they are listed with the reason).
    """
    from masque.sync import client

    def progress(line: str) -> None:
        if not json_out:
            typer.echo(line)

    result = client.push(remote, batch_size=batch_size, progress=progress, selection=_sel(as_name, key_file))
    if json_out:
        _json(result.to_json())
    elif not result.batches:
        typer.echo(f"nothing to push to {result.remote}: every record is confirmed")
    else:
        applied = ", ".join(f"{n} {k}(s)" for k, n in result.applied.items() if n) or "nothing new"
        typer.echo(
            f"pushed {result.sent} record(s) in {result.batches} batch(es) to {result.remote}: {applied}"
            + (f"; {result.duplicates} already there" if result.duplicates else "")
        )
        for r in result.rejected:
            typer.echo(f"rejected {r['kind']} {r['id']}: {r['reason']}: {r['message']}", err=True)
    if result.rejected:
        raise typer.Exit(1)


@sync_app.command("pull")
def sync_pull(
    remote: str | None = _REMOTE,
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Apply mapper versions, profiles and definitions changed on the remote since the last pull.

    A mapper version already here is skipped; one that diverged here is kept and reported (exit 6).
    """
    from masque.sync import client

    result = client.pull(remote, selection=_sel(as_name, key_file))
    if json_out:
        _json(result.to_json())
    else:
        added = ", ".join(result.mappers_added) or "no new mapper versions"
        typer.echo(
            f"pulled from {result.remote}: {added}; {result.mappers_skipped} already here; "
            f"{result.profiles} profile(s), {result.definitions} definition(s)"
        )
        for c in result.conflicts:
            typer.echo(f"conflict: mapper {c['mapper']} v{c['version']}: {c['problem']}", err=True)
    if result.conflicts:
        raise typer.Exit(6)


@sync_app.command("status")
def sync_status(
    remote: str | None = _REMOTE,
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """What waits to be pushed, the last push and pull, and whether the remote answers (2 s; not an error)."""
    from masque.sync import client

    info = client.status(remote, selection=_sel(as_name, key_file))
    if json_out:
        _json(info)
        return
    answers = "answers" if info["reachable"] else f"does not answer ({info['unreachable_reason']})"
    pending = ", ".join(f"{n} {k}(s)" for k, n in info["pending"].items())
    typer.echo(f"remote {info['remote']} {info['url']}: {answers}")
    typer.echo(f"pending: {pending} ({info['pending_total']} in all); {info['confirmed']} confirmed")
    typer.echo(f"last push: {info['last_push_at'] or 'never'}; last pull: {info['last_pull_at'] or 'never'}")
    typer.echo(f"pull watermark: {info['pull_watermark'] or 'none (next pull reads everything)'}")
    if not info["key_file_ok"]:
        typer.echo(f"warning: key file {info['key_file']} is missing or readable by others", err=True)
