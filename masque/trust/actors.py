"""Actors and their rings as stored: reading an actor, who sees whom, and whether one qualifies now.

The lowest module of `masque.trust`: rings (who is acting, ring moves) and credentials (token
verification asks `check_qualified` again) both build on it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from masque.durations import as_utc
from masque.enums import Ring
from masque.errors import NotFound, Refused

if TYPE_CHECKING:
    import duckdb

RING_LIST_SQL = "list_value('admin', 'player', 'guest', 'outsider')"  # portable: DuckDB and the PostgreSQL store
ACTOR_SQL = f"""
SELECT a.name, a.ring, a.is_founder, a.created_by, a.created_at,
  (SELECT d.reason || ' (by ' || d.by_actor || ')'
     FROM disapprovals d JOIN actors b ON b.name = d.by_actor
    WHERE d.actor = a.name AND d.lifted_at IS NULL
      AND (b.ring = 'admin'
           OR list_position({RING_LIST_SQL}, b.ring) < list_position({RING_LIST_SQL}, a.ring))
    ORDER BY d.created_at DESC LIMIT 1) AS disapproval
FROM actors a
"""


@dataclass(frozen=True)
class Actor:
    """A named actor, its trust ring and who created it."""

    name: str
    ring: Ring
    is_founder: bool = False
    created_by: str | None = None
    created_at: dt.datetime | None = None
    disapproval: str | None = None  # open disapproval from a more trusted ring: "reason (by NAME)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ring": self.ring.value,
            "is_founder": self.is_founder,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "disapproved": self.disapproval is not None,
            "disapproval": self.disapproval,
        }


def qualifies(actor_ring: Ring, masque_ring: Ring) -> bool:
    """Admin: any masque; player: player and below; guest: guest and outsider; outsider: outsider."""
    return actor_ring.rank <= masque_ring.rank


def visible_rings(viewer: Actor) -> tuple[Ring, ...]:
    """The rings whose actors (and their sessions) `viewer` may see: its own and the less trusted ones."""
    return tuple(r for r in Ring if r.rank >= viewer.ring.rank)


def sees(viewer: Actor, ring: str | Ring | None) -> bool:
    """May `viewer` see an actor, or a session worn by one, of `ring`? An unrecorded ring: admins only."""
    if ring is None:
        return viewer.ring is Ring.ADMIN
    return Ring(ring) in visible_rings(viewer)


def may_act_on(acting: Actor, target: Actor, new_ring: Ring | None = None) -> bool:
    """Only a more trusted ring moves or judges an actor; admins (the centre) also govern admins."""
    if acting.name == target.name or target.is_founder:
        return False
    if acting.ring is Ring.ADMIN:
        return True
    rings = [target.ring] + ([new_ring] if new_ring else [])
    return all(acting.ring.outranks(r) for r in rings)


def actor_from_row(row: tuple[Any, ...]) -> Actor:
    return Actor(row[0], Ring(row[1]), bool(row[2]), row[3], as_utc(row[4]), row[5])


def find_actor(conn: duckdb.DuckDBPyConnection, name: str) -> Actor | None:
    # Two simple lookups: DuckDB plans the correlated form of ACTOR_SQL ~5x slower, and this runs
    # on every assume and token verification.
    row = conn.execute(
        "SELECT name, ring, is_founder, created_by, created_at FROM actors WHERE name = ?", [name]
    ).fetchone()
    if row is None:
        return None
    ring = Ring(row[1])
    found = conn.execute(
        "SELECT d.reason || ' (by ' || d.by_actor || ')' FROM disapprovals d JOIN actors b"
        " ON b.name = d.by_actor WHERE d.actor = ? AND d.lifted_at IS NULL"
        f" AND (b.ring = 'admin' OR list_position({RING_LIST_SQL}, b.ring) < ?)"
        " ORDER BY d.created_at DESC LIMIT 1",
        [name, ring.rank + 1],
    ).fetchone()
    return actor_from_row((*row, found[0] if found else None))


def get_actor(conn: duckdb.DuckDBPyConnection, name: str) -> Actor:
    actor = find_actor(conn, name)
    if actor is None:
        raise NotFound(f"no actor named {name!r}", hint="`masque actor list` shows the actors you can see")
    return actor


def check_qualified(actor: Actor, masque_ring: Ring, what: str) -> None:
    """Raise Refused(reason="ring_refused") unless `actor` may wear a masque of `masque_ring` now."""
    if actor.disapproval is not None:
        raise Refused(
            f"actor {actor.name!r} is suspended by an open disapproval: {actor.disapproval}; {what} refused",
            reason="ring_refused",
            hint="a more trusted actor can lift it with `masque actor approve`",
        )
    if not qualifies(actor.ring, masque_ring):
        raise Refused(
            f"actor {actor.name!r} is in ring {actor.ring.value}; {what} requires ring "
            f"{masque_ring.value} or a more trusted one",
            reason="ring_refused",
            hint="use a masque of your ring, or earn a promotion (`masque actor promote`)",
        )
