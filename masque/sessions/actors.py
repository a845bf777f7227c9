"""Actor verbs that end sessions: moving an actor outward and disapproving it end its live sessions.

The ring rules live in `masque.trust.rings`; the session ends happen here, in the same transaction.
"""

from __future__ import annotations

from masque.errors import UsageError
from masque.sessions.end import end_actor_sessions
from masque.store import turns
from masque.trust import rings
from masque.trust.rings import Actor, Selection

__all__ = ["change_ring", "disapprove"]


def change_ring(name: str, step: int, selection: Selection | None = None) -> tuple[Actor, Actor]:
    """Promote (step=-1) or demote (step=+1) by exactly one ring. Returns (before, after).

    A demotion ends the actor's live sessions and revokes their credentials.
    """
    with turns.transaction() as conn:
        who = rings.resolve_acting(conn, selection or rings.selection_from_env()).actor
        before, after, must_end = rings.move_ring(conn, who, name, step)
        if must_end:
            end_actor_sessions(conn, name, reason="demoted", by=who.name)
            after = rings.get_actor(conn, name)
    return before, after


def disapprove(name: str, reason: str, selection: Selection | None = None) -> Actor:
    """Record an open disapproval: suspends qualification and ends the actor's live sessions."""
    if not reason or not reason.strip():
        raise UsageError("a disapproval needs a reason", hint='pass --reason "..."')
    with turns.transaction() as conn:
        who = rings.resolve_acting(conn, selection or rings.selection_from_env()).actor
        rings.record_disapproval(conn, who, name, reason)
        end_actor_sessions(conn, name, reason="disapproved", by=who.name)
        return rings.get_actor(conn, name)
