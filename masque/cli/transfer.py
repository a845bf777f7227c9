"""`masque sessions export` and `masque sessions import`: move sessions between machines."""

from __future__ import annotations

from pathlib import Path

import typer

from masque.cli.sessions import _AS, _KEY_FILE, sessions_app

_SHOWN = 50  # bad records listed on stderr; --json lists every one


@sessions_app.command("export")
def export_cmd(
    path: Path = typer.Argument(..., help="File to write: .parquet or .jsonl."),
    fmt: str | None = typer.Option(None, "--format", "-f", help="parquet or jsonl (default: from the extension)."),
    since: str | None = typer.Option(None, "--since", help="Sessions started from: a date or a duration ago (30d)."),
    until: str | None = typer.Option(None, "--until", help="Sessions started before: a date or a duration ago."),
    actor: str | None = typer.Option(None, "--actor", help="Only sessions worn by this actor."),
    masque: str | None = typer.Option(None, "--masque", help="Only sessions of this masque (name)."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Export sessions with their events, scores and claimed skills (one record per session).

    Only the sessions you see (your ring and below). Parquet files are also the hand-off to other
    engines: `SELECT * FROM 'sessions.parquet'` in DuckDB, or `spark.read.parquet(...)`. The record
    shape is in docs/reflection.md.
    """
    from masque.reflection.export import export_sessions
    from masque.reflection.levels import Filters
    from masque.reflection.transfer import detect_format
    from masque.trust import rings

    result = export_sessions(
        path,
        detect_format(path, fmt),
        Filters.parse(since, until, actor),
        masque,
        rings.selection_from_env(as_name, key_file),
    )
    if json_out:
        from masque.cli.output import print_json

        print_json(
            {
                "path": str(result.path),
                "format": result.format.value,
                "sessions": result.sessions,
                "events": result.events,
                "scores": result.scores,
            }
        )
        return
    typer.echo(
        f"exported {result.sessions} session(s), {result.events} event(s), {result.scores} score(s) to {result.path}"
    )


@sessions_app.command("import")
def import_cmd(
    path: Path = typer.Argument(..., help="File written by `masque sessions export` (.parquet or .jsonl)."),
    fmt: str | None = typer.Option(None, "--format", "-f", help="parquet or jsonl (default: from the extension)."),
    atomic: bool = typer.Option(False, "--atomic", help="Import nothing if any record is bad."),
    as_name: str | None = _AS,
    key_file: Path | None = _KEY_FILE,
    json_out: bool = typer.Option(False, "--json", help="Print the counts and problems as JSON."),
) -> None:
    """Import sessions (admins only); sessions already in the store are skipped, never changed.

    Sessions live elsewhere arrive ended (`imported_live`). A bad record is reported with its line
    (JSON Lines) or row (Parquet). Without --atomic the good records are imported and the command
    exits 1; with --atomic nothing is imported (exit 1). Others are refused (exit 3, recorded).
    """
    from masque.reflection.transfer import detect_format, import_sessions
    from masque.trust import rings

    result = import_sessions(
        path, detect_format(path, fmt), atomic=atomic, selection=rings.selection_from_env(as_name, key_file)
    )
    if json_out:
        from masque.cli.output import print_json

        print_json(
            {
                "path": str(result.path),
                "format": result.format.value,
                "records": result.records,
                "sessions_added": result.sessions_added,
                "sessions_skipped": result.sessions_skipped,
                "events_added": result.events_added,
                "scores_added": result.scores_added,
                "skills_added": result.skills_added,
                "problems": [{"line": p.line, "message": p.message} for p in result.problems],
            }
        )
    else:
        from masque.cli.output import print_warning

        for problem in result.problems[:_SHOWN]:
            print_warning(f"{result.path}:{problem.line}: skipped: {problem.message}")
        if len(result.problems) > _SHOWN:
            print_warning(f"... and {len(result.problems) - _SHOWN} more bad record(s); --json lists them all")
        typer.echo(
            f"imported {result.sessions_added} new session(s) ({result.sessions_skipped} already here, skipped), "
            f"{result.events_added} event(s), {result.scores_added} score(s) from {result.records} record(s)"
        )
    if result.problems:
        raise typer.Exit(1)
