"""Session events: the rows `assume`, `release` and `revoke` write next to their sessions.

Written through the one event writer, `masque.store.events`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from masque.store.events import Event, append, record_event

if TYPE_CHECKING:
    import duckdb

    from masque.sessions.model import Session

__all__ = ["record_event", "record_session_event", "record_session_events"]


def record_session_event(conn: duckdb.DuckDBPyConnection, type_: str, s: Session, payload: dict[str, Any]) -> None:
    record_session_events(conn, [(type_, s, payload)])


def record_session_events(conn: duckdb.DuckDBPyConnection, items: list[tuple[str, Session, dict[str, Any]]]) -> None:
    """Append several events about sessions in one statement."""
    append(conn, [Event(t, x.session_id, x.masque, x.version, x.actor, x.originator, p) for t, x, p in items])
