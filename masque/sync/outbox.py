"""The sync outbox, derived rather than kept: every local record a remote has not confirmed.

Observations, feedback, sessions and scores are append-only sources with time-sortable ids, so the
outbox needs no hook in their writers (which run offline exactly as before): it is those rows minus
the ones in `sync_confirmed` for the remote, read at push time. A confirmed set rather than a single
"last id" watermark, because a high-water id would lose rows: ids made in the same millisecond order
randomly, and a session becomes pushable when it *ends*, long after its id was made. The anti-join is
one indexed DuckDB query; `sync_confirmed` grows by one small row per pushed record.

What is pushed:

- observations, except kind `feedback` (the server writes those itself when it applies the feedback);
- feedback, with the suggestion it judges (the server has no copy of it);
- sessions that have ended (a live one waits), never one that was itself imported or synced here;
- scores of those sessions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from masque.durations import as_utc

if TYPE_CHECKING:
    import duckdb

KINDS = ("observation", "feedback", "session", "score")
LIVE = ("active", "revoking")


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def batch_id(records: Sequence[dict[str, Any]]) -> str:
    """A batch's id is its content's hash: the same records re-sent after a lost reply are the same batch."""
    return "bat_" + hashlib.sha256(canonical(list(records)).encode()).hexdigest()[:32]


def _iso(value: Any) -> str | None:
    when = as_utc(value)
    return when.isoformat() if when else None


def _unconfirmed(kind: str, alias: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM sync_confirmed c WHERE c.remote = $remote AND c.kind = '{kind}'"
        f" AND c.record_id = {alias}.id)"
    )


def _pushable_session() -> str:
    return (
        f"s.status NOT IN {LIVE!r} AND (s.metadata IS NULL OR (json_extract(s.metadata, '$.imported') IS NULL"
        " AND json_extract(s.metadata, '$.synced') IS NULL))"
    )


def counts(conn: duckdb.DuckDBPyConnection, remote: str) -> dict[str, int]:
    """How many records of each kind wait for `remote`."""
    out: dict[str, int] = {}
    for kind, sql in _queries(select="count(*)").items():
        row = conn.execute(sql, {"remote": remote}).fetchone()
        out[kind] = int(row[0]) if row else 0
    return out


def pending(conn: duckdb.DuckDBPyConnection, remote: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The outbox for `remote`, oldest first within each kind, sessions before their scores."""
    records: list[dict[str, Any]] = []
    for kind, sql in _queries(select="*").items():
        left = None if limit is None else limit - len(records)
        if left is not None and left <= 0:
            break
        cur = conn.execute(
            sql + " ORDER BY id" + (f" LIMIT {int(left)}" if left is not None else ""), {"remote": remote}
        )
        names = [d[0] for d in cur.description]
        for row in cur.fetchall():
            records.append(_record(kind, dict(zip(names, row, strict=True))))
    return records


def _queries(*, select: str) -> dict[str, str]:
    sessions_ok = f"SELECT s.id FROM sessions s WHERE {_pushable_session()}"
    inner = {
        "observation": "SELECT o.id, o.masque, o.kind AS obs_kind, o.actor_subject, o.data, o.recorded_by, o.ts"
        f" FROM observations o WHERE o.kind <> 'feedback' AND {_unconfirmed('observation', 'o')}",
        "feedback": "SELECT f.id, f.score, f.notes, f.actor, f.ts, s.id AS sug_id, s.mapper_id, s.mapper_version,"
        " s.rule_id, s.type, s.masque, s.text, s.weight, s.ts AS sug_ts"
        f" FROM feedback f JOIN suggestions s ON s.id = f.suggestion_id WHERE {_unconfirmed('feedback', 'f')}",
        "session": "SELECT s.id, s.masque, s.version, s.content_hash, s.masque_ring, s.actor, s.actor_ring, s.intent,"
        " s.role, s.status, s.started_at, s.ended_at, s.end_reason, s.exit_code"
        f" FROM sessions s WHERE {_pushable_session()} AND {_unconfirmed('session', 's')}",
        "score": "SELECT r.id, r.session_id, r.symbol, r.notes, r.scored_by, r.created_at"
        f" FROM scores r WHERE r.session_id IN ({sessions_ok}) AND {_unconfirmed('score', 'r')}",
    }
    return {kind: f"SELECT {select} FROM ({sql})" for kind, sql in inner.items()}


def _record(kind: str, r: dict[str, Any]) -> dict[str, Any]:
    if kind == "observation":
        data = json.loads(r["data"]) if isinstance(r["data"], str) else r["data"]
        return {
            "kind": kind,
            "id": r["id"],
            "masque": r["masque"],
            "obs_kind": r["obs_kind"],
            "data": data,
            "actor_subject": r["actor_subject"],
            "recorded_by": r["recorded_by"],
            "ts": _iso(r["ts"]),
        }
    if kind == "feedback":
        return {
            "kind": kind,
            "id": r["id"],
            "score": float(r["score"]),
            "notes": r["notes"],
            "actor": r["actor"],
            "ts": _iso(r["ts"]),
            "suggestion": {
                "id": r["sug_id"],
                "mapper_id": r["mapper_id"],
                "mapper_version": int(r["mapper_version"]),
                "rule_id": r["rule_id"],
                "type": r["type"],
                "masque": r["masque"],
                "text": r["text"],
                "weight": float(r["weight"]),
                "ts": _iso(r["sug_ts"]),
            },
        }
    if kind == "session":
        return {
            "kind": kind,
            **{k: r[k] for k in ("id", "masque", "version", "content_hash", "masque_ring", "actor", "actor_ring")},
            **{k: r[k] for k in ("intent", "role", "status", "end_reason", "exit_code")},
            "started_at": _iso(r["started_at"]),
            "ended_at": _iso(r["ended_at"]),
        }
    return {
        "kind": kind,
        **{k: r[k] for k in ("id", "session_id", "symbol", "notes", "scored_by")},
        "created_at": _iso(r["created_at"]),
    }
