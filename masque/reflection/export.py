"""Export: sessions with their events, scores and claimed skills nested, to Parquet or JSON Lines.

The record shape is defined in `masque.reflection.transfer` (and docs/reflection.md); this module builds it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from masque.enums import Ring
from masque.errors import UsageError
from masque.reflection.transfer import (
    EVENT_FIELDS,
    SCORE_FIELDS,
    SESSION_COLUMNS,
    SKILL_FIELDS,
    ExportResult,
    Format,
    sql_path_literal,
)

if TYPE_CHECKING:
    import duckdb

    from masque.reflection.levels import Filters
    from masque.trust.rings import Selection as ActorSelection


def _json_ext(column: Any) -> Any:
    """Mark a string column as JSON so Parquet records the logical type and JSON Lines embeds objects."""
    import pyarrow as pa

    return pa.ExtensionArray.from_storage(pa.json_(), column.cast(pa.string()))


def _column(table: Any, name: str, kind: str, fmt: Format) -> Any:
    import pyarrow.compute as pc

    column = table[name].combine_chunks()
    if kind == "JSON":
        return _json_ext(column)
    if kind == "TIMESTAMPTZ" and fmt is Format.JSONL:
        # `%S` carries the microseconds at this precision: 2026-01-05T10:00:00.000000Z
        return pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")
    return column


def _nested(
    conn: duckdb.DuckDBPyConnection, fields: dict[str, str], rows_sql: str, counts_sql: str, fmt: Format, params: Any
) -> Any:
    """A list<struct> column aligned to the sessions in id order, built from sorted flat rows.

    DuckDB's list() aggregate over two million events into a million groups takes ~20 s; fetching
    the rows sorted by session and cutting them at per-session counts takes about one.
    """
    import numpy as np
    import pyarrow as pa

    flat = conn.sql(rows_sql, params=params).to_arrow_table()
    counts = conn.sql(counts_sql, params=params).to_arrow_table().column(0).to_numpy()
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    children = [_column(flat, name, kind, fmt) for name, kind in fields.items()]
    struct = pa.StructArray.from_arrays(children, names=list(fields))
    if offsets[-1] < 2**31:
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), struct)
    return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), struct)


def _export_table(
    conn: duckdb.DuckDBPyConnection, fmt: Format, where: str, event_where: str, params: dict[str, Any]
) -> Any:
    """Every selected session as one record (events, scores, skills nested), then sessionless events."""
    import numpy as np
    import pyarrow as pa

    conn.execute(
        f"CREATE TEMP TABLE _sel AS SELECT {', '.join(f's.{c}' for c in SESSION_COLUMNS)} FROM sessions s"
        f" WHERE {where} ORDER BY s.id",
        params,
    )
    sessions = conn.sql("SELECT * FROM _sel ORDER BY id").to_arrow_table()
    n = sessions.num_rows
    ev_cols = ", ".join(f"e.{k}" for k in EVENT_FIELDS)
    sc_cols = ", ".join(f"x.{k}" for k in SCORE_FIELDS)
    columns: dict[str, Any] = {"kind": pa.array(np.full(n, "session"), pa.string())}
    for name, kind in SESSION_COLUMNS.items():
        columns[name] = _column(sessions, name, kind, fmt)
    columns["skills"] = _nested(
        conn,
        SKILL_FIELDS,
        "SELECT k.skill AS uri, k.level FROM _sel s JOIN masque_skills k USING (masque, version)"
        " ORDER BY s.id, k.skill",
        "SELECT count(k.skill) FROM _sel s LEFT JOIN masque_skills k USING (masque, version)"
        " GROUP BY s.id ORDER BY s.id",
        fmt,
        None,
    )
    columns["scores"] = _nested(
        conn,
        SCORE_FIELDS,
        f"SELECT {sc_cols} FROM scores x JOIN _sel s ON s.id = x.session_id ORDER BY x.session_id, x.created_at, x.id",
        "SELECT count(x.id) FROM _sel s LEFT JOIN scores x ON x.session_id = s.id GROUP BY s.id ORDER BY s.id",
        fmt,
        None,
    )
    columns["events"] = _nested(
        conn,
        EVENT_FIELDS,
        f"SELECT {ev_cols} FROM events e JOIN _sel s ON s.id = e.session_id ORDER BY e.session_id, e.ts, e.id",
        "SELECT count(e.id) FROM _sel s LEFT JOIN events e ON e.session_id = s.id GROUP BY s.id ORDER BY s.id",
        fmt,
        None,
    )
    records = pa.table(columns)
    # Events that belong to no session (refusals before a session existed) travel one per record.
    orphan_where = f"(e.session_id IS NULL OR e.session_id NOT IN (SELECT id FROM sessions)) AND {event_where}"
    orphans = conn.sql(
        f"SELECT {ev_cols} FROM events e WHERE {orphan_where} ORDER BY e.ts, e.id", params=params
    ).to_arrow_table()
    if orphans.num_rows:
        m = orphans.num_rows
        struct = pa.StructArray.from_arrays(
            [_column(orphans, k, v, fmt) for k, v in EVENT_FIELDS.items()], names=list(EVENT_FIELDS)
        )
        extra: dict[str, Any] = {"kind": pa.array(np.full(m, "event"), pa.string())}
        for name in SESSION_COLUMNS:
            extra[name] = pa.nulls(m, records.schema.field(name).type)
        for name in ("skills", "scores"):
            extra[name] = pa.array([[]] * m, records.schema.field(name).type)
        events_type = records.schema.field("events").type
        extra["events"] = pa.ListArray.from_arrays(pa.array(np.arange(m + 1), pa.int32()), struct).cast(events_type)
        records = pa.concat_tables([records, pa.table(extra, schema=records.schema)])
    return records


@contextlib.contextmanager
def selected_records(
    fmt: Format,
    filters: Filters | None = None,
    masque: str | None = None,
    selection: ActorSelection | None = None,
) -> Iterator[tuple[duckdb.DuckDBPyConnection, tuple[int, int, int]]]:
    """A read-only store connection with `_export` registered: the records the acting actor may export.

    Yields the connection and (sessions, events, scores) counts. Only what the acting actor sees (its
    own ring and below; an admin sees all): sessions worn by actors of those rings, and sessionless
    events whose actor is in one of them.
    """
    from masque import store
    from masque.trust import rings

    where, event_where = ["true"], ["true"]
    params: dict[str, Any] = {}
    if filters and filters.since:
        params["since"] = filters.since
        where.append("s.started_at >= $since")
        event_where.append("e.ts >= $since")
    if filters and filters.until:
        params["until"] = filters.until
        where.append("s.started_at < $until")
        event_where.append("e.ts < $until")
    if filters and filters.actor:
        params["actor"] = filters.actor
        where.append("s.actor = $actor")
        event_where.append("e.actor = $actor")
    if masque:
        params["masque"] = masque.casefold()
        where.append("s.masque = $masque")
        event_where.append("e.masque = $masque")
    with store.analytics() as conn:  # the DuckDB file, or an in-memory copy of a PostgreSQL store
        who = rings.resolve_acting(conn, selection or rings.selection_from_env()).actor
        if who.ring is not Ring.ADMIN:
            seen = ", ".join(f"'{r.value}'" for r in rings.visible_rings(who))
            where.append(f"s.actor_ring IN ({seen})")
            event_where.append(f"e.actor IN (SELECT name FROM actors WHERE ring IN ({seen}))")
        store.for_analytics(conn)
        records = _export_table(conn, fmt, " AND ".join(where), " AND ".join(event_where), params)
        conn.register("_export", records)
        counts = conn.execute(
            "SELECT count(*) FILTER (WHERE kind = 'session'), coalesce(sum(len(events)), 0),"
            " coalesce(sum(len(scores)), 0) FROM _export"
        ).fetchone()
        assert counts is not None
        yield conn, (int(counts[0]), int(counts[1]), int(counts[2]))


def export_sessions(
    path: Path,
    fmt: Format,
    filters: Filters | None = None,
    masque: str | None = None,
    selection: ActorSelection | None = None,
) -> ExportResult:
    """Write every session matching the filters (with events, scores and skills) to `path`.

    Only what the acting actor sees (its own ring and below; an admin sees all): sessions worn by
    actors of those rings, and sessionless events whose actor is in one of them.
    """
    path = path.expanduser()
    if path.is_dir():
        raise UsageError(
            f"{path} is a directory",
            hint="give a file name such as sessions.parquet, or --partition to write a partitioned tree there",
        )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    options = "FORMAT parquet, COMPRESSION zstd" if fmt is Format.PARQUET else "FORMAT json"
    with selected_records(fmt, filters, masque, selection) as (conn, counts):
        try:
            conn.execute(f"COPY _export TO '{sql_path_literal(tmp)}' ({options})")
            os.replace(tmp, path)
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror}") from None
        finally:
            tmp.unlink(missing_ok=True)
    return ExportResult(path, fmt, *counts)
