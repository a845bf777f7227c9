"""`masque init` and the `masque actor` group: actors, trust rings, approvals."""

from __future__ import annotations

from pathlib import Path

import typer

from masque.cli.app import app

actor_app = typer.Typer(
    name="actor", help="Actors and trust rings (admin > player > guest > outsider).", no_args_is_help=True
)
app.add_typer(actor_app)

_AS = typer.Option(None, "--as", help="Act as this actor (needs --key-file).")
_KEY_FILE = typer.Option(None, "--key-file", help="File holding that actor's key.")
_JSON = typer.Option(False, "--json", help="Print as JSON.")


def _ring(value: str) -> object:
    from masque.enums import Ring
    from masque.errors import UsageError

    try:
        return Ring(value.strip().lower())
    except ValueError:
        raise UsageError(f"unknown ring {value!r}", hint="use admin, player, guest or outsider") from None


@app.command("init")
def init_cmd(
    founder: str | None = typer.Option(None, "--founder", help="Founder name (default: your user name)."),
    json_out: bool = _JSON,
) -> None:
    """Create the store and its founder (admin). Prints the founder's key once: keep it."""
    from masque import config
    from masque.cli.output import print_json
    from masque.trust import rings

    result = rings.init(founder)
    where = config.store_display()  # the file's path, or the PostgreSQL URL without its password
    if json_out:
        print_json(
            {
                "store": where,
                "created": result.created,
                "name": result.founder.name,
                "ring": result.founder.ring.value,
                "key": result.key,
            }
        )
        return
    if not result.created and result.key is None:
        typer.echo(f"store {where} is already initialised; founder {result.founder.name} (admin)", err=True)
        return
    if not result.created:
        typer.echo(f"store {where}: issued the key of founder {result.founder.name} (admin)", err=True)
        typer.echo("founder key (shown once; store it safely, e.g. in a 0600 file for --key-file):", err=True)
        typer.echo(result.key)
        return
    typer.echo(f"created {where}; founder {result.founder.name} (admin)", err=True)
    typer.echo("founder key (shown once; store it safely, e.g. in a 0600 file for --key-file):", err=True)
    typer.echo(result.key)


@actor_app.command("add")
def add_cmd(
    name: str = typer.Argument(..., help="New actor's name."),
    ring: str = typer.Option("outsider", "--ring", help="Starting ring (below your own; admins may add admins)."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Add an actor. Its key is printed once (stored only hashed): `--json` prints {name, ring, key}."""
    from masque.cli.output import print_json
    from masque.trust import rings

    new = rings.add_actor(name, _ring(ring), rings.selection_from_env(as_name, key_file))  # type: ignore[arg-type]
    if json_out:
        print_json({"name": new.actor.name, "ring": new.actor.ring.value, "key": new.key})
        return
    typer.echo(f"added {new.actor.name} ({new.actor.ring.value}); key (shown once):", err=True)
    typer.echo(new.key)


@actor_app.command("list")
def list_cmd(as_name: str | None = _AS, key_file: Path | None = _KEY_FILE, json_out: bool = _JSON) -> None:
    """Actors you can see: your own ring and below."""
    from masque.cli.output import print_json
    from masque.trust import rings

    who, actors = rings.list_actors(rings.selection_from_env(as_name, key_file))
    if json_out:
        print_json({"acting": who.actor.name, "actors": [a.to_dict() for a in actors]})
        return
    for a in actors:
        flags = " founder" if a.is_founder else ""
        flags += f" SUSPENDED: {a.disapproval}" if a.disapproval else ""
        typer.echo(f"{a.name:24} {a.ring.value:9}{flags}")


def _moved(before: object, after: object, json_out: bool) -> None:
    from masque.cli.output import print_json

    b, a = before, after
    if json_out:
        print_json({"name": a.name, "from": b.ring.value, "to": a.ring.value})  # type: ignore[attr-defined]
    else:
        typer.echo(f"{a.name}: {b.ring.value} -> {a.ring.value}", err=True)  # type: ignore[attr-defined]


@actor_app.command("promote")
def promote_cmd(
    name: str = typer.Argument(..., help="Actor to move one ring inward."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Move an actor one ring inward (no ring skipping; only a more trusted ring may)."""
    from masque.sessions import actors
    from masque.trust import rings

    _moved(*actors.change_ring(name, -1, rings.selection_from_env(as_name, key_file)), json_out)


@actor_app.command("demote")
def demote_cmd(
    name: str = typer.Argument(..., help="Actor to move one ring outward."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Move an actor one ring outward; its live sessions end and their credentials are revoked."""
    from masque.sessions import actors
    from masque.trust import rings

    _moved(*actors.change_ring(name, 1, rings.selection_from_env(as_name, key_file)), json_out)


@actor_app.command("disapprove")
def disapprove_cmd(
    name: str = typer.Argument(..., help="Actor to suspend."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded)."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Suspend an actor's qualification (continual approval); its live sessions end."""
    from masque.cli.output import print_json
    from masque.sessions import actors
    from masque.trust import rings

    actor = actors.disapprove(name, reason, rings.selection_from_env(as_name, key_file))
    if json_out:
        print_json(actor.to_dict())
    else:
        typer.echo(f"{actor.name} is suspended: {actor.disapproval}", err=True)


@actor_app.command("approve")
def approve_cmd(
    name: str = typer.Argument(..., help="Actor whose disapprovals to lift."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Lift open disapprovals made by your ring or below (a more trusted ring's stays)."""
    from masque.cli.output import print_json
    from masque.trust import rings

    actor, lifted = rings.approve(name, rings.selection_from_env(as_name, key_file))
    if json_out:
        print_json({**actor.to_dict(), "lifted": lifted})
    elif actor.disapproval:
        typer.echo(f"lifted {lifted}; {actor.name} is still suspended: {actor.disapproval}", err=True)
    else:
        typer.echo(f"lifted {lifted}; {actor.name} qualifies again", err=True)
