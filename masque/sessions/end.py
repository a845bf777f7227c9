"""Doffing: release and revoke. Ending a session ends every session chained below it, revokes their
credentials and archives each one's memory diff; a graceful revoke gives an `exec` holder SIGTERM and a
grace period first. Assuming lives in `masque.sessions.lifecycle`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from masque import config
from masque.durations import utcnow
from masque.enums import Ring
from masque.errors import NotFound, Refused, UsageError
from masque.sessions.events import record_session_event, record_session_events
from masque.sessions.model import ENDED, LIVE, Ended, Session, holder_alive, load
from masque.store import turns

if TYPE_CHECKING:
    import duckdb

    from masque.trust.rings import Acting, Selection

DEFAULT_GRACE = dt.timedelta(seconds=10)
# Imported before taking the store's turn, which is then held only for the writes.
_NEEDS = (
    "masque.trust.credentials",
    "masque.trust.rings",
    "masque.memory",
    "masque.memory.diff",
)
_SCORING = "masque.reflection.scoring"  # only a release that records a score needs it


def _chain(conn: duckdb.DuckDBPyConnection, session_id: str) -> list[str]:
    """Live sessions chained below `session_id` (children, grandchildren, ...).

    Breadth-first with plain lookups: almost every session has no children, and one indexed
    lookup is far cheaper for DuckDB than planning a recursive CTE. Sorted here, not in SQL: a cold
    `release` would pay ~3 ms for DuckDB's first ORDER BY to sort no rows.
    """
    found: list[str] = []
    frontier = [session_id]
    while frontier:
        marks = ", ".join("?" for _ in frontier)
        rows = sorted(
            conn.execute(f"SELECT id, status FROM sessions WHERE parent_id IN ({marks})", frontier).fetchall()
        )
        frontier = [r[0] for r in rows if r[0] not in found]
        found += [r[0] for r in rows if r[1] in LIVE]
    return found


def prepare_ending() -> None:
    """Import what ending sessions needs before taking the store's turn (held only for the writes)."""
    turns.prepare(*_NEEDS)


def end_session(
    conn: duckdb.DuckDBPyConnection, s: Session, *, reason: str, by: str | None
) -> tuple[list[str], list[str]]:
    """End live session `s` and its chain on the caller's connection (`masque team release` ends every
    member in one transaction). A `revoking` session completes its revoke. Returns (ended, accessors)."""
    status, why = ("revoked", "revoked") if s.status == "revoking" else ("ended", reason)
    return _end(conn, s, status=status, reason=why, by=by)


def _end(
    conn: duckdb.DuckDBPyConnection,
    s: Session,
    *,
    status: str,
    reason: str,
    by: str | None,
    exit_code: int | None = None,
) -> tuple[list[str], list[str]]:
    """End `s` and its chain, revoke their credentials, write the events. Returns (ended, accessors)."""
    from masque.trust.credentials import broker

    now = utcnow()
    below = _chain(conn, s.session_id)
    conn.execute(
        "UPDATE sessions SET status = ?, ended_at = ?, end_reason = ?, exit_code = coalesce(?, exit_code) WHERE id = ?",
        [status, now, reason, exit_code, s.session_id],
    )
    if below:
        marks = ", ".join("?" for _ in below)
        conn.execute(
            f"UPDATE sessions SET status = 'ended', ended_at = ?, end_reason = 'parent_ended' WHERE id IN ({marks})",
            [now, *below],
        )
    revoked = broker().revoke_sessions(conn, [s.session_id, *below], reason)
    memory = _record_memory_diffs(conn, [s.session_id, *below])
    ended_now = [s, *(load(conn, sid) for sid in below)]
    by_id = {x.session_id: x for x in ended_now}
    items: list[tuple[str, Session, dict[str, Any]]] = [
        ("credential_revoked", by_id[sid], {"accessor": accessor, "reason": reason, "by": by})
        for accessor, sid in revoked
    ]
    for x in ended_now:
        is_root = x.session_id == s.session_id
        items.append(
            (
                "mask_session_ended",
                x,
                {
                    "status": status if is_root else "ended",
                    "reason": reason if is_root else "parent_ended",
                    "by": by,
                    "exit_code": exit_code if is_root else None,
                    "duration_s": round((now - x.started_at).total_seconds(), 3),
                    "memory": {k: memory[x.session_id][k] for k in ("added", "forgotten")},
                },
            )
        )
    record_session_events(conn, items)
    return [s.session_id, *below], [a for a, _ in revoked]


def _record_memory_diffs(conn: duckdb.DuckDBPyConnection, session_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Archive each ending session's memory shard diff (seed 000) in its metadata, in this transaction."""
    import json

    from masque.memory import session_diff

    diffs = {sid: session_diff(sid, conn) for sid in session_ids}
    for sid, diff in diffs.items():
        conn.execute(
            "UPDATE sessions SET metadata = json_merge_patch(coalesce(metadata, '{}'), ?) WHERE id = ?",
            [json.dumps({"memory": diff}), sid],
        )
    return diffs


def may_end(who: Acting, s: Session) -> bool:
    """A session is ended by its own actor, or by a more trusted ring (admins end anything)."""
    if who.actor.name == s.actor or who.actor.ring is Ring.ADMIN:
        return True
    return s.actor_ring is not None and who.actor.ring.outranks(Ring(s.actor_ring))


def _may_end(who: Acting, s: Session) -> None:
    if may_end(who, s):
        return
    from masque.trust.rings import sees

    # A session of a more trusted ring is "not found", as in `sessions show`: its actor stays unnamed.
    if not sees(who.actor, s.actor_ring):
        raise NotFound(f"no session {s.session_id!r}", hint="`masque sessions` lists the sessions you can see")
    raise Refused(
        f"actor {who.actor.name!r} (ring {who.actor.ring.value}) cannot end session {s.session_id} "
        f"of actor {s.actor!r}",
        reason="ring_refused",
        hint="a session is ended by its own actor or by a more trusted ring",
    )


def release(
    session_id: str | None = None,
    *,
    reason: str = "released",
    score: str | None = None,
    notes: str | None = None,
    exit_code: int | None = None,
    selection: Selection | None = None,
) -> Ended:
    """Doff a session (default: MASQUE_SESSION_ID). Ended already -> Ended(already_ended=True)."""
    sid = _session_id_or_env(session_id)
    turns.prepare(*_NEEDS, *((_SCORING,) if score is not None else ()))
    with turns.transaction() as conn:
        s = load(conn, sid)
        who = _who_may_end(conn, s, selection)
        if score is not None:
            record_score(conn, sid, score, notes, who.actor.name)
        if s.status in ENDED:
            if exit_code is not None and s.exit_code is None:
                conn.execute("UPDATE sessions SET exit_code = ? WHERE id = ?", [exit_code, sid])
            return Ended(load(conn, sid), already_ended=True)
        # A release during a graceful revoke completes the revoke.
        status, why = ("revoked", "revoked") if s.status == "revoking" else ("ended", reason)
        ended, revoked = _end(conn, s, status=status, reason=why, by=who.actor.name, exit_code=exit_code)
        after = replace(
            s,
            status=status,
            ended_at=utcnow(),
            end_reason=why,
            exit_code=exit_code if exit_code is not None else s.exit_code,
            memory=_archived_memory(conn, sid),
        )
        return Ended(after, False, tuple(ended), tuple(revoked))


def _archived_memory(conn: duckdb.DuckDBPyConnection, session_id: str) -> dict[str, Any] | None:
    """The shard diff `_end` just archived in the session's metadata (only that column: no full `load`)."""
    row = conn.execute("SELECT metadata FROM sessions WHERE id = ?", [session_id]).fetchone()
    return json.loads(row[0]).get("memory") if row and row[0] else None


def abandon(session_id: str, *, reason: str = "abandoned", selection: Selection | None = None) -> Ended:
    """End a live session its holder let go of without releasing it (status `abandoned`, credentials revoked).

    What `masque sessions --stale` does for a dead holder PID, for a holder that knows it is letting go
    (an MCP connection that closed without `doff`). Ended already -> Ended(already_ended=True).
    """
    turns.prepare(*_NEEDS)
    with turns.transaction() as conn:
        s = load(conn, session_id)
        who = _who_may_end(conn, s, selection)
        if s.status in ENDED:
            return Ended(s, already_ended=True)
        ended, revoked = _end(conn, s, status="abandoned", reason=reason, by=who.actor.name)
        return Ended(load(conn, session_id), False, tuple(ended), tuple(revoked))


def _who_may_end(conn: duckdb.DuckDBPyConnection, s: Session, selection: Selection | None) -> Acting:
    from masque.trust import rings

    sel = selection or rings.selection_from_env()
    # The holder of a session's own token may end it, even after the token expired.
    if sel.token and not sel.name:
        from masque.trust.credentials import broker

        status = broker().verify(sel.token, conn=conn)
        if status.session_id == s.session_id:
            return rings.Acting(rings.get_actor(conn, s.actor), rings.ActingVia.SESSION, session_id=s.session_id)
    who = rings.resolve_acting(conn, sel)
    _may_end(who, s)
    return who


def _session_id_or_env(session_id: str | None) -> str:
    sid = session_id or config.session_id_from_env()
    if not sid:
        raise UsageError(
            "no session given and MASQUE_SESSION_ID is not set",
            hint="pass a session id (`masque sessions --active` lists them)",
        )
    return sid.strip()


def record_score(
    conn: duckdb.DuckDBPyConnection, session_id: str, symbol: str, notes: str | None, actor: str | None
) -> None:
    """Append a score row for a session on the caller's connection (scoring owns the semantics)."""
    from masque.reflection.scoring import add_score

    add_score(conn, session_id, symbol, notes, actor)


def revoke(
    session_id: str,
    *,
    now: bool = False,
    grace: dt.timedelta = DEFAULT_GRACE,
    selection: Selection | None = None,
    poll: float = 0.1,
) -> Ended:
    """Revoke a session and its chain. Graceful by default: mark it `revoking`, send an `exec` holder
    SIGTERM (it forwards it to its command), wait up to `grace` for the holder to release, then kill
    the credentials. `now=True` kills them at once."""
    turns.prepare(*_NEEDS)
    with turns.transaction() as conn:
        s = load(conn, session_id)
        who = _who_may_end(conn, s, selection)
        if s.status in ENDED:
            return Ended(s, already_ended=True)
        if now or grace <= dt.timedelta(0):
            ended, revoked = _end(conn, s, status="revoked", reason="revoked", by=who.actor.name)
            return Ended(load(conn, session_id), False, tuple(ended), tuple(revoked))
        deadline = utcnow() + grace
        conn.execute(
            "UPDATE sessions SET status = 'revoking', metadata = json_merge_patch(metadata, ?::JSON) WHERE id = ?",
            [json.dumps({"revoke_deadline": deadline.isoformat(), "revoked_by": who.actor.name}), session_id],
        )
        record_session_event(conn, "mask_session_revoking", s, {"by": who.actor.name, "deadline": deadline.isoformat()})
        exec_holder = _exec_holder(conn, s)
    if exec_holder is not None:
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.kill(exec_holder, signal.SIGTERM)
    while utcnow() < deadline:
        with turns.connect(read_only=True) as conn:
            status = conn.execute("SELECT status FROM sessions WHERE id = ?", [session_id]).fetchone()
        if status is None or status[0] in ENDED:
            break
        time.sleep(poll)
    with turns.transaction() as conn:
        current = load(conn, session_id)
        if current.status in ENDED:
            return Ended(current, False, (session_id,), (), graceful=True)
        ended, revoked = _end(conn, current, status="revoked", reason="revoked", by=who.actor.name)
        return Ended(load(conn, session_id), False, tuple(ended), tuple(revoked), graceful=True)


def _exec_holder(conn: duckdb.DuckDBPyConnection, s: Session) -> int | None:
    """The PID of a live `masque exec` wrapper holding `s` on this host, else None (never signal shells)."""
    row = conn.execute(
        "SELECT json_extract(metadata, '$.exec')::BOOLEAN, json_extract_string(metadata, '$.holder_start')"
        " FROM sessions WHERE id = ?",
        [s.session_id],
    ).fetchone()
    if not row or not row[0] or s.holder_pid is None or s.holder_host != socket.gethostname():
        return None
    return s.holder_pid if holder_alive(s.holder_pid, row[1]) else None


def end_actor_sessions(conn: duckdb.DuckDBPyConnection, actor: str, *, reason: str, by: str) -> list[str]:
    """End every live session of `actor` (demotion, disapproval), revoking credentials down each chain."""
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM sessions WHERE actor = ? AND status IN ('active', 'revoking') ORDER BY id",
            [actor],
        ).fetchall()
    ]
    ended: list[str] = []
    for sid in ids:
        s = load(conn, sid)
        if s.status in LIVE:
            ended += _end(conn, s, status="revoked", reason=reason, by=by)[0]
    return ended
