"""`masque observe|observations|map|feedback|profile` and `masque mapper ...`. Thin: parse, call, render."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from masque.cli.app import app
from masque.errors import UsageError

mapper_app = typer.Typer(
    name="mapper",
    help="Mapper configurations: rules that turn traits into suggestions; every change is a new version.",
    no_args_is_help=True,
)
app.add_typer(mapper_app, name="mapper")

_JSON = typer.Option(False, "--json", help="Print JSON.")
_AS = typer.Option(None, "--as", help="Act as this actor (needs --key-file).")
_KEY_FILE = typer.Option(None, "--key-file", help="File holding that actor's key.")


def _sel(as_name: str | None, key_file: Path | None) -> Any:
    """Who is calling: --as/--key-file, else MASQUE_ACTOR(+_KEY) or MASQUE_TOKEN, else the founder."""
    from masque.trust import rings

    return rings.selection_from_env(as_name, key_file)


def _json(value: Any) -> None:
    from masque.cli.output import print_json

    print_json(value)


@app.command("observe")
def observe_cmd(
    masque: str = typer.Argument(..., help="Masque the fact is about (name or name@version)."),
    kind: str = typer.Option(..., "--kind", help="Kind of fact: focus, preference, outcome, ..."),
    data: str = typer.Option(..., "--data", help="The fact as a JSON object, e.g. '{\"level\": 4}'."),
    actor_subject: str | None = typer.Option(None, "--actor-subject", help="Actor the fact is about, if one."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Record an immutable fact about a masque: masque observe codesmith --kind focus --data '{"level": 4}'.

    Observations are never changed or deleted; each is hash-chained (`masque observations verify`).
    """
    from masque.feedback import observations

    obs = observations.observe(
        masque, kind, observations.parse_data(data), actor_subject=actor_subject, selection=_sel(as_name, key_file)
    )
    if json_out:
        _json(obs.to_json())
    else:
        typer.echo(f"recorded {obs.id} ({obs.masque} #{obs.seq}, {obs.kind})")


@app.command("observations")
def observations_cmd(
    args: list[str] = typer.Argument(
        ..., metavar="MASQUE | verify [MASQUE]", help="List a masque's observations, or verify chains."
    ),
    kind: str | None = typer.Option(None, "--kind", help="Only observations of this kind."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """List a masque's observations (oldest first), or `verify` their hash chains (exit 1 when tampered)."""
    from masque.feedback import observations

    if args[0] == "verify":
        if len(args) > 2:
            raise UsageError("expected `masque observations verify [MASQUE]`")
        report = observations.verify(args[1] if len(args) > 1 else None, selection=_sel(as_name, key_file))
        if json_out:
            _json(report.to_json())
        else:
            for p in report.problems:
                typer.echo(f"{p.masque} #{p.seq} {p.observation}: {p.message}")
            verdict = "intact" if report.ok else f"{len(report.problems)} problem(s)"
            typer.echo(f"{report.checked} observation(s) of {len(report.masques)} masque(s) checked: {verdict}")
        if not report.ok:
            raise typer.Exit(1)
        return
    if len(args) > 1:
        raise UsageError(f"expected one MASQUE, got {len(args)} arguments")
    found = observations.list_observations(args[0], kind=kind, selection=_sel(as_name, key_file))
    if json_out:
        _json([o.to_json() for o in found])
        return
    if not found:
        typer.echo(f"no observations of {args[0]} yet")
    for o in found:
        about = f" about {o.actor_subject}" if o.actor_subject else ""
        typer.echo(
            f"#{o.seq} {o.id} {o.ts:%Y-%m-%d %H:%M} {o.kind}{about} by {o.recorded_by}: "
            f"{observations.canonical(dict(o.data))}"
        )


@app.command("map")
def map_cmd(
    mapper: str = typer.Option(..., "--mapper", help="Mapper id (`masque mapper list`)."),
    masque: str = typer.Option(..., "--masque", help="Masque to map (name or name@version)."),
    detail_level: str = typer.Option("standard", "--detail-level", help="basic, standard or full."),
    context: str | None = typer.Option(
        None, "--context", help='Context as a JSON object, e.g. \'{"task": "review"}\'.'
    ),
    at: str | None = typer.Option(None, "--at", help="Evaluate time conditions at this ISO time (default: now)."),
    limit: int | None = typer.Option(None, "--limit", help="At most this many suggestions."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Suggestions for a masque from a mapper's rules, best weight first; each has an id for `masque feedback`."""
    import datetime as dt

    from masque.feedback import mapping

    if detail_level not in {d.value for d in mapping.DetailLevel}:
        raise UsageError(f"unknown --detail-level {detail_level!r}; choose basic, standard or full")
    now = None
    if at:
        try:
            now = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(
                f"--at {at!r} is not an ISO date-time", hint="e.g. --at 2026-12-01T09:30:00+00:00"
            ) from None
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.timezone.utc)
    result = mapping.map_masque(
        mapper,
        masque,
        detail_level=detail_level,
        context=mapping.parse_context(context),
        now=now,
        limit=limit,
        selection=_sel(as_name, key_file),
    )
    if json_out:
        _json(result.to_json())
        return
    typer.echo(f"{result.masque} through mapper {result.mapper_id} v{result.mapper_version}:")
    if not result.suggestions:
        typer.echo("  no rule matched")
    for s in result.suggestions:
        line = f"  {s.id}  {s.match.text}"
        if result.detail_level is not mapping.DetailLevel.BASIC:
            line += f"  [{s.match.rule_id}, {s.match.type}, weight {s.match.weight:g}]"
        typer.echo(line)
        if result.detail_level is mapping.DetailLevel.FULL:
            if s.match.detail:
                typer.echo(f"      {s.match.detail}")
            for f, op, v in s.match.matched:
                typer.echo(f"      because {f} {op} (saw {v!r})")


@app.command("feedback", context_settings={"ignore_unknown_options": True})
def feedback_cmd(
    target: str = typer.Argument(..., help="Suggestion id (sug_...) or session id (ses_...: all its suggestions)."),
    score: str = typer.Argument(..., help="+, - or a number from -1 to 1."),
    notes: str | None = typer.Option(None, "--notes", help="Why."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Judge a suggestion; the rule that produced it learns (a new mapper version when its weight moves)."""
    from masque.feedback import learning

    result = learning.give_feedback(target, score, notes=notes, selection=_sel(as_name, key_file))
    if json_out:
        _json(result.to_json())
        return
    typer.echo(f"recorded {len(result.feedback_ids)} feedback ({result.score:+g}) by {result.actor}")
    for learned in result.learned:
        for c in learned.changes:
            typer.echo(f"  {learned.mapper_id} v{learned.version_after}: {c.rule} weight {c.before:g} -> {c.after:g}")
        for rule, (n, needed) in learned.pending.items():
            typer.echo(f"  {learned.mapper_id}: {rule} has {n} of {needed} feedback needed before its weight moves")


@app.command("profile")
def profile_cmd(
    masque: str = typer.Argument(..., help="Masque (name or name@version)."),
    refresh: bool = typer.Option(False, "--refresh", help="Rebuild it now from the observations."),
    llm: bool = typer.Option(
        False, "--llm", help="Let the [llm] model write the summary (with --refresh or a first build)."
    ),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """A masque's derived profile (traits and summary from its observations); says when it is stale."""
    from masque.cli.output import print_warning
    from masque.feedback import profiles

    prof = profiles.profile(masque, refresh=refresh, llm=llm, selection=_sel(as_name, key_file))
    if json_out:
        _json(prof.to_json())
        return
    if prof.stale:
        print_warning(
            f"this profile is stale: built from {prof.built_upto} of {prof.latest} observation(s); "
            f"`masque profile {prof.masque} --refresh` rebuilds it"
        )
    built = f"{prof.source}, built {prof.built_at:%Y-%m-%d %H:%M} by {prof.built_by}"
    typer.echo(f"{prof.masque} profile v{prof.version} ({built})")
    typer.echo(str(prof.body.get("summary", "")))
    for name, value in sorted(dict(prof.body.get("traits", {})).items()):
        if not isinstance(value, (dict, list)):
            typer.echo(f"  {name} = {value}")


@mapper_app.command("put")
def mapper_put_cmd(
    file: Path = typer.Argument(..., help="A *.mapper.yaml file."),
    expect_version: int | None = typer.Option(
        None, "--expect-version", help="Fail with exit 6 unless the mapper is at this version (0: new)."
    ),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """Validate a mapper file and store it as the mapper's next version (players and admins)."""
    from masque.cli.output import print_warning
    from masque.feedback import mappers

    result = mappers.put(file, expect_version=expect_version, selection=_sel(as_name, key_file))
    for d in result.warnings:
        print_warning(f"{d.path}:{d.line}:{d.col}: {d.json_path}: {d.message}")
    if json_out:
        _json({"changed": result.changed, **result.mapper.to_json(with_doc=False)})
    elif result.changed:
        typer.echo(f"stored mapper {result.mapper.id} v{result.mapper.version} ({result.mapper.declared})")
    else:
        typer.echo(f"mapper {result.mapper.id} v{result.mapper.version} already holds this file; nothing written")


@mapper_app.command("list")
def mapper_list_cmd(as_name: str | None = _AS, key_file: Path | None = _KEY_FILE, json_out: bool = _JSON) -> None:
    """Every mapper at its current version."""
    from masque.feedback import mappers

    found = mappers.list_mappers(selection=_sel(as_name, key_file))
    if json_out:
        _json([m.to_json(with_doc=False) for m in found])
        return
    if not found:
        typer.echo("no mappers yet; `masque mapper put FILE` adds one")
    for m in found:
        desc = m.doc.get("metadata", {}).get("description") or ""
        typer.echo(f"{m.id} v{m.version} ({m.declared}, {len(m.weights())} rules) {desc}".rstrip())


@mapper_app.command("show")
def mapper_show_cmd(
    mapper_id: str = typer.Argument(..., metavar="ID", help="Mapper id."),
    version: int | None = typer.Option(None, "--version", help="This stored version (default: current)."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """One mapper version: its document with the weights as of that version."""
    from masque.feedback import mappers

    m = mappers.show(mapper_id, version, selection=_sel(as_name, key_file))
    if json_out:
        _json(m.to_json())
        return
    import yaml

    typer.echo(f"# {m.id} v{m.version} ({m.reason} by {m.actor}, {m.created_at:%Y-%m-%d %H:%M})")
    typer.echo(yaml.safe_dump(dict(m.doc), sort_keys=False, allow_unicode=True).rstrip())


@mapper_app.command("versions")
def mapper_versions_cmd(
    mapper_id: str = typer.Argument(..., metavar="ID", help="Mapper id."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = _JSON,
) -> None:
    """A mapper's version history: who wrote each version and why (a put, or learned weights)."""
    from masque.feedback import mappers

    found = mappers.versions(mapper_id, selection=_sel(as_name, key_file))
    if json_out:
        _json([m.to_json(with_doc=False) for m in found])
        return
    for m in found:
        weights = ", ".join(f"{r}={w:g}" for r, w in m.weights().items())
        typer.echo(f"v{m.version} {m.created_at:%Y-%m-%d %H:%M} {m.reason} by {m.actor}: {weights}")
