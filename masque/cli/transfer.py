"""`masque sessions export` and `masque sessions import`: move sessions between machines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from masque.cli.sessions import _AS, _KEY_FILE, sessions_app
from masque.errors import UsageError

_SHOWN = 50  # bad records listed on stderr; --json lists every one


@sessions_app.command("export")
def export_cmd(
    path: Path = typer.Argument(..., help="File to write: .parquet or .jsonl (a directory with --partition)."),
    partition: bool = typer.Option(
        False,
        "--partition",
        help="Write Hive-partitioned Parquet under PATH: machine=NAME/date=YYYY-MM-DD/*.parquet.",
    ),
    machine: str | None = typer.Option(
        None, "--machine", help="Machine name for --partition (default: this host's short name)."
    ),
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

    With --partition, every machine exports into one shared tree and replaces only its own
    machine=NAME subtree (atomically), so re-exporting never duplicates a session; then
    `masque stats --from 'PATH/**/*.parquet'` reflects on all of them.
    """
    from masque.reflection.levels import Filters
    from masque.trust import rings

    if partition:
        _export_partitioned(path, machine, Filters.parse(since, until, actor), masque, as_name, key_file, json_out)
        return
    if machine is not None:
        raise UsageError("--machine goes with --partition", hint="add --partition, or drop --machine")
    from masque.reflection.export import export_sessions
    from masque.reflection.transfer import detect_format

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


def _export_partitioned(
    path: Path,
    machine: str | None,
    filters: Any,
    masque: str | None,
    as_name: str | None,
    key_file: Path | None,
    json_out: bool,
) -> None:
    from masque.reflection.partitioned import describe, export_partitioned
    from masque.trust import rings

    if path.suffix.lower() in (".parquet", ".pq", ".jsonl", ".ndjson", ".json"):
        raise UsageError(
            f"--partition writes a directory tree, not the file {path}",
            hint="give a directory, e.g. `masque sessions export --partition exports/`",
        )
    result = export_partitioned(
        path, machine=machine, filters=filters, masque=masque, selection=rings.selection_from_env(as_name, key_file)
    )
    if json_out:
        from masque.cli.output import print_json

        print_json(describe(result))
        return
    typer.echo(
        f"exported {result.sessions} session(s), {result.events} event(s), {result.scores} score(s)"
        f" in {result.files} file(s) to {result.directory}"
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
