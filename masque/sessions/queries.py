"""Reading sessions: list, show, whoami, and the stale sweep (holders that died, sessions past expiry).

Reads use read-only connections held for milliseconds, so many readers and the writers of
`assume`/`release` interleave without lock errors.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from masque import config, store
from masque.durations import as_utc, utcnow
from masque.errors import NotFound, UsageError
from masque.sessions.end import _end, may_end
from masque.sessions.model import ENDED, LIVE, Session, _from_row, holder_alive, load
from masque.store import turns

if TYPE_CHECKING:
    import duckdb

    from masque.trust.credentials import TokenStatus
    from masque.trust.rings import Acting, Selection

_RINGS = "list_value('admin', 'player', 'guest', 'outsider')"  # portable: DuckDB and the PostgreSQL store


def list_sessions(*, active: bool = False, limit: int = 100, selection: Selection | None = None) -> list[Session]:
    """Newest first; only sessions of actors in the caller's ring and below."""
    from masque.trust import rings

    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}", hint="pass -n 1 or more (default 100)")
    sel = selection or rings.selection_from_env()
    with turns.connect(read_only=True) as conn:
        who = rings.resolve_acting(conn, sel)
        where = ["list_position(" + _RINGS + ", s.actor_ring) >= ?"]
        params: list[Any] = [who.actor.ring.rank + 1]
        if active:
            where.append("s.status IN ('active', 'revoking')")
        found = conn.execute(
            f"""SELECT s.id, s.masque, s.version, s.actor, s.intent, s.started_at, s.expires_at, s.status,
                       s.role, s.actor_ring, s.masque_ring, s.originator, s.parent_id, s.scope, s.ended_at,
                       s.end_reason, s.exit_code, s.holder_pid, s.holder_host, s.content_hash,
                       s.source_path, s.metadata, c.accessor, c.expires_at
                FROM sessions s
                LEFT JOIN (SELECT DISTINCT ON (session_id) session_id, accessor, expires_at
                           FROM credentials ORDER BY session_id, issued_at DESC) c ON c.session_id = s.id
                WHERE {" AND ".join(where)} ORDER BY s.id DESC LIMIT ?""",
            [*params, limit],
        ).fetchall()
    return [_from_row(r[:22], r[22], r[23]) for r in found]


@dataclass(frozen=True)
class SessionDetail:
    session: Session
    events: list[dict[str, Any]] = field(default_factory=list)
    credentials: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    children: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.session.to_dict(),
            "events": self.events,
            "credentials": self.credentials,
            "scores": self.scores,
            "children": self.children,
        }


def show(session_id: str, selection: Selection | None = None) -> SessionDetail:
    """One session with its events, credentials (accessors only), scores and chained children."""
    from masque.trust import rings

    with turns.connect(read_only=True) as conn:
        who = rings.resolve_acting(conn, selection or rings.selection_from_env())
        s = load(conn, session_id)
        if not rings.sees(who.actor, s.actor_ring):
            raise NotFound(f"no session {session_id!r}", hint="`masque sessions` lists the sessions you can see")
        events = store.rows(
            conn,
            "SELECT id, ts, type, actor, originator, payload FROM events WHERE session_id = ? ORDER BY id",
            [session_id],
        )
        for e in events:
            e["ts"] = as_utc(e["ts"])
            e["payload"] = json.loads(e["payload"]) if e["payload"] else None
        creds = store.rows(
            conn,
            "SELECT accessor, role, actor, issued_at, expires_at, max_expires_at, revoked_at, revoke_reason"
            " FROM credentials WHERE session_id = ? ORDER BY issued_at",
            [session_id],
        )
        for c in creds:
            for k in ("issued_at", "expires_at", "max_expires_at", "revoked_at"):
                c[k] = as_utc(c[k])
        scores = store.rows(
            conn,
            "SELECT id, symbol, notes, scored_by, created_at FROM scores WHERE session_id = ? ORDER BY created_at, id",
            [session_id],
        )
        for sc in scores:
            sc["created_at"] = as_utc(sc["created_at"])
        children = [
            r[0]
            for r in conn.execute("SELECT id FROM sessions WHERE parent_id = ? ORDER BY id", [session_id]).fetchall()
        ]
    return SessionDetail(s, events, creds, scores, children)


@dataclass(frozen=True)
class WhoAmI:
    acting: Acting
    session: Session | None = None
    token: TokenStatus | None = None
    parent_session_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "actor": self.acting.actor.name,
            "ring": self.acting.actor.ring.value,
            "via": self.acting.via.value,
            "disapproved": self.acting.actor.disapproval is not None,
            "session": self.session.to_dict() if self.session else None,
            "token": self.token.to_dict() if self.token else None,
            "parent_session_id": self.parent_session_id,
        }


def whoami(selection: Selection | None = None) -> WhoAmI:
    """The acting actor and the masque this process wears (MASQUE_SESSION_ID / MASQUE_TOKEN), if any."""
    from masque.trust import rings
    from masque.trust.credentials import broker

    sel = selection or rings.selection_from_env()
    with turns.connect(read_only=True) as conn:
        who = rings.resolve_acting(conn, sel)
        status = broker().verify(sel.token, conn=conn) if sel.token else None
        sid = config.session_id_from_env() or (status.session_id if status else None)
        session = load(conn, sid) if sid else None
        # A session of a more trusted ring is "not found", as in `sessions show`.
        if session is not None and not rings.sees(who.actor, session.actor_ring):
            raise NotFound(f"no session {sid!r}", hint="unset MASQUE_SESSION_ID; `masque sessions` lists yours")
    return WhoAmI(who, session, status, sel.parent_session_id)


@dataclass(frozen=True)
class Stale:
    session: Session
    why: str  # "abandoned" (holder died) or "expired"


def find_stale(conn: duckdb.DuckDBPyConnection) -> list[Stale]:
    """Live sessions whose holder PID is dead on this host, or that are past their expiry."""
    host = socket.gethostname()
    now = utcnow()
    found: list[Stale] = []
    rows = conn.execute(
        "SELECT id, json_extract_string(metadata, '$.holder_start') FROM sessions"
        " WHERE status IN ('active', 'revoking') ORDER BY id"
    ).fetchall()
    for sid, start in rows:
        s = load(conn, sid)
        if s.holder_host == host and s.holder_pid is not None and not holder_alive(s.holder_pid, start):
            found.append(Stale(s, "abandoned"))
        elif s.expires_at is not None and s.expires_at <= now:
            found.append(Stale(s, "expired"))
    return found


def sweep_stale(selection: Selection | None = None) -> list[Stale]:
    """Release stale sessions: dead holders with status `abandoned`, expired ones as ended/`expired`.

    Only sessions the caller may end (the rule of `release`/`revoke`: its own, a less trusted ring's,
    or any for an admin); the others, and every session it cannot see, are left untouched.
    """
    from masque.trust import rings

    with turns.transaction() as conn:
        who = rings.resolve_acting(conn, selection or rings.selection_from_env())
        stale = find_stale(conn)
        done: list[Stale] = []
        for item in stale:
            current = load(conn, item.session.session_id)
            if current.status not in LIVE:  # already ended as part of an earlier chain in this sweep
                continue
            if not may_end(who, current):
                continue
            status = "abandoned" if item.why == "abandoned" else "ended"
            _end(conn, current, status=status, reason=item.why, by=who.actor.name)
            done.append(Stale(load(conn, current.session_id), item.why))
    for item in done:
        prompt = config.home() / "run" / f"{item.session.session_id}.prompt"
        prompt.unlink(missing_ok=True)
    return done


__all__ = [
    "ENDED",
    "SessionDetail",
    "Stale",
    "WhoAmI",
    "find_stale",
    "list_sessions",
    "show",
    "sweep_stale",
    "whoami",
]
