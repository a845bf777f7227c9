"""What a session changed in memory: the diff `masque release` archives with the session.

Pure DuckDB and apart from `masque.memory.audit`, so releasing a session loads no more than this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from masque import store

if TYPE_CHECKING:
    import duckdb

MAX_LOGGED_IDS = 1000


def session_diff(session_id: str, conn: duckdb.DuckDBPyConnection | None = None) -> dict[str, Any]:
    """The shard changes a session made: what `masque release` stores in sessions.metadata.

    Returns {"session_id", "added": n, "forgotten": n, "added_ids": [...], "forgotten_ids": [...],
    "shards": {masque: {"added": n, "forgotten": n}}}; ids are capped at 1000 each. Pure DuckDB:
    pass the caller's open connection when inside a transaction (a second connection to the same
    file from one process must not differ in read-only mode).
    """
    if conn is None:
        with store.connect(read_only=True) as own:
            return session_diff(session_id, own)
    found = conn.execute(
        "SELECT masque, event, memory_id FROM memory_history WHERE session_id = ? "
        "AND event IN ('added', 'imported', 'forgotten') ORDER BY id",
        [session_id],
    ).fetchall()
    added = [m for _, e, m in found if e in ("added", "imported")]
    forgotten = [m for _, e, m in found if e == "forgotten"]
    shards: dict[str, dict[str, int]] = {}
    for masque, event, _ in found:
        slot = shards.setdefault(masque, {"added": 0, "forgotten": 0})
        slot["forgotten" if event == "forgotten" else "added"] += 1
    return {
        "session_id": session_id,
        "added": len(added),
        "forgotten": len(forgotten),
        "added_ids": added[:MAX_LOGGED_IDS],
        "forgotten_ids": forgotten[:MAX_LOGGED_IDS],
        "shards": shards,
    }
