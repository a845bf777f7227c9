"""The one writer of the append-only `events` log: every new event row goes through `append`.

One column list and one clock (`masque.durations.utcnow`), whoever writes: sessions, credentials,
rings, scores, rollout stages, trusted definitions, routing fallbacks.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from masque.durations import utcnow
from masque.ids import new_id

if TYPE_CHECKING:
    import duckdb

_COLUMNS = "id, ts, type, session_id, masque, version, actor, originator, payload"
_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"


@dataclass(frozen=True, slots=True)
class Event:
    """One event to append; the writer gives it an id and a timestamp."""

    type: str
    session_id: str | None = None
    masque: str | None = None
    version: str | None = None
    actor: str | None = None
    originator: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


def append(conn: duckdb.DuckDBPyConnection, events: Sequence[Event], *, ts: dt.datetime | None = None) -> list[str]:
    """Append `events` in one statement (each statement costs milliseconds under the lock); returns their ids.

    All share one timestamp (`ts`, else now); ids made in the same millisecond order randomly, so they are
    sorted to keep the order of `events`.
    """
    if not events:
        return []
    now = ts or utcnow()
    ids = sorted(new_id("evt_") for _ in events)
    params: list[Any] = []
    for event_id, e in zip(ids, events, strict=True):
        payload = json.dumps(dict(e.payload), default=str)
        params += [event_id, now, e.type, e.session_id, e.masque, e.version, e.actor, e.originator, payload]
    conn.execute(f"INSERT INTO events ({_COLUMNS}) VALUES {', '.join(_ROW for _ in events)}", params)
    return ids


def record_event(
    conn: duckdb.DuckDBPyConnection,
    type_: str,
    *,
    session_id: str | None = None,
    masque: str | None = None,
    version: str | None = None,
    actor: str | None = None,
    originator: str | None = None,
    payload: Mapping[str, Any] | None = None,
    ts: dt.datetime | None = None,
) -> str:
    """Append one event; returns its id."""
    event = Event(type_, session_id, masque, version, actor, originator, payload or {})
    return append(conn, [event], ts=ts)[0]


def record_for_session(
    conn: duckdb.DuckDBPyConnection,
    type_: str,
    session_id: str | None,
    payload: Mapping[str, Any],
    *,
    ts: dt.datetime | None = None,
) -> str | None:
    """Append an event about a stored session, carrying its masque, version, actor and originator.

    Returns the event id, or None (nothing written) when there is no such session row.
    """
    if session_id is None:
        return None
    row = conn.execute("SELECT masque, version, actor, originator FROM sessions WHERE id = ?", [session_id]).fetchone()
    if row is None:
        return None
    masque, version, actor, originator = row
    return record_event(
        conn,
        type_,
        session_id=session_id,
        masque=masque,
        version=version,
        actor=actor,
        originator=originator,
        payload=payload,
        ts=ts,
    )
