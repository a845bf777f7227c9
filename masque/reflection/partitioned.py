"""Reflection across machines: Hive-partitioned Parquet out (`sessions export --partition`), stats over it in.

Each machine exports into one shared directory tree, `DIR/machine=<name>/date=<YYYY-MM-DD>/*.parquet`.
An export replaces only its own machine's subtree, atomically (written beside it, then renamed), so a
re-export never duplicates a session and a crash leaves the old subtree whole. `masque stats --from
'DIR/**/*.parquet'` then reads every machine's files with DuckDB and answers with the same report code
as the store, over views shaped like the store's tables.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from masque.errors import NotFound, UsageError
from masque.reflection.transfer import EVENT_FIELDS, Format, record_columns, sql_path_literal

if TYPE_CHECKING:
    import duckdb

    from masque.reflection.levels import Filters, Report, Selection
    from masque.trust.rings import Selection as ActorSelection

_MACHINE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class PartitionedExport:
    directory: Path  # DIR/machine=<name>
    machine: str
    sessions: int
    events: int
    scores: int
    files: int


def default_machine() -> str:
    """This machine's name as a safe path segment (the short host name)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname().split(".")[0]).strip("-.")
    return name or "localhost"


def check_machine(name: str) -> str:
    if not _MACHINE_RE.match(name):
        raise UsageError(
            f"--machine {name!r} cannot name a partition directory",
            hint="use letters, digits, '.', '_' or '-' (up to 63), starting with a letter or digit",
        )
    return name


def export_partitioned(
    directory: Path,
    *,
    machine: str | None = None,
    filters: Filters | None = None,
    masque: str | None = None,
    selection: ActorSelection | None = None,
) -> PartitionedExport:
    """Write what `sessions export` would, as `directory/machine=M/date=D/*.parquet`, replacing M's subtree."""
    from masque.reflection.export import selected_records

    name = check_machine(machine or default_machine())
    directory = directory.expanduser()
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is a file", hint="--partition writes a directory tree: give a directory")
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"machine={name}"
    staging = directory / f".machine={name}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with selected_records(Format.PARQUET, filters, masque, selection) as (conn, counts):
            conn.execute(
                "CREATE TEMP VIEW _partitioned AS SELECT *,"
                " strftime(coalesce(started_at, events[1].ts) AT TIME ZONE 'UTC', '%Y-%m-%d') AS date"
                " FROM _export"
            )
            if counts[0] or counts[1]:
                conn.execute(
                    f"COPY _partitioned TO '{sql_path_literal(staging)}'"
                    " (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (date), FILENAME_PATTERN 'sessions_{i}')"
                )
            else:
                staging.mkdir()
        files = sum(1 for _ in staging.rglob("*.parquet"))
        # Swap in the new subtree: the old one is moved aside first so a crash leaves one whole copy.
        old = directory / f".machine={name}.{os.getpid()}.old"
        if final.exists():
            os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        raise UsageError(f"cannot write {final}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PartitionedExport(final, name, int(counts[0]), int(counts[1]), int(counts[2]), files)


def open_files(conn: duckdb.DuckDBPyConnection, patterns: list[str]) -> None:
    """Create views named like the store's tables (what reports read) over exported Parquet files.

    A session exported by two machines (or twice) counts once: the newest copy (by ended_at) wins.
    """
    paths = []
    for pattern in patterns:
        # An export in progress (or one a crash interrupted) writes beside the tree, under `.machine=...`.
        found = [
            str(r[0])
            for r in conn.execute("SELECT file FROM glob(?) ORDER BY file", [pattern]).fetchall()
            if not any(part.startswith(".machine=") for part in Path(str(r[0])).parts)
        ]
        if not found:
            raise NotFound(f"no file matches {pattern!r}", hint="quote the pattern: --from 'DIR/**/*.parquet'")
        paths += [f"'{sql_path_literal(Path(p))}'" for p in found]
    src = f"read_parquet([{', '.join(paths)}], hive_partitioning = true, union_by_name = true)"
    cols = record_columns(conn, src, ", ".join(patterns), "export them with `masque sessions export --partition DIR`")
    conn.execute(f"CREATE TEMP VIEW _files AS SELECT kind, {', '.join(cols)} FROM {src}")
    # Views, not tables: each report query reads only the columns it needs, in parallel, and copying a
    # million rows into temporary tables costs more than the whole report. A session exported by two
    # machines (or twice by hand) counts once: the copy with the latest ended_at; the window that
    # picks it runs only when the files do hold a duplicate.
    dup = conn.execute("SELECT count(*) - count(DISTINCT id) FROM _files WHERE kind = 'session'").fetchone()
    once = (
        " QUALIFY row_number() OVER (PARTITION BY id ORDER BY ended_at DESC NULLS LAST) = 1" if dup and dup[0] else ""
    )
    conn.execute(f"CREATE TEMP VIEW _sessions AS SELECT * EXCLUDE (kind) FROM _files WHERE kind = 'session'{once}")
    conn.execute("CREATE TEMP VIEW sessions AS SELECT * EXCLUDE (scores, skills, events) FROM _sessions")
    # The session branch exposes the record's id as session_id (equal to its events' own), so a filter
    # on session_id (one session's events; `IS NULL` for refusals) is pushed below the unnest.
    ev_cols = ", ".join(f"ev.{k} AS {k}" for k in EVENT_FIELDS if k != "session_id")
    conn.execute(
        f"CREATE TEMP VIEW events AS SELECT {ev_cols}, session_id FROM"
        " (SELECT id AS session_id, unnest(events) AS ev FROM _sessions"
        # Sessionless events (refusals) are few; two machines may both have exported one.
        "  UNION ALL SELECT NULL AS session_id, ev FROM (SELECT any_value(ev) AS ev FROM"
        "   (SELECT unnest(events) AS ev FROM _files WHERE kind = 'event') GROUP BY ev.id))"
    )
    conn.execute(
        "CREATE TEMP VIEW scores AS SELECT sc.id AS id, session_id, sc.symbol AS symbol, sc.notes AS notes,"
        " sc.scored_by AS scored_by, sc.created_at AS created_at"
        " FROM (SELECT id AS session_id, unnest(scores) AS sc FROM _sessions)"
    )
    # Reports read only the current (newest, exported last) score of each session, which each session
    # record carries beside its own attributes: no unnest and no join.
    conn.execute(
        "CREATE TEMP VIEW score_facts AS SELECT sc.id AS score_id, session_id, sc.symbol AS symbol,"
        " sc.created_at AS created_at, true AS is_current, masque, version, masque_ring, actor, actor_ring,"
        " started_at FROM (SELECT id AS session_id, masque, version, masque_ring, actor, actor_ring, started_at,"
        " scores[len(scores)] AS sc FROM _sessions WHERE len(scores) > 0)"
    )
    conn.execute(
        "CREATE TEMP VIEW masque_skills AS SELECT DISTINCT masque, version, sk.uri AS skill, sk.level AS level"
        " FROM (SELECT masque, version, unnest(skills) AS sk FROM _sessions)"
    )
    # Actors' rings as their sessions recorded them (the files carry no actor table).
    conn.execute(
        "CREATE TEMP VIEW actors AS SELECT actor AS name, any_value(actor_ring) AS ring FROM sessions GROUP BY actor"
    )


def report_from_files(
    patterns: list[str], selection: Selection, filters: Filters | None = None, *, top: int = 5
) -> Report:
    """The reflection report over exported files instead of the store (what their exporters could see)."""
    import duckdb

    from masque.reflection.levels import Filters as _Filters
    from masque.reflection.levels import build_report

    conn = duckdb.connect()
    try:
        conn.execute("SET enable_progress_bar = false")
        open_files(conn, patterns)
        return build_report(conn, selection, filters or _Filters(), top=top)
    finally:
        conn.close()


def describe(result: PartitionedExport) -> dict[str, Any]:
    return {
        "path": str(result.directory),
        "machine": result.machine,
        "sessions": result.sessions,
        "events": result.events,
        "scores": result.scores,
        "files": result.files,
    }
