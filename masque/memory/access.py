"""Who calls a memory verb, and the ring rule every memory verb applies.

The caller is whoever `masque.trust.rings.resolve_acting` proves (the one identity check): an actor by its
key, a session by its `MASQUE_TOKEN`, else the founder. A bare `MASQUE_SESSION_ID` proves nothing:
naming a session the caller did not prove is refused, never taken on trust.

The ring rule: an actor touches a masque's shard only when it qualifies for that masque's ring
(`rings.check_qualified`, so a suspended actor touches none). A shard's ring is the most trusted
ring any valid file of that name on the search path declares (a lower-ring copy dropped on the path
cannot lower it); a shard whose masque file is gone is admins-only. Masques are public (`masque
list` shows every one), so a more trusted shard is refused (exit 3), like `assume` refuses its
masque; a name that is neither on the path nor has a shard is not found (exit 4), with a hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from masque import config
from masque.enums import Ring
from masque.errors import NotFound, Refused

if TYPE_CHECKING:
    import duckdb

    from masque.memory.policy import Caller
    from masque.model import Masque
    from masque.trust.rings import Selection


def caller(conn: duckdb.DuckDBPyConnection, selection: Selection | None = None) -> Caller:
    """The proven caller: a token-proven session (with its masque), else a key-proven actor or the founder."""
    from masque.memory.policy import Caller
    from masque.trust import rings

    sel = selection or rings.selection_from_env()
    acting = rings.resolve_acting(conn, sel)
    # Only a token proves a session; an exec child's parent link names the actor, not a masque to wear.
    session_id = acting.session_id if (acting.via is rings.ActingVia.SESSION and sel.token) else None
    claimed = config.session_id_from_env()
    # An actor proven by its key acts as itself, outside any session; otherwise a session id in the
    # environment must be the one the token proves.
    if claimed and claimed != session_id and acting.via is not rings.ActingVia.KEY:
        raise Refused(
            f"MASQUE_SESSION_ID names session {claimed} but {_proof(acting.via.value)}; "
            "a session id without its token proves nothing",
            reason="session_unproven",
            hint="set MASQUE_TOKEN from the same `masque assume`, or unset MASQUE_SESSION_ID",
        )
    if session_id is None:
        return Caller(actor=acting.actor.name, ring=acting.actor.ring.value, who=acting.actor)
    row = conn.execute(
        "SELECT masque, version, status, source_path, masque_ring FROM sessions WHERE id = ?", [session_id]
    ).fetchone()
    if row is None:
        raise NotFound(f"session {session_id} does not exist in {config.store_path()}")
    if row[2] != "active":
        raise Refused(
            f"session {session_id} is {row[2]}; its memory can no longer be used",
            reason="session_ended",
            hint="unset MASQUE_TOKEN and MASQUE_SESSION_ID, or assume the masque again for a new session",
        )
    return Caller(
        actor=acting.actor.name,
        ring=acting.actor.ring.value,
        session_id=session_id,
        masque=row[0],
        version=row[1],
        source_path=row[3],
        who=acting.actor,
        session_masque_ring=row[4],
    )


def _proof(via: str) -> str:
    return "MASQUE_TOKEN proves another session" if via == "session" else "no MASQUE_TOKEN proves it"


def masque_files() -> dict[str, list[Masque]]:
    """Every valid masque on the search path by name key (shadowed copies included)."""
    from masque.errors import MasqueError
    from masque.masques import registry

    found: dict[str, list[Masque]] = {}
    try:
        entries = registry.available()
    except MasqueError:
        return found
    for entry in entries:
        if entry.masque is not None:
            found.setdefault(registry.name_key(entry.masque.name), []).append(entry.masque)
    return found


def ring_of(key: str, files: Mapping[str, Sequence[Masque]], registered: Iterable[str], who: Caller) -> Ring:
    """The ring guarding `key`'s shard; NotFound (with did-you-mean) when no such masque or shard exists."""
    declared = [m.ring for m in files.get(key, ())]
    if who.masque == key and who.session_masque_ring:
        declared.append(Ring(who.session_masque_ring))
    if declared:
        return min(declared, key=lambda r: r.rank)
    if key in set(registered):
        return Ring.ADMIN  # a shard whose masque file is gone: only admins may still reach it
    raise unknown_masque(key, files)


def unknown_masque(key: str, files: Mapping[str, Sequence[Masque]]) -> NotFound:
    close = difflib.get_close_matches(key, sorted(files), n=3, cutoff=0.6)
    if close:
        hint = "did you mean " + " or ".join(f"`{c}`" for c in close) + "? (`masque list` shows all masques)"
    else:
        hint = "memory belongs to a masque on the search path; `masque list` shows them"
    return NotFound(f"no masque named {key!r}: it has no memory shard", hint=hint)


def qualifies(who: Caller, ring: Ring) -> bool:
    from masque.trust import rings

    if who.who is None:
        return who.ring is None or rings.qualifies(Ring(who.ring), ring)
    try:
        rings.check_qualified(who.who, ring, "memory")
    except Refused:
        return False
    return True


def check(who: Caller, key: str, ring: Ring, action: str) -> None:
    """Refuse (exit 3) unless the caller's actor qualifies for the ring of `key`'s shard."""
    from masque.trust import rings

    if who.who is not None:
        rings.check_qualified(who.who, ring, f"memory {action} on the shard of masque {key!r} ({ring.value} ring)")


def visible_actors(conn: duckdb.DuckDBPyConnection, who: Caller) -> set[str] | None:
    """Names of the actors `who` may see (its own ring and below); None: every one (an admin)."""
    from masque.trust import rings

    viewer = who.who
    if viewer is None or viewer.ring is Ring.ADMIN:
        return None
    return {name for name, ring in conn.execute("SELECT name, ring FROM actors").fetchall() if rings.sees(viewer, ring)}
