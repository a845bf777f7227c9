"""Bus event values and their rows: the only module that writes `mask_events` and `bus_subscriptions`.

The bus is append-only: there is an insert and there are selects, no update or delete. Event ids are
`bus_` + a ULID, made strictly increasing in commit order (see `next_id`), so a reader that remembers
the last id it saw (`read --since`, `watch`) never misses an event posted later.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from masque.ids import new_id

if TYPE_CHECKING:
    import duckdb

ID_PREFIX = "bus_"
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
EVENT_COLUMNS = "id, team_id, kind, topic, author_session, author_member, actor, reply_to, payload, ts"
HUMAN = "human"  # the member part of the topic of a post made by a person (no member)
MASQUE = "masque"  # the member part of the topic of an event Masque itself records (a conflict)


class Kind(str, Enum):
    PROPOSAL = "proposal"
    CRITIQUE = "critique"
    REVISION = "revision"
    APPROVAL = "approval"
    OUTPUT = "output"
    CONTEXT_DELTA = "context_delta"
    CONFLICT = "conflict"
    RESOLUTION = "resolution"

    @classmethod
    def parse(cls, text: str) -> Kind:
        from masque.errors import UsageError

        try:
            return cls(text.strip().lower().replace("-", "_"))
        except ValueError:
            raise UsageError(
                f"unknown bus event kind {text!r}", hint=f"use one of: {', '.join(k.value for k in cls)}"
            ) from None


@dataclass(frozen=True)
class BusEvent:
    """One event on a team's bus."""

    id: str
    team_id: str
    kind: Kind
    topic: str
    author_session: str | None
    author_member: str | None
    actor: str
    reply_to: str | None
    payload: dict[str, Any]
    ts: dt.datetime

    @property
    def verdict(self) -> str | None:
        """What a review says about its target: `approve`, `revise` (a critique requesting a revision) or None."""
        if self.kind is Kind.APPROVAL:
            return "approve"
        if self.kind is Kind.CRITIQUE and self.payload.get("verdict") == "revise":
            return "revise"
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "team": self.team_id,
            "kind": self.kind.value,
            "topic": self.topic,
            "author_session": self.author_session,
            "author_member": self.author_member,
            "actor": self.actor,
            "reply_to": self.reply_to,
            "payload": self.payload,
            "ts": self.ts.isoformat(),
        }


def _event(row: Sequence[Any]) -> BusEvent:
    payload = row[8]
    data = json.loads(payload) if isinstance(payload, str) else (payload or {})
    return BusEvent(row[0], row[1], Kind(row[2]), row[3], row[4], row[5], row[6], row[7], data, row[9])


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _decode(body: str) -> int:
    value = 0
    for ch in body:
        value = value * 32 + _ALPHABET.index(ch)
    return value


def next_id(conn: duckdb.DuckDBPyConnection) -> str:
    """A new event id greater than every stored one.

    Writers take turns at the store, so ids increase in commit order even when two posts from two
    processes fall in the same millisecond (a bare ULID's random tail would order those at random).
    """
    fresh = new_id(ID_PREFIX)
    row = conn.execute("SELECT max(id) FROM mask_events").fetchone()
    newest = row[0] if row else None
    if newest is None or fresh > newest:
        return fresh
    return ID_PREFIX + _encode(_decode(str(newest)[len(ID_PREFIX) :]) + 1)


def insert_event(conn: duckdb.DuckDBPyConnection, event: BusEvent) -> None:
    conn.execute(
        f"INSERT INTO mask_events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            event.id,
            event.team_id,
            event.kind.value,
            event.topic,
            event.author_session,
            event.author_member,
            event.actor,
            event.reply_to,
            json.dumps(event.payload, ensure_ascii=False),
            event.ts,
        ],
    )


def get_event(conn: duckdb.DuckDBPyConnection, event_id: str) -> BusEvent | None:
    row = conn.execute(f"SELECT {EVENT_COLUMNS} FROM mask_events WHERE id = ?", [event_id]).fetchone()
    return _event(row) if row else None


def team_events(
    conn: duckdb.DuckDBPyConnection,
    team_id: str,
    *,
    since: str | None = None,
    kinds: Sequence[str] = (),
) -> list[BusEvent]:
    """A team's events in posting order (after `since`, of `kinds` when given)."""
    sql = f"SELECT {EVENT_COLUMNS} FROM mask_events WHERE team_id = ?"
    params: list[Any] = [team_id]
    if since:
        sql += " AND id > ?"
        params.append(since)
    if kinds:
        sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
        params.extend(kinds)
    return [_event(row) for row in conn.execute(sql + " ORDER BY id", params).fetchall()]


def replies_to(conn: duckdb.DuckDBPyConnection, event_id: str, kinds: Sequence[str] = ()) -> list[BusEvent]:
    sql = f"SELECT {EVENT_COLUMNS} FROM mask_events WHERE reply_to = ?"
    params: list[Any] = [event_id]
    if kinds:
        sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
        params.extend(kinds)
    return [_event(row) for row in conn.execute(sql + " ORDER BY id", params).fetchall()]


# --- subscriptions ----------------------------------------------------------------------------------


def subscription_patterns(conn: duckdb.DuckDBPyConnection, team_id: str, member: str) -> list[str]:
    rows = conn.execute(
        "SELECT pattern FROM bus_subscriptions WHERE team_id = ? AND member = ? ORDER BY created_at, pattern",
        [team_id, member],
    ).fetchall()
    return [str(r[0]) for r in rows]


def all_subscriptions(conn: duckdb.DuckDBPyConnection, team_id: str) -> list[tuple[str, str, dt.datetime]]:
    rows = conn.execute(
        "SELECT member, pattern, created_at FROM bus_subscriptions WHERE team_id = ? ORDER BY member, created_at",
        [team_id],
    ).fetchall()
    return [(str(m), str(p), c) for m, p, c in rows]


def insert_subscription(
    conn: duckdb.DuckDBPyConnection, team_id: str, member: str, pattern: str, at: dt.datetime
) -> bool:
    """Record a subscription; False when the member already had it."""
    found = conn.execute(
        "SELECT 1 FROM bus_subscriptions WHERE team_id = ? AND member = ? AND pattern = ?",
        [team_id, member, pattern],
    ).fetchone()
    if found:
        return False
    conn.execute(
        "INSERT INTO bus_subscriptions (team_id, member, pattern, created_at) VALUES (?, ?, ?, ?)",
        [team_id, member, pattern, at],
    )
    return True
