"""`masque bus ...`: a team's collaboration bus. Thin: parse, call masque.bus.ops, render."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from masque.cli.app import app
from masque.errors import UsageError

if TYPE_CHECKING:
    from masque.bus.model import BusEvent

bus_app = typer.Typer(
    name="bus",
    help="A team's collaboration bus: post proposals, critiques, revisions and approvals; read, watch, resolve.",
    no_args_is_help=True,
)
app.add_typer(bus_app, name="bus")

_TEAM = typer.Argument(..., help="Team id or name.")
_AS = typer.Option(None, "--as", help="Act as this actor (needs --key-file).")
_KEY_FILE = typer.Option(None, "--key-file", help="File holding that actor's key.")
_JSON = typer.Option(False, "--json", help="Print JSON.")
_MEMBER_POST = typer.Option(
    None, "--member", "-m", help="Post as this member (the team's actor or an admin; a member token is its own)."
)


def _sel(as_name: str | None, key_file: Path | None) -> Any:
    """Who is calling: --as/--key-file, else MASQUE_ACTOR(+_KEY) or MASQUE_TOKEN, else the founder."""
    from masque.trust import rings

    return rings.selection_from_env(as_name, key_file)


def _payload(text: str | None, data: str | None, file: Path | None) -> dict[str, Any]:
    given = [x for x in (text, data, file) if x is not None]
    if len(given) > 1:
        raise UsageError("give one of --text, --data or --file", hint="--data takes a JSON object")
    if data is not None:
        try:
            value = json.loads(data)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--data is not JSON: {exc.msg} at character {exc.pos}") from None
        if not isinstance(value, dict):
            raise UsageError(
                "--data must be a JSON object", hint='e.g. --data \'{"text": "...", "verdict": "revise"}\''
            )
        return value
    if file is not None:
        try:
            content = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {file}: {exc}", hint="pass a UTF-8 text file, or - for stdin") from None
        return {"text": content}
    return {"text": text} if text is not None else {}


def _short(payload: dict[str, Any], width: int = 70) -> str:
    text = payload.get("text", payload.get("reason", payload.get("notes")))
    if not isinstance(text, str):
        text = json.dumps(payload, ensure_ascii=False, sort_keys=True)
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _line(e: BusEvent) -> str:
    extra = []
    if e.reply_to:
        extra.append(f"re {e.reply_to}")
    for key in ("verdict", "decision"):
        if key in e.payload:
            extra.append(f"{key}={e.payload[key]}")
    if e.kind.value == "conflict":
        extra.append("between " + " and ".join(e.payload.get("events", [])))
    tail = f"  ({', '.join(extra)})" if extra else ""
    return f"{e.id}  {e.ts:%H:%M:%S}  {e.topic:28} {e.actor:12} {_short(e.payload)}{tail}"


def _emit(e: BusEvent, json_lines: bool) -> None:
    if json_lines:
        sys.stdout.write(json.dumps(e.to_json(), ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(_line(e) + "\n")
    sys.stdout.flush()


def _print_posted(posted: Any, json_out: bool, team: str) -> None:
    from masque.cli.output import print_json, print_warning

    if json_out:
        print_json(posted.to_json())
        return
    typer.echo(f"posted {posted.event.id} ({posted.event.topic})")
    if posted.conflict is not None:
        c = posted.conflict
        print_warning(
            f"conflict {c.id}: {c.payload['reason']} ({', '.join(c.payload['events'])});"
            f" `masque bus resolve {team} {c.id} --decision ...` records the resolution"
        )


@bus_app.command("post")
def post_cmd(
    team: str = _TEAM,
    kind: str = typer.Option(
        ...,
        "--kind",
        "-k",
        help="proposal, critique, revision, approval, output, context_delta or resolution.",
    ),
    member: str | None = _MEMBER_POST,
    reply_to: str | None = typer.Option(None, "--reply-to", "-r", help="The event this one answers."),
    text: str | None = typer.Option(None, "--text", "-t", help='Payload {"text": T}.'),
    data: str | None = typer.Option(None, "--data", help="Payload as a JSON object."),
    file: Path | None = typer.Option(None, "--file", "-f", help='Payload {"text": <file content>}; - reads stdin.'),
    request_revision: bool = typer.Option(
        False, "--request-revision", help="A critique that asks for a revision (needs can_request_revision)."
    ),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Post an event. Example: masque bus post crew --kind critique --reply-to bus_01J... --text "too long"."""
    from masque.bus import ops

    posted = ops.post(team, kind, payload=_payload(text, data, file), member=member, reply_to=reply_to,
                      request_revision=request_revision, selection=_sel(as_name, key_file))  # fmt: skip
    _print_posted(posted, json_out, team)


@bus_app.command("resolve")
def resolve_cmd(
    team: str = _TEAM,
    conflict_id: str = typer.Argument(..., help="The conflict event's id."),
    decision: str = typer.Option(..., "--decision", "-d", help="accept, reject or revise."),
    notes: str | None = typer.Option(None, "--notes", help="Why, in words (kept in the history)."),
    prevails: str | None = typer.Option(None, "--prevails", help="The conflicting event that stands."),
    member: str | None = typer.Option(
        None, "--member", "-m", help="Resolve as this member (the arbiter, or one with can_arbitrate)."
    ),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Record the one resolution of a conflict (by the arbiter member, or a person: the team's actor or an admin)."""
    from masque.bus import ops

    posted = ops.resolve(team, conflict_id, decision=decision, notes=notes, prevails=prevails, member=member,
                         selection=_sel(as_name, key_file))  # fmt: skip
    _print_posted(posted, json_out, team)


@bus_app.command("read")
def read_cmd(
    team: str = _TEAM,
    member: str | None = typer.Option(None, "--member", "-m", help="Only the topics this member subscribes to."),
    since: str | None = typer.Option(None, "--since", help="Only events after this event id."),
    kind: list[str] | None = typer.Option(None, "--kind", "-k", help="Only these kinds (repeatable)."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """A team's events in posting order. --json: {"events": [{"id", "kind", "topic", "payload", ...}]}."""
    from masque.bus import ops
    from masque.cli.output import print_json

    events = ops.read(team, member=member, since=since, kinds=kind or (), selection=_sel(as_name, key_file))
    if json_out:
        print_json({"events": [e.to_json() for e in events]})
        return
    if not events:
        typer.echo("no events", err=True)
    for e in events:
        typer.echo(_line(e))


@bus_app.command("watch")
def watch_cmd(
    team: str = _TEAM,
    member: str | None = typer.Option(None, "--member", "-m", help="Only the topics this member subscribes to."),
    since: str | None = typer.Option(None, "--since", help="Start after this event id (default: from now)."),
    from_start: bool = typer.Option(False, "--from-start", help="Replay the whole history first."),
    kind: list[str] | None = typer.Option(None, "--kind", "-k", help="Only these kinds (repeatable)."),
    until: str | None = typer.Option(None, "--until", help="Stop after printing an event of this kind."),
    count: int | None = typer.Option(None, "--count", "-n", help="Stop after printing this many events."),
    interval: float = typer.Option(0.25, "--interval", help="Seconds between polls of the store."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Print events as they are posted, until Ctrl-C (exit 130), --until KIND or --count N."""
    from masque.bus import ops
    from masque.bus.model import Kind

    if count is not None and count < 1:
        raise UsageError(f"--count must be at least 1, got {count}", hint="e.g. --count 5")
    if not 0.01 <= interval <= 60:
        raise UsageError(f"--interval must be between 0.01 and 60 seconds, got {interval:g}")
    stop_kind = Kind.parse(until) if until else None
    events = ops.watch(team, member=member, since=since, from_start=from_start, kinds=kind or (), interval=interval,
                       selection=_sel(as_name, key_file))  # fmt: skip
    for printed, event in enumerate(events, start=1):
        _emit(event, json_out)
        if (count is not None and printed >= count) or event.kind is stop_kind:
            return


@bus_app.command("subscribe")
def subscribe_cmd(
    team: str = _TEAM,
    pattern: str = typer.Argument(..., help="Topic glob, member.kind (e.g. lyricist.output, '*.proposal')."),
    member: str | None = typer.Option(None, "--member", "-m", help="The listening member (a member token: itself)."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Subscribe a member to a topic pattern; refused (exit 3) when the member could not answer it."""
    from masque.bus import ops
    from masque.cli.output import print_json

    wiring = ops.subscribe(team, member, pattern, selection=_sel(as_name, key_file))
    if json_out:
        print_json(wiring.to_json())
    else:
        typer.echo(f"{wiring.member} subscribes to {wiring.pattern}" + (f" ({wiring.note})" if wiring.note else ""))


@bus_app.command("subscriptions")
def subscriptions_cmd(
    team: str = _TEAM,
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Each member's topic patterns (from its masque's collaboration.subscribes and `bus subscribe`)."""
    from masque.bus import ops
    from masque.cli.output import print_json

    found = ops.subscriptions(team, selection=_sel(as_name, key_file))
    if json_out:
        print_json({"subscriptions": found})
        return
    for member, patterns in found.items():
        typer.echo(f"{member:16} {' '.join(patterns) or '-'}")
