"""Credential verbs by accessor, for the acting actor: look one up, revoke one.

Above both `rings` (who is acting) and `credentials` (the broker), so neither imports the other's verbs.
"""

from __future__ import annotations

from typing import Any

from masque.durations import utcnow
from masque.enums import Ring
from masque.errors import NotFound, Refused
from masque.store import turns
from masque.store.events import record_for_session
from masque.trust import rings
from masque.trust.credentials import LOOKUP_SQL, TokenStatus, judge

__all__ = ["lookup", "revoke_accessor", "revoke_minted"]


def lookup(accessor: str, selection: Any = None) -> TokenStatus:
    """Judge a credential by accessor, for the acting actor: one of a ring it cannot see is not found."""
    with turns.connect() as conn:
        who = rings.resolve_acting(conn, selection or rings.selection_from_env()).actor
        row = conn.execute(LOOKUP_SQL + " WHERE c.accessor = ?", [accessor]).fetchone()
        ring = conn.execute("SELECT actor_ring FROM sessions WHERE id = ?", [row[1]]).fetchone() if row else None
        if row is None or ring is None or not rings.sees(who, ring[0]):
            raise NotFound(f"no credential with accessor {accessor}", hint="`masque sessions --json` lists accessors")
        return judge(conn, row)


def revoke_accessor(accessor: str, selection: Any = None) -> TokenStatus:
    """Revoke one credential by accessor (its actor, a more trusted ring, or an admin may)."""
    with turns.transaction() as conn:
        row = conn.execute(LOOKUP_SQL + " WHERE c.accessor = ?", [accessor]).fetchone()
        if row is None:
            raise NotFound(f"no credential with accessor {accessor}", hint="`masque sessions --json` lists accessors")
        who = rings.resolve_acting(conn, selection or rings.selection_from_env()).actor
        owner = rings.find_actor(conn, row[3])
        if not (who.name == row[3] or who.ring is Ring.ADMIN or (owner is not None and who.ring.outranks(owner.ring))):
            if owner is None or not rings.sees(who, owner.ring):  # a more trusted ring's credential: unknown
                raise NotFound(
                    f"no credential with accessor {accessor}", hint="`masque sessions --json` lists accessors"
                )
            raise Refused(
                f"actor {who.name!r} (ring {who.ring.value}) cannot revoke {accessor} of actor {row[3]!r}",
                reason="ring_refused",
                hint="a credential is revoked by its actor, a more trusted ring, or an admin",
            )
        revoke_minted(conn, accessor, reason="revoked", by=who.name)
        after = conn.execute(LOOKUP_SQL + " WHERE c.accessor = ?", [accessor]).fetchone()
        return judge(conn, after or row)


def revoke_minted(conn: Any, accessor: str, *, reason: str, by: str | None) -> bool:
    """Revoke one live credential on the caller's connection, with its event (the caller has checked
    who may). Returns False when it was already revoked or does not exist."""
    found = conn.execute(
        "UPDATE credentials SET revoked_at = ?, revoke_reason = ? WHERE accessor = ? AND revoked_at IS NULL"
        " RETURNING session_id",
        [utcnow(), reason, accessor],
    ).fetchone()
    if found is None:
        return False
    record_for_session(conn, "credential_revoked", found[0], {"accessor": accessor, "reason": reason, "by": by})
    return True
