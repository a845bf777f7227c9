"""`masque assume`, `release`, `exec`, `whoami`, `revoke` and the `masque sessions` group."""

from __future__ import annotations

from pathlib import Path

import typer

from masque.cli import sessions_run
from masque.cli.app import app
from masque.cli.lean import runs_lean
from masque.cli.sessions_run import fmt_value

_AS = typer.Option(None, "--as", help="Act as this actor (needs --key-file).")
_KEY_FILE = typer.Option(None, "--key-file", help="File holding the actor key `masque actor add` printed.")
_INTENT = typer.Option(..., "--intent", "-i", help="Why you are wearing it: matched against the masque's globs.")
_TTL = typer.Option(None, "--ttl", help="Shorter credential lifetime: PT15M, 15m, 2h. Longer than allowed exits 3.")
_fmt = fmt_value


@app.command("assume")
@runs_lean("masque.cli.sessions_run:assume")
def assume_cmd(
    ref: str = typer.Argument(..., help="NAME, NAME@1.2.3 or masque:NAME@v1.2.3."),
    intent: str = _INTENT,
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    ttl: str | None = _TTL,
    local: bool = typer.Option(False, "--local", help="A per-prompt session nested in the current one."),
    strict_knowledge: bool = typer.Option(
        False, "--strict-knowledge", help="Refuse when any knowledge pointer is unresolved."
    ),
    fmt: str | None = typer.Option(
        None, "--format", "-f", help="env (shell exports), json, or text (default on a terminal, else env)."
    ),
) -> None:
    """Don a masque: check intent and ring, mint a credential, record the session.

    eval "$(masque assume codesmith --intent 'implement the parser')" exports MASQUE_SESSION_ID,
    MASQUE_TOKEN and friends. Refusals exit 3 and are recorded.
    """
    sessions_run.assume(
        ref=ref, intent=intent, as_name=as_name, key_file=key_file, ttl=ttl, local=local,
        strict_knowledge=strict_knowledge, fmt=fmt,
    )  # fmt: skip


@app.command("release")
@runs_lean("masque.cli.sessions_run:release")
def release_cmd(
    session_id: str | None = typer.Argument(None, help="Session to end (default: $MASQUE_SESSION_ID)."),
    score: str | None = typer.Option(None, "--score", help="Score it: + - / * e (or additive, ...)."),
    notes: str | None = typer.Option(None, "--notes", help="Notes to keep with the score."),
    fmt: str = typer.Option("text", "--format", "-f", help="text, json, or env (prints `unset ...`)."),
) -> None:
    """Doff a session: end it, expire its credentials (and those chained below it), record the outcome."""
    sessions_run.release(session_id=session_id, score=score, notes=notes, fmt=fmt)


@app.command("exec")
def exec_cmd(
    ref: str = typer.Argument(..., help="NAME, NAME@1.2.3 or masque:NAME@v1.2.3 (with --team: the command)."),
    command: list[str] | None = typer.Argument(None, help="The command and its arguments, after --."),
    intent: str | None = typer.Option(
        None, "--intent", "-i", help="Why you are wearing it: matched against the masque's globs (not with --team)."
    ),
    team: str | None = typer.Option(None, "--team", help="Run as member(s) of this team (id or name) instead."),
    member: str | None = typer.Option(None, "--member", help="With --team: only this member (default: all)."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    ttl: str | None = _TTL,
    strict_knowledge: bool = typer.Option(False, "--strict-knowledge", help="Refuse on unresolved knowledge."),
) -> None:
    """Run a command wearing a masque; release when it exits; exit with its exit code.

    masque exec codesmith --intent "test the parser" -- pytest -q
    The command gets MASQUE_PARENT_SESSION_ID, MASQUE_CREDENTIAL, MASQUE_SYSTEM_PROMPT_FILE (0600), ...
    SIGINT, SIGTERM and SIGHUP are forwarded to it.

    masque exec --team T [--member M] -- CMD runs CMD as a team member (every member, concurrently,
    without --member) with MASQUE_SESSION_ID/MASQUE_TOKEN of its member session and a fresh token
    revoked when it exits; exits with the first non-zero status in member order.
    """
    from masque.errors import UsageError
    from masque.trust import rings

    selection = rings.selection_from_env(as_name, key_file)
    if team is not None:
        from masque.teams.runner import run_members

        if intent is not None or ttl is not None or strict_knowledge:
            raise UsageError(
                "--intent, --ttl and --strict-knowledge do not go with --team",
                hint="the team's members were decided at `masque team spawn`",
            )
        raise typer.Exit(run_members(team, [ref, *(command or [])], member=member, selection=selection))
    if member is not None:
        raise UsageError("--member needs --team", hint="masque exec --team T --member M -- CMD")
    if intent is None:
        raise UsageError("missing option '--intent'", hint="say why: masque exec REF --intent '...' -- CMD")
    from masque.sessions import runner

    _, code = runner.run(ref, intent, command or [], selection=selection, ttl=ttl, strict_knowledge=strict_knowledge)
    raise typer.Exit(code)


@app.command("whoami")
def whoami_cmd(json_out: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Who is acting, and which masque this shell wears (if any)."""
    from masque.cli.output import print_json
    from masque.sessions.queries import whoami

    me = whoami()
    if json_out:
        print_json(me.to_dict())
        return
    a = me.acting.actor
    typer.echo(
        f"actor   {a.name} ({a.ring.value}, via {me.acting.via.value})"
        + (f"  SUSPENDED: {a.disapproval}" if a.disapproval else "")
    )
    if me.session is None:
        typer.echo("masque  none" + (f" (inside exec of {me.parent_session_id})" if me.parent_session_id else ""))
        return
    s = me.session
    typer.echo(f"masque  {s.ref}  session {s.session_id} ({s.status})")
    from masque.masques.intent_text import one_line

    typer.echo(f"intent  {one_line(s.intent)}")
    if me.token is not None:
        typer.echo(f"token   {me.token.reason}: {me.token.message}")


@app.command("revoke")
def revoke_cmd(
    session_id: str = typer.Argument(..., help="Session to revoke (and every session chained below it)."),
    now: bool = typer.Option(False, "--now", help="Emergency: kill the credentials at once, no grace."),
    grace: str = typer.Option("10s", "--grace", help="How long the holder gets to wind down (graceful mode)."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Revoke a session and every session chained below it.

    Graceful by default: mark it revoking, send an exec'd command SIGTERM, wait up to --grace for it
    to finish, then kill the credentials. --now kills them at once.
    """
    from masque.cli.output import print_json
    from masque.durations import parse_duration
    from masque.sessions import lifecycle as sessions

    ended = sessions.revoke(session_id, now=now, grace=parse_duration(grace) if not now else sessions.DEFAULT_GRACE)
    s = ended.session
    if json_out:
        print_json(
            {
                **s.to_dict(),
                "already_ended": ended.already_ended,
                "graceful": ended.graceful,
                "ended": list(ended.ended),
                "revoked": list(ended.revoked),
            }
        )
    elif ended.already_ended:
        typer.echo(f"session {s.session_id} had already ended ({s.status}); nothing to revoke", err=True)
    else:
        typer.echo(
            f"revoked {s.session_id} ({s.ref}): {len(ended.ended)} session(s) ended, "
            f"{len(ended.revoked)} credential(s) revoked",
            err=True,
        )


sessions_app = typer.Typer(
    name="sessions",
    help="List sessions; `sessions show ID` for one.",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(sessions_app)


@sessions_app.callback(invoke_without_command=True)
def sessions_cmd(
    ctx: typer.Context,
    active: bool = typer.Option(False, "--active", help="Only live sessions (active or revoking)."),
    stale: bool = typer.Option(
        False, "--stale", help="Release sessions whose holder died on this host (abandoned) or that expired."
    ),
    limit: int = typer.Option(100, "--limit", "-n", help="At most this many, newest first."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List sessions newest first (those of your ring and below)."""
    if ctx.invoked_subcommand is not None:
        return
    from masque.cli.output import print_json
    from masque.sessions.queries import list_sessions, sweep_stale

    if stale:
        swept = sweep_stale()
        if json_out:
            print_json([{**x.session.to_dict(), "stale_reason": x.why} for x in swept])
        else:
            for x in swept:
                typer.echo(f"{x.session.session_id}  {x.session.ref}  {x.why}")
            typer.echo(f"released {len(swept)} stale session(s)", err=True)
        return
    found = list_sessions(active=active, limit=limit)
    if json_out:
        print_json([s.to_dict() for s in found])
        return
    if not found:
        typer.echo("no sessions" + (" active" if active else ""), err=True)
        return
    rows = [("SESSION", "MASQUE", "ACTOR", "STATUS", "STARTED", "ACCESSOR", "INTENT")]
    from masque.masques.intent_text import one_line

    # one_line: a stored intent (imported, or older than the boundary check) never adds a row.
    rows += [
        (s.session_id, s.ref, s.actor, s.status, _fmt(s.started_at), s.accessor or "-", one_line(s.intent))
        for s in found
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for row in rows:
        typer.echo("  ".join([*(c.ljust(w) for c, w in zip(row[:6], widths, strict=True)), row[6]]))


@sessions_app.command("show")
def sessions_show_cmd(
    session_id: str = typer.Argument(..., help="Session id (ses_...)."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """One session: its events, credentials (accessors, never tokens), scores and chained sessions."""
    from masque.cli.output import print_json
    from masque.masques.intent_text import one_line
    from masque.sessions.queries import show

    detail = show(session_id)
    if json_out:
        print_json(detail.to_dict())
        return
    s = detail.session
    for key in (
        "session_id",
        "masque",
        "version",
        "actor",
        "actor_ring",
        "originator",
        "intent",
        "status",
        "scope",
        "parent_id",
        "started_at",
        "expires_at",
        "ended_at",
        "end_reason",
        "exit_code",
    ):
        value = _fmt(getattr(s, key))
        typer.echo(f"{key:12} {one_line(value) if key == 'intent' else value}")
    for c in detail.credentials:
        typer.echo(
            f"credential   {c['accessor']} role={c['role']} expires={_fmt(c['expires_at'])} "
            f"revoked={_fmt(c['revoked_at'])}"
        )
    if s.memory is not None:
        shards = ", ".join(f"{name} +{d['added']} -{d['forgotten']}" for name, d in s.memory["shards"].items())
        typer.echo(f"memory       +{s.memory['added']} -{s.memory['forgotten']}" + (f" ({shards})" if shards else ""))
    for sc in detail.scores:
        typer.echo(f"score        {sc['symbol']} {sc['notes'] or ''}".rstrip())
    for child in detail.children:
        typer.echo(f"chained      {child}")
    for e in detail.events:
        typer.echo(f"event        {_fmt(e['ts'])} {e['type']}")
