"""The compliance log (who read or wrote which shard, when, from which session) and memory history.

Neither ever holds memory text or query text: the log keeps ids and counts, the history keeps content
hashes, so forgetting a memory in LanceDB really removes its words. Writes go through DuckDB in the
caller's transaction; a read's log entry goes to the spool (masque.memory.spool), folded in before the
log is read. This module never imports lancedb.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from masque import store
from masque.durations import as_utc, utcnow
from masque.ids import new_id
from masque.memory import spool
from masque.memory.diff import MAX_LOGGED_IDS

if TYPE_CHECKING:
    import duckdb

    from masque.memory.policy import Access, Caller


class Event(str, Enum):
    """Kinds of change in memory_history."""

    ADDED = "added"
    IMPORTED = "imported"
    FORGOTTEN = "forgotten"
    EXPIRED = "expired"


@dataclass(frozen=True)
class LogEntry:
    """One row of the memory access log."""

    id: str
    ts: dt.datetime
    action: str
    shard: str
    reader_masque: str | None
    actor: str | None
    session_id: str | None
    access: str
    rows: int
    memory_ids: tuple[str, ...]
    detail: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": self.ts.isoformat(),
            "action": self.action,
            "shard": self.shard,
            "reader_masque": self.reader_masque,
            "actor": self.actor,
            "session_id": self.session_id,
            "access": self.access,
            "rows": self.rows,
            "memory_ids": list(self.memory_ids),
            "detail": dict(self.detail),
        }


@dataclass(frozen=True)
class HistoryEntry:
    """One row of a memory's history (added, imported, forgotten, ...)."""

    id: str
    memory_id: str
    masque: str
    event: str
    content_hash: str | None
    session_id: str | None
    actor: str | None
    ts: dt.datetime
    detail: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "memory_id": self.memory_id,
            "masque": self.masque,
            "event": self.event,
            "content_hash": self.content_hash,
            "session_id": self.session_id,
            "actor": self.actor,
            "ts": self.ts.isoformat(),
            "detail": dict(self.detail),
        }


def entry(
    caller: Caller,
    action: str,
    shard: str,
    access: Access,
    *,
    ids: Sequence[str] = (),
    rows: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> list[Any]:
    """One compliance record as `memory_log` values (spool.COLUMNS order): ids capped, the count exact."""
    return [
        new_id("mlg_"),
        utcnow(),
        action,
        shard,
        caller.masque,
        caller.actor,
        caller.session_id,
        access.value,
        len(ids) if rows is None else rows,
        json.dumps(list(ids[:MAX_LOGGED_IDS])),
        json.dumps(dict(detail or {}), sort_keys=True, default=str),
    ]


def log(
    conn: duckdb.DuckDBPyConnection,
    caller: Caller,
    action: str,
    shard: str,
    access: Access,
    *,
    ids: Sequence[str] = (),
    rows: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append one compliance record in the caller's transaction."""
    conn.execute(spool.INSERT_SQL, entry(caller, action, shard, access, ids=ids, rows=rows, detail=detail))


def spooled(
    caller: Caller,
    action: str,
    shard: str,
    access: Access,
    *,
    ids: Sequence[str] = (),
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append one compliance record durably without opening the store (see masque.memory.spool)."""
    spool.append(entry(caller, action, shard, access, ids=ids, detail=detail))


def record(
    conn: duckdb.DuckDBPyConnection,
    caller: Caller,
    masque: str,
    event: Event,
    items: Sequence[tuple[str, str | None]],
    *,
    detail: Mapping[str, Any] | None = None,
    session_ids: Sequence[str | None] | None = None,
) -> None:
    """Append history rows for (memory_id, content_hash) pairs in one bulk insert."""
    if not items:
        return
    n = len(items)
    payload = json.dumps(dict(detail or {}), sort_keys=True, default=str)
    columns: dict[str, list[Any]] = {
        "id": [new_id("mhi_") for _ in items],
        "memory_id": [m for m, _ in items],
        "masque": [masque] * n,
        "event": [event.value] * n,
        "content_hash": [h for _, h in items],
        "session_id": list(session_ids) if session_ids is not None else [caller.session_id] * n,
        "actor": [caller.actor] * n,
        "ts": [utcnow()] * n,
        "detail": [payload] * n,
    }
    names = ", ".join(columns)
    if not store.is_duckdb(conn):  # PostgreSQL: one pipelined statement for all rows
        marks = ", ".join("?::JSON" if name == "detail" else "?" for name in columns)
        conn.executemany(
            f"INSERT INTO memory_history ({names}) VALUES ({marks})", list(zip(*columns.values(), strict=True))
        )
        return
    import pyarrow as pa

    types = {"session_id": pa.string(), "ts": pa.timestamp("us", tz="UTC")}
    batch = pa.table({name: pa.array(values, types.get(name)) for name, values in columns.items()})
    # DuckDB inserts an Arrow batch in one scan, where executemany would run one INSERT per row.
    # No try/finally: after a failed INSERT the transaction is aborted and unregistering would raise
    # "transaction is aborted", hiding the real error. A leftover view is replaced by the next register.
    conn.register("_memory_history_batch", batch)
    conn.execute(
        f"INSERT INTO memory_history ({names}) SELECT * REPLACE (detail::JSON AS detail) FROM _memory_history_batch"
    )
    conn.unregister("_memory_history_batch")


def _loads(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(value) if isinstance(value, str) else value


def read_log(
    *,
    shard: str | None = None,
    session_id: str | None = None,
    action: str | None = None,
    limit: int = 100,
    shards: Sequence[str] | None = None,
    actors: Sequence[str] | None = None,
) -> list[LogEntry]:
    """Newest first; filters are optional. `shards` / `actors`: only entries of these (None: any)."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    for column, allowed in (("shard", shards), ("actor", actors)):
        if allowed is not None:
            where.append(f"list_contains(${column}s::VARCHAR[], {column})")
            params[f"{column}s"] = list(allowed)
    for column, value in (("shard", shard), ("session_id", session_id), ("action", action)):
        if value:
            where.append(f"{column} = ${column}")
            params[column] = value
    sql = "SELECT * FROM memory_log" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY id DESC LIMIT $limit"
    spool.fold()  # readers see every entry, spooled ones included
    with store.connect(read_only=True) as conn:
        found = store.rows(conn, sql, params)
    return [
        LogEntry(
            id=r["id"],
            ts=as_utc(r["ts"]) or utcnow(),
            action=r["action"],
            shard=r["shard"],
            reader_masque=r["reader_masque"],
            actor=r["actor"],
            session_id=r["session_id"],
            access=r["access"],
            rows=r["rows"],
            memory_ids=tuple(_loads(r["memory_ids"]) or ()),
            detail=_loads(r["detail"]) or {},
        )
        for r in found
    ]


def history(conn: duckdb.DuckDBPyConnection, memory_id: str) -> list[HistoryEntry]:
    """Every recorded change of one memory, oldest first."""
    found = store.rows(conn, "SELECT * FROM memory_history WHERE memory_id = ? ORDER BY id", [memory_id])
    return [
        HistoryEntry(
            id=r["id"],
            memory_id=r["memory_id"],
            masque=r["masque"],
            event=r["event"],
            content_hash=r["content_hash"],
            session_id=r["session_id"],
            actor=r["actor"],
            ts=as_utc(r["ts"]) or utcnow(),
            detail=_loads(r["detail"]) or {},
        )
        for r in found
    ]
