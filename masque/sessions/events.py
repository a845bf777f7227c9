"""Append-only session events: the rows `assume`, `release` and `revoke` write next to their sessions."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from masque.durations import utcnow
from masque.ids import new_id

if TYPE_CHECKING:
    import duckdb

    from masque.sessions.model import Session


def record_event(
    conn: duckdb.DuckDBPyConnection,
    type_: str,
    *,
    session_id: str | None,
    masque: str | None,
    version: str | None,
    actor: str | None,
    originator: str | None,
    payload: dict[str, Any],
) -> None:
    conn.execute(
        "INSERT INTO events (id, ts, type, session_id, masque, version, actor, originator, payload)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            new_id("evt_"),
            utcnow(),
            type_,
            session_id,
            masque,
            version,
            actor,
            originator,
            json.dumps(payload, default=str),
        ],
    )


def record_session_event(conn: duckdb.DuckDBPyConnection, type_: str, s: Session, payload: dict[str, Any]) -> None:
    record_session_events(conn, [(type_, s, payload)])


def record_session_events(conn: duckdb.DuckDBPyConnection, items: list[tuple[str, Session, dict[str, Any]]]) -> None:
    """Append several events in one statement (each statement costs milliseconds under the lock)."""
    if not items:
        return
    now = utcnow()
    values = ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?)" for _ in items)
    params: list[Any] = []
    # Ids made in the same millisecond order randomly; sorted, they keep the order of `items`.
    ids = sorted(new_id("evt_") for _ in items)
    for event_id, (type_, x, payload) in zip(ids, items, strict=True):
        params += [
            event_id,
            now,
            type_,
            x.session_id,
            x.masque,
            x.version,
            x.actor,
            x.originator,
            json.dumps(payload, default=str),
        ]
    conn.execute(
        f"INSERT INTO events (id, ts, type, session_id, masque, version, actor, originator, payload) VALUES {values}",
        params,
    )
