"""Moving sessions between machines: export to Parquet or JSON Lines, and idempotent import.

One record per session, with the session's events, scores and the skills its masque version claims
nested inside it; events that belong to no session (refusals before a session existed) travel as
records of kind `event`. The shape is documented in docs/reflection.md and is the same in both formats
(Parquet keeps native timestamps and JSON columns; JSON Lines writes RFC 3339 strings and objects).

Import stages the file in DuckDB, checks every record in one SQL pass (so a bad row is reported with
its line), then inserts what is new: ids already in the store are skipped, so importing the same file
twice adds nothing.

Trust (docs/sessions.md, "Threat model"): import is an admin verb (others are refused and recorded as
`import_refused`). An imported record is the other store's history, never a credential here: a
session whose id is already in this store is skipped with everything nested in it (never
overwritten, never scored, never ended by a file); a session that was live elsewhere arrives ended
(end reason `imported_live`), with no credential; sessionless events naming a session of this store
are dropped; every imported session carries `metadata.imported` = {by, at, file}; and the import
itself is a `sessions_imported` event by the admin who ran it. Export follows the ring rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from masque.enums import Level, Ring, Score
from masque.errors import NotFound, Refused, UsageError, ValidationFailed

if TYPE_CHECKING:
    import duckdb

    from masque.trust.rings import Acting
    from masque.trust.rings import Selection as ActorSelection

SESSION_COLUMNS: dict[str, str] = {
    "id": "VARCHAR",
    "masque": "VARCHAR",
    "version": "VARCHAR",
    "content_hash": "VARCHAR",
    "source_path": "VARCHAR",
    "masque_ring": "VARCHAR",
    "actor": "VARCHAR",
    "actor_ring": "VARCHAR",
    "originator": "VARCHAR",
    "parent_id": "VARCHAR",
    "scope": "VARCHAR",
    "intent": "VARCHAR",
    "role": "VARCHAR",
    "status": "VARCHAR",
    "started_at": "TIMESTAMPTZ",
    "expires_at": "TIMESTAMPTZ",
    "ended_at": "TIMESTAMPTZ",
    "end_reason": "VARCHAR",
    "exit_code": "INTEGER",
    "metadata": "JSON",
}
SKILL_FIELDS = {"uri": "VARCHAR", "level": "VARCHAR"}
SCORE_FIELDS = {
    "id": "VARCHAR",
    "symbol": "VARCHAR",
    "notes": "VARCHAR",
    "scored_by": "VARCHAR",
    "created_at": "TIMESTAMPTZ",
}
EVENT_FIELDS = {
    "id": "VARCHAR",
    "ts": "TIMESTAMPTZ",
    "type": "VARCHAR",
    "session_id": "VARCHAR",
    "masque": "VARCHAR",
    "version": "VARCHAR",
    "actor": "VARCHAR",
    "originator": "VARCHAR",
    "payload": "JSON",
}
NESTED = {"skills": SKILL_FIELDS, "scores": SCORE_FIELDS, "events": EVENT_FIELDS}
REQUIRED = ("kind", "id", "masque", "version", "actor", "intent", "started_at")
MAX_REPORTED = 20  # bad rows listed in an --atomic error message


class Format(str, Enum):
    PARQUET = "parquet"
    JSONL = "jsonl"


def detect_format(path: Path, given: str | None = None) -> Format:
    """The format named by `--format`, else by the file's extension."""
    if given:
        try:
            return Format(given.lower())
        except ValueError:
            raise UsageError(f"unknown format {given!r}", hint="use parquet or jsonl") from None
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return Format.PARQUET
    if suffix in (".jsonl", ".ndjson", ".json"):
        return Format.JSONL
    raise UsageError(
        f"cannot tell the format of {path} from its extension",
        hint="name it .parquet or .jsonl, or pass --format parquet|jsonl",
    )


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: Format
    sessions: int
    events: int
    scores: int


@dataclass(frozen=True)
class RowProblem:
    line: int  # 1-based line (JSON Lines) or row (Parquet)
    message: str


@dataclass(frozen=True)
class ImportResult:
    path: Path
    format: Format
    records: int
    sessions_added: int
    sessions_skipped: int  # ids already in this store: never overwritten
    events_added: int
    scores_added: int
    skills_added: int
    problems: tuple[RowProblem, ...]


def _struct_type(fields: dict[str, str]) -> str:
    return "STRUCT(" + ", ".join(f"{k} {v}" for k, v in fields.items()) + ")"


def sql_path_literal(path: Path) -> str:
    return str(path).replace("'", "''")


def record_columns(conn: duckdb.DuckDBPyConnection, src: str, where: str, hint: str) -> list[str]:
    """The select list that reads `src` (a DuckDB table function over exported files) as full records.

    Columns the files lack become typed NULLs or empty lists, so older or partial exports still read.
    Files DuckDB cannot read, or without the required columns, are refused (ValidationFailed) naming `where`.
    """
    try:
        present = {r[0] for r in conn.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
    except Exception as exc:  # duckdb raises several types for unreadable files
        raise ValidationFailed(
            f"{where}: not readable as exported sessions: {str(exc).splitlines()[0]}", hint=hint
        ) from None
    missing = [c for c in REQUIRED if c not in present]
    if missing:
        raise ValidationFailed(
            f"{where}: missing column(s) {', '.join(missing)}",
            hint="see the record shape in docs/reflection.md (`masque sessions export` writes it)",
        )
    cols = [name if name in present else f"NULL::{kind} AS {name}" for name, kind in SESSION_COLUMNS.items()]
    cols += [name if name in present else f"[]::{_struct_type(fields)}[] AS {name}" for name, fields in NESTED.items()]
    return cols


def _stage_parquet(conn: duckdb.DuckDBPyConnection, path: Path) -> None:
    src = f"read_parquet('{sql_path_literal(path)}', file_row_number = true)"
    cols = record_columns(conn, src, str(path), "export it with `masque sessions export --format parquet`")
    # A view, not a table: each pass reads only the Parquet columns it needs, in parallel.
    conn.execute(f"CREATE TEMP VIEW _in AS SELECT file_row_number + 1 AS line, kind, {', '.join(cols)} FROM {src}")


def _stage_jsonl(conn: duckdb.DuckDBPyConnection, path: Path) -> list[RowProblem]:
    """Parse JSON Lines into the staging table; lines that are not JSON objects become problems."""
    import pyarrow as pa

    problems: list[RowProblem] = []
    columns: dict[str, list[Any]] = {k: [] for k in ("line", "kind", *SESSION_COLUMNS, *NESTED)}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
                if not isinstance(record, dict):
                    raise ValueError("a record must be a JSON object")
                row = _jsonl_row(record)
            except json.JSONDecodeError as exc:
                problems.append(RowProblem(number, f"not valid JSON: {exc.msg} at column {exc.colno}"))
                continue
            except (ValueError, TypeError) as exc:
                problems.append(RowProblem(number, str(exc).splitlines()[0]))
                continue
            columns["line"].append(number)
            for key, value in row.items():
                columns[key].append(value)
    string = pa.string()
    nested_types = {name: pa.list_(pa.struct([(k, string) for k in fields])) for name, fields in NESTED.items()}
    schema = pa.schema(
        [("line", pa.int64()), ("kind", string)]
        + [(k, pa.int64() if v == "INTEGER" else string) for k, v in SESSION_COLUMNS.items()]
        + list(nested_types.items())
    )
    table = pa.table(columns, schema=schema)
    conn.register("_in_arrow", table)
    conn.execute("CREATE TEMP TABLE _in AS SELECT * FROM _in_arrow")
    conn.unregister("_in_arrow")
    return problems


def _stage_jsonl_fast(conn: duckdb.DuckDBPyConnection, path: Path) -> bool:
    """Stage JSON Lines with DuckDB's reader (about 100x faster than json.loads per line).

    Returns False when DuckDB cannot read the file (malformed JSON, a list that is not a list...);
    the caller then uses the line-by-line reader, which names each bad line. DuckDB skips blank
    lines, so its record numbers are only trusted while no record has a problem.
    """
    import duckdb

    def json_type(kind: str) -> str:
        return "JSON" if kind == "JSON" else "VARCHAR"

    columns = {"kind": "VARCHAR", **{k: json_type(v) for k, v in SESSION_COLUMNS.items()}}
    for name, fields in NESTED.items():
        columns[name] = _struct_type({k: json_type(v) for k, v in fields.items()}) + "[]"
    try:
        conn.execute(
            "CREATE TEMP TABLE _in AS SELECT row_number() OVER () AS line, *"
            " FROM read_json($path, format = 'newline_delimited', columns = $columns)",
            {"path": str(path), "columns": columns},
        )
    except duckdb.Error:
        conn.execute("DROP TABLE IF EXISTS _in")
        return False
    for name in NESTED:  # a record without the key has no such items, not an unknown list
        conn.execute(f"UPDATE _in SET {name} = [] WHERE {name} IS NULL")
    return True


def _stage(conn: duckdb.DuckDBPyConnection, path: Path, fmt: Format) -> tuple[list[RowProblem], int]:
    """Stage the file as `_in` and its bad records as `_bad`; returns (problems, records read)."""
    parse_problems: list[RowProblem] = []
    fast = False
    if fmt is Format.PARQUET:
        _stage_parquet(conn, path)
    else:
        fast = _stage_jsonl_fast(conn, path)
        if not fast:
            parse_problems = _stage_jsonl(conn, path)
    conn.execute(f"CREATE TEMP TABLE _bad AS SELECT * FROM ({_problems_sql()}) WHERE problem <> ''")
    flagged = conn.execute("SELECT count(*) FROM _bad").fetchone()
    if fast and flagged and flagged[0]:
        conn.execute("DROP TABLE _bad")
        conn.execute("DROP TABLE _in")
        parse_problems = _stage_jsonl(conn, path)
        conn.execute(f"CREATE TEMP TABLE _bad AS SELECT * FROM ({_problems_sql()}) WHERE problem <> ''")
    bad = parse_problems + [
        RowProblem(int(r[0]), str(r[1])) for r in conn.execute("SELECT line, problem FROM _bad").fetchall()
    ]
    bad.sort(key=lambda p: p.line)
    staged = conn.execute("SELECT count(*) FROM _in").fetchone()
    return bad, (int(staged[0]) if staged else 0) + len(parse_problems)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _jsonl_row(record: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"kind": _text(record.get("kind"))}
    for name, kind in SESSION_COLUMNS.items():
        value = record.get(name)
        if kind == "INTEGER" and value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        row[name] = value if kind == "INTEGER" else _text(value)
    for name, fields in NESTED.items():
        items = record.get(name) or []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ValueError(f"{name} must be a list of objects")
        row[name] = [{k: _text(item.get(k)) for k in fields} for item in items]
    return row


def _problems_sql() -> str:
    rings = ", ".join(f"'{r.value}'" for r in Ring)
    levels = ", ".join(f"'{lv.value}'" for lv in Level)
    symbols = ", ".join(f"'{s.value}'" for s in Score)
    from masque.reflection.levels import STATUSES

    statuses = ", ".join(f"'{s}'" for s in STATUSES)

    def bad_ts(expr: str) -> str:
        return f"({expr} IS NOT NULL AND TRY_CAST({expr} AS TIMESTAMPTZ) IS NULL)"

    checks = [
        ("kind IS NULL OR kind NOT IN ('session', 'event')", "kind must be 'session' or 'event'"),
        ("kind = 'session' AND coalesce(id, '') = ''", "id is missing"),
        ("kind = 'session' AND coalesce(masque, '') = ''", "masque is missing"),
        ("kind = 'session' AND coalesce(version, '') = ''", "version is missing"),
        ("kind = 'session' AND coalesce(actor, '') = ''", "actor is missing"),
        ("kind = 'session' AND intent IS NULL", "intent is missing"),
        ("kind = 'session' AND started_at IS NULL", "started_at is missing"),
        (f"kind = 'session' AND masque_ring NOT IN ({rings})", "masque_ring is not a trust ring"),
        (f"kind = 'session' AND actor_ring NOT IN ({rings})", "actor_ring is not a trust ring"),
        (f"kind = 'session' AND status NOT IN ({statuses})", f"status must be one of {statuses}"),
        ("kind = 'session' AND scope NOT IN ('global', 'local')", "scope must be global or local"),
        (bad_ts("started_at"), "started_at is not a timestamp"),
        (bad_ts("ended_at"), "ended_at is not a timestamp"),
        (bad_ts("expires_at"), "expires_at is not a timestamp"),
        ("metadata IS NOT NULL AND NOT json_valid(metadata::VARCHAR)", "metadata is not JSON"),
        ("exit_code IS NOT NULL AND TRY_CAST(exit_code AS INTEGER) IS NULL", "exit_code must be an integer"),
        (
            f"len(list_filter(skills, lambda x: x.uri IS NULL OR NOT starts_with(x.uri, 'skill://')"
            f" OR x.level IS NULL OR x.level NOT IN ({levels}))) > 0",
            "skills need a skill:// uri and a level (novice..master)",
        ),
        (
            f"len(list_filter(scores, lambda x: coalesce(x.id, '') = '' OR x.symbol IS NULL"
            f" OR x.symbol NOT IN ({symbols}) OR x.created_at IS NULL"
            " OR TRY_CAST(x.created_at AS TIMESTAMPTZ) IS NULL)) > 0",
            "scores need an id, a symbol (+ - / * e) and a created_at timestamp",
        ),
        (
            "len(list_filter(events, lambda x: coalesce(x.id, '') = '' OR coalesce(x.type, '') = ''"
            " OR x.ts IS NULL OR TRY_CAST(x.ts AS TIMESTAMPTZ) IS NULL"
            " OR (x.payload IS NOT NULL AND NOT json_valid(x.payload::VARCHAR)))) > 0",
            "events need an id, a type, a ts timestamp and a JSON payload",
        ),
        ("kind = 'event' AND len(events) = 0", "an event record needs at least one event"),
    ]
    parts = ", ".join(f"CASE WHEN {cond} THEN '{msg.replace(chr(39), chr(39) * 2)}' END" for cond, msg in checks)
    return f"SELECT line, concat_ws('; ', {parts}) AS problem FROM _in"


BULK_RECORDS = 50_000  # above this, secondary indexes are rebuilt once instead of updated per row


def _insert(conn: duckdb.DuckDBPyConnection, src: str, provenance: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """Insert the good staged records; returns (sessions, skipped, events, scores, skills) counts.

    Only sessions new to this store are written, with what is nested in them: a staged id already
    here is skipped whole (that is what makes a second import add nothing, and what keeps a file
    from ending, scoring or re-opening a session of this store). INSERT OR IGNORE also drops
    duplicates inside one file.
    """

    def count(sql: str, params: dict[str, Any] | None = None) -> int:
        row = conn.execute(sql, params).fetchone()
        return int(row[0]) if row else 0

    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE _new AS SELECT DISTINCT id FROM {src}"
        " WHERE kind = 'session' AND id NOT IN (SELECT id FROM sessions)"
    )
    skipped = count(f"SELECT count(DISTINCT id) FROM {src} WHERE kind = 'session' AND id IN (SELECT id FROM sessions)")
    live = "coalesce(status, 'ended') IN ('active', 'revoking')"
    values = []
    for name, kind in SESSION_COLUMNS.items():
        if kind == "TIMESTAMPTZ":
            values.append(f"TRY_CAST({name} AS TIMESTAMPTZ)")
        elif name == "originator":
            values.append("coalesce(originator, actor)")
        elif name == "scope":
            values.append("coalesce(scope, 'global')")
        elif name in ("masque_ring", "actor_ring"):
            values.append(f"coalesce({name}, 'outsider')")
        elif name == "status":  # live elsewhere is history here: no credential, never active
            values.append(f"CASE WHEN {live} THEN 'ended' ELSE coalesce(status, 'ended') END")
        elif name == "end_reason":
            values.append(f"CASE WHEN {live} THEN 'imported_live' ELSE end_reason END")
        elif name == "parent_id":  # never chained under a session started in this store
            values.append(
                "CASE WHEN parent_id IN (SELECT id FROM sessions"
                " WHERE json_extract(metadata, '$.imported') IS NULL) THEN NULL ELSE parent_id END"
            )
        elif name == "metadata":
            values.append(
                "json_merge_patch(CASE WHEN json_type(metadata::JSON) = 'OBJECT' THEN metadata::JSON"
                " ELSE '{}'::JSON END, $provenance::JSON)"
            )
        elif name == "exit_code":
            values.append("TRY_CAST(exit_code AS INTEGER)")
        else:
            values.append(name)
    sessions = count(
        f"INSERT OR IGNORE INTO sessions ({', '.join(SESSION_COLUMNS)}) SELECT {', '.join(values)}"
        f" FROM {src} WHERE kind = 'session' AND id IN (SELECT id FROM _new)",
        {"provenance": json.dumps({"imported": provenance})},
    )
    # Nested events come with their (new) session; a sessionless event may not name one of ours.
    events = count(
        "INSERT OR IGNORE INTO events (id, ts, type, session_id, masque, version, actor, originator, payload)"
        " SELECT x.id, TRY_CAST(x.ts AS TIMESTAMPTZ), x.type,"
        " CASE WHEN kind = 'session' THEN rid ELSE x.session_id END,"
        " x.masque, x.version, x.actor, x.originator, x.payload::JSON"
        f" FROM (SELECT kind, id AS rid, unnest(events) AS x FROM {src}"
        "       WHERE kind = 'event' OR id IN (SELECT id FROM _new))"
        " WHERE kind = 'session' OR x.session_id IS NULL OR x.session_id IN (SELECT id FROM _new)"
        " OR x.session_id NOT IN (SELECT id FROM sessions)"
    )
    scores = count(
        "INSERT OR IGNORE INTO scores (id, session_id, symbol, notes, scored_by, created_at)"
        " SELECT x.id, rid, x.symbol, x.notes, x.scored_by, TRY_CAST(x.created_at AS TIMESTAMPTZ)"
        f" FROM (SELECT id AS rid, unnest(scores) AS x FROM {src}"
        "       WHERE kind = 'session' AND id IN (SELECT id FROM _new))"
    )
    skills = count(
        "INSERT OR IGNORE INTO masque_skills (masque, version, skill, level)"
        " SELECT masque, version, k.uri, any_value(k.level)"
        f" FROM (SELECT masque, version, unnest(skills) AS k FROM {src}"
        "       WHERE kind = 'session' AND id IN (SELECT id FROM _new))"
        " GROUP BY masque, version, k.uri"
    )
    conn.execute("DROP TABLE _new")
    return sessions, skipped, events, scores, skills


def _drop_secondary_indexes(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """Drop the non-key indexes of the bulk tables, returning (name, sql) to recreate them.

    Building an ART index once over the loaded rows is several times faster than maintaining it row
    by row (2M events: 4 s + 2 s rebuild instead of 12 s). It all happens inside the import's
    transaction, so a failed import leaves the indexes as they were.
    """
    found = conn.execute(
        "SELECT index_name, sql FROM duckdb_indexes()"
        " WHERE table_name IN ('sessions', 'events', 'scores') AND NOT is_primary AND NOT is_unique"
        " AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in found:
        conn.execute(f'DROP INDEX "{name}"')
    return [(str(n), str(q)) for n, q in found]


def _admin_or_refuse(conn: duckdb.DuckDBPyConnection, selection: ActorSelection | None, path: Path) -> Acting:
    """The acting actor, if it is an admin; otherwise record `import_refused` and raise (exit 3)."""
    from masque.store.events import record_event
    from masque.trust import rings

    sel = selection or rings.selection_from_env()
    who: Acting | None = None
    try:
        who = rings.resolve_acting(conn, sel)
        if who.actor.ring is not Ring.ADMIN:
            raise Refused(
                f"actor {who.actor.name!r} (ring {who.actor.ring.value}) cannot import sessions: "
                "importing is an admin verb",
                reason="ring_refused",
                hint="ask an admin to import the file (`masque actor list` shows who is one)",
            )
    except Refused as exc:
        record_event(
            conn,
            "import_refused",
            session_id=None,
            masque=None,
            version=None,
            actor=who.actor.name if who else sel.name,
            originator=who.actor.name if who else sel.name,
            payload={
                "reason": exc.reason,
                "message": str(exc),
                "file": str(path),
                "actor_verified": who is not None,
                "actor_ring": who.actor.ring.value if who else None,
            },
        )
        raise
    return who


def import_sessions(
    path: Path, fmt: Format | None = None, *, atomic: bool = False, selection: ActorSelection | None = None
) -> ImportResult:
    """Import a file written by `export.export_sessions` (or any file with the documented shape). Admins only.

    With `atomic`, any bad record aborts the import and nothing is written (ValidationFailed lists
    the bad lines). Without it, good records are imported and the bad ones come back as problems.
    """
    from masque import store
    from masque.durations import utcnow
    from masque.store import turns
    from masque.store.events import record_event

    path = path.expanduser()
    if not path.is_file():
        raise NotFound(f"no file {path} to import", hint="give the path `masque sessions export` wrote")
    fmt = fmt or detect_format(path)
    # On a PostgreSQL store the DuckDB SQL below runs on an in-memory copy; its new rows are written back.
    appended = ("actors", "sessions", "events", "scores", "masque_skills")  # actors: a first-use founder
    with turns.bulk_writer(appended, ("score_facts",)) as conn:
        who = _admin_or_refuse(conn, selection, path)
        store.for_analytics(conn)
        # Staging only touches temporary tables, so it runs before the transaction: a file DuckDB
        # cannot parse must not abort the transaction the line-by-line fallback then needs.
        bad, records = _stage(conn, path, fmt)
        if bad and atomic:
            listed = "; ".join(f"{path}:{p.line}: {p.message}" for p in bad[:MAX_REPORTED])
            more = f" (and {len(bad) - MAX_REPORTED} more)" if len(bad) > MAX_REPORTED else ""
            raise ValidationFailed(
                f"{len(bad)} bad record(s), nothing imported: {listed}{more}",
                hint="fix those lines, or import without --atomic to take the good records",
            )
        conn.execute("BEGIN TRANSACTION")
        try:
            src = "(SELECT * FROM _in WHERE line NOT IN (SELECT line FROM _bad))" if bad else "_in"
            indexes = _drop_secondary_indexes(conn) if records > BULK_RECORDS else []
            provenance = {"by": who.actor.name, "at": utcnow().isoformat(), "file": str(path)}
            sessions, skipped, events, scores, skills = _insert(conn, src, provenance)
            for _, sql in indexes:
                conn.execute(sql)
            if sessions or scores:
                from masque.reflection.scoring import rebuild_score_facts

                rebuild_score_facts(conn)
            record_event(
                conn,
                "sessions_imported",
                session_id=None,
                masque=None,
                version=None,
                actor=who.actor.name,
                originator=who.actor.name,
                payload={
                    "file": str(path),
                    "records": records,
                    "sessions_added": sessions,
                    "sessions_skipped": skipped,
                    "events_added": events,
                    "scores_added": scores,
                    "problems": len(bad),
                },
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if sessions + events > 100_000:
            conn.execute("CHECKPOINT")  # so the next cold open does not replay a large WAL
    return ImportResult(path, fmt, records, sessions, skipped, events, scores, skills, tuple(bad))
