"""Who calls a feedback verb, and the ring rules they apply.

The caller is whoever `rings.resolve_acting` proves (the one identity check): an actor by its key, a
session by its token, else the founder. Rules:

- observing a masque, listing or verifying its observations, mapping it and reading its profile: the
  caller must qualify for the masque's ring now (`rings.check_qualified`, so a suspended actor is
  refused too). A masque's ring is the most trusted ring any file of that name on the search path
  declares (a lower-ring copy cannot lower it); a masque whose file is gone but has observations is
  admins-only.
- `mapper put`: players and admins only. A mapper steers what every masque it maps is told, so it is
  governed like a masque of the player ring.
- feedback: only the actor a suggestion was made for, recorded with it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from masque.enums import Ring
from masque.errors import NotFound

if TYPE_CHECKING:
    import duckdb

    from masque.model import Masque
    from masque.trust.actors import Actor
    from masque.trust.rings import Selection

MAPPER_PUT_RING = Ring.PLAYER


@dataclass(frozen=True)
class Caller:
    actor: Actor
    session_id: str | None = None  # only a session its token proved


@dataclass(frozen=True)
class MasqueInfo:
    """A masque found on the search path (before taking a store turn): its newest file and its ring."""

    key: str
    masque: Masque | None  # None when no file of that name is on the path any more
    ring: Ring
    known: tuple[str, ...] = ()  # every name on the path, for did-you-mean


def caller(conn: duckdb.DuckDBPyConnection, selection: Selection | None) -> Caller:
    from masque.trust import rings

    sel = selection or rings.selection_from_env()
    acting = rings.resolve_acting(conn, sel)
    session_id = acting.session_id if (acting.via is rings.ActingVia.SESSION and sel.token) else None
    return Caller(acting.actor, session_id)


def find_masque(name: str) -> MasqueInfo:
    """The masque named `name` (a ref such as codesmith or codesmith@1.0.0): newest file, strictest ring.

    Reads the search path only; call it before taking a store turn.
    """
    from masque.errors import MasqueError
    from masque.masques import registry

    wanted = registry.name_key(name.split("@", 1)[0].rsplit("/", 1)[-1])
    try:
        entries = [e for e in registry.available() if e.masque is not None]
    except MasqueError:
        entries = []
    mine = [e.masque for e in entries if e.masque is not None and registry.name_key(e.masque.name) == wanted]
    known = tuple(sorted({registry.name_key(e.masque.name) for e in entries if e.masque is not None}))
    if not mine:
        return MasqueInfo(wanted, None, Ring.ADMIN, known)
    # A ref with a version names that file; a bare name the newest (as `assume` would pick).
    chosen = registry.resolve(name if "@" in name else wanted).masque
    ring = min((m.ring for m in mine), key=lambda r: r.rank)
    return MasqueInfo(wanted, chosen, ring, known)


def require_known(conn: duckdb.DuckDBPyConnection, info: MasqueInfo) -> None:
    """NotFound (with did-you-mean) unless the masque is on the path or has observations in the store."""
    if info.masque is not None:
        return
    if conn.execute("SELECT 1 FROM observations WHERE masque = ? LIMIT 1", [info.key]).fetchone():
        return
    close = difflib.get_close_matches(info.key, info.known, n=3, cutoff=0.6)
    hint = (
        "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
        if close
        else "`masque list` shows the masques on the search path"
    )
    raise NotFound(f"no masque named {info.key!r} on the search path", hint=hint)


def check_masque(who: Caller, info: MasqueInfo, action: str) -> None:
    """Refused (exit 3, reason ring_refused) unless the caller qualifies for the masque's ring."""
    from masque.trust import rings

    rings.check_qualified(who.actor, info.ring, f"{action} on masque {info.key!r} ({info.ring.value} ring)")


def check_mapper_writer(who: Caller, action: str) -> None:
    from masque.trust import rings

    rings.check_qualified(who.actor, MAPPER_PUT_RING, action)
