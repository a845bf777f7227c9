"""`masque team spawn|list|show|release`: several masques worn together under one team id."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from masque.cli.app import app

if TYPE_CHECKING:
    from masque.teams.manage import TeamView
    from masque.teams.model import Team
    from masque.teams.spawning import Spawned

team_app = typer.Typer(
    name="team",
    help="Spawn, list, show and release teams: masques as positions in a formation.",
    no_args_is_help=True,
)
app.add_typer(team_app)

_AS = typer.Option(None, "--as", help="Act as this actor (needs --key-file).")
_KEY_FILE = typer.Option(None, "--key-file", help="File holding the actor key `masque actor add` printed.")
_JSON = typer.Option(False, "--json", help="Print as JSON.")


@team_app.command("spawn")
def spawn_cmd(
    masques: list[str] = typer.Option(
        ..., "--masque", "-m", help="A member: NAME[:LABEL][@VERSION]; LABEL names it (default: the masque)."
    ),
    intent: str = typer.Option(..., "--intent", "-i", help="The one team intent, checked against every member."),
    name: str | None = typer.Option(None, "--name", help="Team name (default: made from the intent)."),
    roles: list[str] = typer.Option(
        [], "--role", help="MEMBER=ROLE formation role (default: the masque's collaboration.role, else its key)."
    ),
    arbiter: str | None = typer.Option(None, "--arbiter", help="Member that resolves conflicts on the bus."),
    ttl: str | None = typer.Option(None, "--ttl", help="Shorter credential lifetime for every member: 2h, PT30M."),
    fmt: str | None = typer.Option(
        None, "--format", "-f", help="text (default on a terminal), env (shell exports, else), or json."
    ),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
) -> None:
    """Assume several masques as one team: every member qualifies for the intent, or nothing is recorded.

    Each member gets its own session and credential; refusals exit 3 naming every failing member.
    json shows each member's token once; env exports MASQUE_TEAM and MASQUE_TEAM_<MEMBER>_* lines.

    Example: masque team spawn -m engineer:backend -m engineer:frontend -m reviewer --intent "implement auth"
    """
    import os

    from masque import teams
    from masque.bus.wiring import wire_team
    from masque.trust import rings

    fmt = _choose_format(fmt)
    selection = rings.selection_from_env(as_name, key_file)
    spawned = teams.spawn(
        masques,
        intent,
        selection=selection,
        name=name,
        roles=roles,
        arbiter=arbiter,
        ttl=ttl,
        holder_pid=os.getppid(),  # the shell that runs us, as `masque assume` records it
        on_spawned=wire_team,  # members' `collaboration.subscribes`, checked against their capabilities
    )
    for w in spawned.wiring:
        if not w.wired and w.note != "already subscribed":
            typer.echo(f"masque: warning: {w.member} does not listen to {w.pattern}: {w.note}", err=True)
    _render_spawned(spawned, fmt)


def _choose_format(fmt: str | None) -> str:
    if fmt is None:
        return "text" if sys.stdout.isatty() else "env"
    if fmt not in ("text", "env", "json"):
        from masque.errors import UsageError

        raise UsageError(f"unknown --format {fmt!r}", hint="use text, env or json")
    return fmt


def env_lines(spawned: Spawned) -> str:
    """Shell exports: the team, then per member MASQUE_TEAM_<MEMBER>_{SESSION_ID,TOKEN,ROLE,MASQUE}."""
    from masque.teams.spawning import env_name

    t = spawned.team
    pairs = [("MASQUE_TEAM", t.id), ("MASQUE_TEAM_NAME", t.name)]
    pairs.append(("MASQUE_TEAM_MEMBERS", " ".join(m.member for m in t.members)))
    for m in t.members:
        s = spawned.sessions[m.member]
        prefix = f"MASQUE_TEAM_{env_name(m.member)}_"
        pairs += [
            (prefix + "SESSION_ID", s.session_id),
            (prefix + "TOKEN", s.token or ""),
            (prefix + "ROLE", m.role),
            (prefix + "MASQUE", f"{m.masque}@{m.version}"),
        ]
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in pairs)


def _render_spawned(spawned: Spawned, fmt: str) -> None:
    from masque.cli.output import print_json

    if fmt == "json":
        print_json(spawned.to_dict(with_tokens=True))
        return
    if fmt == "env":
        sys.stdout.write(env_lines(spawned))
        return
    t = spawned.team
    typer.echo(f"team    {t.id}  {t.name}")
    _echo_members(t, None)
    typer.echo(
        f"tokens are not shown here: run a member with `masque exec --team {t.name} --member NAME -- CMD`",
        err=True,
    )


def _echo_members(team: Team, statuses: dict[str, str] | None) -> None:
    rows: list[tuple[str, ...]] = [
        ("MEMBER", "ROLE", "MASQUE", "SESSION") + (("STATUS",) if statuses is not None else ())
    ]
    for m in team.members:
        cells = (m.member, m.role, f"{m.masque}@{m.version}", m.session_id)
        rows.append(cells + ((statuses.get(m.session_id, "-"),) if statuses is not None else ()))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@team_app.command("list")
def list_cmd(
    all_: bool = typer.Option(False, "--all", "-a", help="Include released teams."),
    json_out: bool = _JSON,
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
) -> None:
    """Active teams you can see (yours, and those of less trusted rings), newest first."""
    from masque import teams
    from masque.cli.output import print_json
    from masque.masques.intent_text import one_line
    from masque.trust import rings

    found = teams.list(selection=rings.selection_from_env(as_name, key_file), include_released=all_)
    if json_out:
        print_json([v.to_dict() for v in found])
        return
    if not found:
        typer.echo("no teams" + ("" if all_ else " active (--all shows released ones)"), err=True)
        return
    rows = [("TEAM", "NAME", "STATUS", "ACTOR", "MEMBERS", "SCORE", "INTENT")]
    rows += [
        (
            v.team.id,
            v.team.name,
            v.team.status,
            v.team.actor,
            ",".join(m.member for m in v.team.members),
            v.team.score or "-",
            one_line(v.team.intent),
        )
        for v in found
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for row in rows:
        typer.echo("  ".join([*(c.ljust(w) for c, w in zip(row[:6], widths, strict=True)), row[6]]))


@team_app.command("show")
def show_cmd(
    team: str = typer.Argument(..., help="Team id (team_...) or name."),
    json_out: bool = _JSON,
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
) -> None:
    """One team: intent, actor, arbiter, outcome, and each member's role, masque and session status."""
    from masque import teams
    from masque.cli.output import print_json
    from masque.trust import rings

    view = teams.show(team, selection=rings.selection_from_env(as_name, key_file))
    if json_out:
        print_json(view.to_dict())
        return
    _echo_team(view)


def _echo_team(view: TeamView) -> None:
    from masque.masques.intent_text import one_line

    t = view.team
    typer.echo(f"team     {t.id}  {t.name}  ({t.status})")
    typer.echo(f"intent   {one_line(t.intent)}")
    typer.echo(f"actor    {t.actor}" + (f"   arbiter {t.arbiter}" if t.arbiter else ""))
    if t.status != "active":
        typer.echo(f"outcome  {t.score or '-'} {t.notes or ''}".rstrip())
    _echo_members(t, {s.session_id: s.status for s in view.sessions.values()})


@team_app.command("release")
def release_cmd(
    team: str = typer.Argument(..., help="Team id (team_...) or name."),
    score: str | None = typer.Option(None, "--score", help="The team outcome: + - / * e (or additive, ...)."),
    notes: str | None = typer.Option(None, "--notes", help="Notes to keep with the outcome."),
    json_out: bool = _JSON,
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
) -> None:
    """End every member session (revoking their credentials) and record one team outcome.

    Allowed to whoever may end every member session; exit 3 otherwise. A released team: exit 0, unchanged.
    """
    from masque import teams
    from masque.cli.output import print_json, print_warning
    from masque.trust import rings

    done = teams.release(team, selection=rings.selection_from_env(as_name, key_file), score=score, notes=notes)
    t = done.team
    if json_out:
        print_json(done.to_dict())
    elif done.already_released:
        typer.echo(f"team {t.name} ({t.id}) was already released (score {t.score or '-'}); nothing to do", err=True)
    else:
        typer.echo(
            f"released team {t.name} ({t.id}): {len(done.ended)} session(s) ended, "
            f"{len(done.revoked)} credential(s) revoked" + (f"; score {t.score}" if t.score else ""),
            err=True,
        )
    if done.already_released and score is not None:
        print_warning(f"--score {score} was not recorded: team {t.name} already has its outcome")
