"""The don/doff lifecycle: assume, release, revoke. The only writer of session rows.

An assumption is decided (intent, ring, TTL) and then written — session, credential hash, skills and
events — in ONE transaction before the token is returned: if that write fails no credential exists.
Refusals are recorded as events too (`intent_denied`, `ring_refused`, `assume_refused`). Releasing
or revoking a session ends every session chained below it and revokes their credentials; the
originator of a chain is carried unchanged on every event (like STS's SourceIdentity).

Queries (list, show, whoami, stale sweep) live in `masque.session_queries`; `masque exec` in
`masque.runner`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from masque import config, turns
from masque.durations import format_duration, parse_duration, utcnow
from masque.errors import Refused, UsageError
from masque.ids import new_id
from masque.model import Ring
from masque.session_model import (
    ENDED,
    LIVE,
    Ended,
    Knowledge,
    Session,
    Wearable,
    _from_row,
    _holder_start,
    holder_alive,
    load,
    render_prompt,
    resolve_wearable,
    wearable_from_model,
)

__all__ = [
    "DEFAULT_GRACE",
    "ENDED",
    "LIVE",
    "Ended",
    "Knowledge",
    "Session",
    "Wearable",
    "_from_row",
    "assume",
    "end_actor_sessions",
    "holder_alive",
    "load",
    "record_score",
    "release",
    "render_prompt",
    "resolve_wearable",
    "revoke",
    "wearable_from_model",
]
DEFAULT_GRACE = dt.timedelta(seconds=10)

if TYPE_CHECKING:
    import duckdb

    from masque.rings import Acting, Selection

# --- assume ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    session_expires: dt.datetime
    cred_expires: dt.datetime
    cred_max: dt.datetime
    caps: tuple[str, ...]


def _plan_ttl(
    w: Wearable, who: Acting, parent: Session | None, local: bool, ttl: str | None, now: dt.datetime
) -> _Plan:
    """Work out expiries. A --ttl longer than allowed is refused (exit 3), never silently shortened."""
    lim = config.limits()
    cap = dt.timedelta(seconds=lim.max_ttl_seconds)
    why = [f"the maximum session length {format_duration(cap)} ([limits] max_ttl_seconds)"]

    def narrow(limit: dt.timedelta, reason: str) -> None:
        nonlocal cap
        if limit < cap:
            cap = limit
            why.append(reason)

    if who.actor.ring is Ring.GUEST:
        narrow(dt.timedelta(seconds=lim.guest_ttl_seconds), "the guest session cap")
    if parent is not None:
        narrow(dt.timedelta(seconds=lim.chained_ttl_seconds), "the cap on sessions assumed from a session")
        if local and parent.expires_at is not None:
            narrow(parent.expires_at - now, f"the remaining life of the enclosing session {parent.session_id}")
    allowed = cap
    if w.ttl != "session":
        masque_ttl = parse_duration(w.ttl)
        if masque_ttl < allowed:
            allowed = masque_ttl
            why.append(f"the masque's access.ttl {w.ttl}")
    requested = None
    if ttl is not None:
        requested = parse_duration(ttl)
        if requested > allowed:
            raise Refused(
                f"{w.ref}: --ttl {ttl} ({format_duration(requested)}) is longer than allowed: "
                f"at most {format_duration(allowed)} ({why[-1]})",
                reason="ttl_too_long",
                hint=f"ask for {format_duration(allowed)} or less; renew later with `masque token renew`",
            )
    return _Plan(now + cap, now + (requested or allowed), now + allowed, tuple(why))


def _event(
    conn: duckdb.DuckDBPyConnection,
    type_: str,
    *,
    session_id: str | None,
    masque: str | None,
    version: str | None,
    actor: str | None,
    originator: str | None,
    payload: dict[str, Any],
) -> None:
    conn.execute(
        "INSERT INTO events (id, ts, type, session_id, masque, version, actor, originator, payload)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            new_id("evt_"),
            utcnow(),
            type_,
            session_id,
            masque,
            version,
            actor,
            originator,
            json.dumps(payload, default=str),
        ],
    )


def _session_event(conn: duckdb.DuckDBPyConnection, type_: str, s: Session, payload: dict[str, Any]) -> None:
    _session_events(conn, [(type_, s, payload)])


def _session_events(conn: duckdb.DuckDBPyConnection, items: list[tuple[str, Session, dict[str, Any]]]) -> None:
    """Append several events in one statement (each statement costs milliseconds under the lock)."""
    if not items:
        return
    now = utcnow()
    values = ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?)" for _ in items)
    params: list[Any] = []
    # Ids made in the same millisecond order randomly; sorted, they keep the order of `items`.
    ids = sorted(new_id("evt_") for _ in items)
    for event_id, (type_, x, payload) in zip(ids, items, strict=True):
        params += [
            event_id,
            now,
            type_,
            x.session_id,
            x.masque,
            x.version,
            x.actor,
            x.originator,
            json.dumps(payload, default=str),
        ]
    conn.execute(
        f"INSERT INTO events (id, ts, type, session_id, masque, version, actor, originator, payload) VALUES {values}",
        params,
    )


def _parent(conn: duckdb.DuckDBPyConnection, who: Acting, selection: Selection) -> Session | None:
    """The session this assumption is made from: the token's session, or an exec parent."""
    parent_id = None
    if selection.token:
        from masque.credentials import broker

        status = broker().verify(selection.token, conn=conn)
        if not status.valid:
            raise Refused(
                f"MASQUE_TOKEN is not valid: {status.message}",
                reason="token_invalid",
                hint='unset MASQUE_TOKEN and MASQUE_SESSION_ID (`eval "$(masque release --format env)"`)',
            )
        parent_id = status.session_id
    elif who.session_id:
        parent_id = who.session_id
    elif selection.parent_session_id:
        parent_id = selection.parent_session_id
    if parent_id is None:
        return None
    parent = load(conn, parent_id)
    if parent.status not in LIVE:
        raise Refused(
            f"the enclosing session {parent_id} has ended ({parent.status}); cannot assume from it",
            reason="parent_ended",
            hint="unset MASQUE_PARENT_SESSION_ID / MASQUE_TOKEN, or assume from a live session",
        )
    return parent


def _insert_session(conn: duckdb.DuckDBPyConnection, s: Session, meta: dict[str, Any]) -> None:
    names: tuple[str, ...] = ("id", "masque", "version", "content_hash", "source_path", "masque_ring", "actor")
    names += ("actor_ring", "originator", "parent_id", "scope", "intent", "role", "status", "started_at")
    names += ("expires_at", "holder_pid", "holder_host")
    values = [getattr(s, "session_id" if n == "id" else n) for n in names]
    conn.execute(
        f"INSERT INTO sessions ({', '.join(names)}, metadata) VALUES ({', '.join('?' for _ in names)}, ?)",
        [*values, json.dumps(meta)],
    )


def assume(
    ref: str | Wearable,
    intent: str,
    *,
    selection: Selection | None = None,
    ttl: str | None = None,
    local: bool = False,
    strict_knowledge: bool = False,
    holder_pid: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> Session:
    """Don a masque: decide, mint, record (one transaction), and return the session with its token."""
    from masque import knowledge as knowledge_mod
    from masque import rings
    from masque.credentials import SESSION_ROLE, broker

    selection = selection or rings.selection_from_env()
    pid = holder_pid if holder_pid is not None else os.getpid()
    refusal: Refused | None = None
    with turns.transaction() as conn:
        # Resolved inside the transaction: recorded stages are read on this connection, not a second.
        w = ref if isinstance(ref, Wearable) else resolve_wearable(ref, conn)
        decision = w.decide(intent)
        pointers = knowledge_mod.resolve(list(w.knowledge), strict=False)
        links = tuple(Knowledge(p.uri, p.endpoint) for p in pointers)
        unresolved = [k.uri for k in links if k.endpoint is None]
        who: Acting | None = None
        parent: Session | None = None
        originator = selection.name or None
        now = utcnow()
        try:
            who = rings.resolve_acting(conn, selection)
            parent = _parent(conn, who, selection)
            originator = parent.originator if parent is not None and parent.originator else who.actor.name
            if not decision.allowed:
                raise decision.refusal(w.ref)
            rings.check_qualified(who.actor, w.ring, f"wearing {w.ref}")
            if strict_knowledge and unresolved:
                knowledge_mod.resolve(list(w.knowledge), strict=True)
            if local and parent is None:
                raise UsageError("--local needs an enclosing session", hint="assume a global session first")
            if local and parent is not None and Ring(parent.masque_ring or "admin").rank > w.ring.rank:
                raise Refused(
                    f"{w.ref} (ring {w.ring.value}) would widen the enclosing session {parent.session_id} "
                    f"(ring {parent.masque_ring}); a local session can only narrow it",
                    reason="local_widens",
                    hint="pick a masque of the same or an outer ring",
                )
            plan = _plan_ttl(w, who, parent, local, ttl, now)
        except Refused as exc:
            # Recorded in this transaction, raised after it commits: refusals are part of the audit
            # trail, including a bad actor key (then the actor is the name claimed, unverified).
            refusal = exc
            kind = {"intent_": "intent_denied", "ring_refused": "ring_refused"}
            _event(
                conn,
                next((v for k, v in kind.items() if exc.reason.startswith(k)), "assume_refused"),
                session_id=None,
                masque=w.key,
                version=w.version,
                actor=who.actor.name if who else selection.name,
                originator=originator,
                payload={
                    "intent": intent,
                    "reason": exc.reason,
                    "message": str(exc),
                    "pattern": decision.pattern,
                    "actor_verified": who is not None,
                    "actor_ring": who.actor.ring.value if who else None,
                    "masque_ring": w.ring.value,
                    "parent_id": parent.session_id if parent else None,
                },
            )
        if refusal is None:
            assert who is not None
            session = Session(
                session_id=new_id("ses_"),
                masque=w.key,
                version=w.version,
                actor=who.actor.name,
                intent=intent,
                started_at=now,
                expires_at=plan.session_expires,
                role=w.vault_role,
                actor_ring=who.actor.ring.value,
                masque_ring=w.ring.value,
                originator=originator,
                parent_id=parent.session_id if parent else None,
                scope="local" if local else "global",
                holder_pid=pid,
                holder_host=socket.gethostname(),
                content_hash=w.content_hash,
                source_path=w.source_path,
                knowledge=links,
            )
            meta = {
                "knowledge": [{"uri": k.uri, "endpoint": k.endpoint} for k in links],
                "holder_start": _holder_start(pid),
                "source": w.source,
                "caps": list(plan.caps),
                "acting_via": who.via.value,
                "audited": who.actor.ring is not Ring.ADMIN,
                **(metadata or {}),
            }
            _insert_session(conn, session, meta)
            minted = broker().mint(
                conn,
                session_id=session.session_id,
                role=w.vault_role or SESSION_ROLE,
                actor=who.actor.name,
                issued_at=now,
                expires_at=plan.cred_expires,
                max_expires_at=plan.cred_max,
            )
            session = replace(session, accessor=minted.accessor, credential_expires_at=minted.expires_at)
            if w.skills:
                conn.execute(
                    "INSERT OR IGNORE INTO masque_skills VALUES " + ", ".join("(?, ?, ?, ?)" for _ in w.skills),
                    [v for k in w.skills for v in (w.key, w.version, k.uri, k.level.value)],
                )
            started = (
                "mask_session_started",
                session,
                {
                    "intent": intent,
                    "scope": session.scope,
                    "parent_id": session.parent_id,
                    "role": w.vault_role,
                    "accessor": minted.accessor,
                    "content_hash": w.content_hash,
                    "expires_at": plan.session_expires.isoformat(),
                    "pattern": decision.pattern,
                    "unresolved_knowledge": unresolved,
                    "actor_ring": who.actor.ring.value,
                    "audited": meta["audited"],
                },
            )
            minted_event = (
                "credential_minted",
                session,
                {
                    "accessor": minted.accessor,
                    "role": minted.role,
                    "expires_at": minted.expires_at.isoformat(),
                    "max_expires_at": minted.max_expires_at.isoformat(),
                },
            )
            _session_events(conn, [started, minted_event])
    if refusal is not None:
        raise refusal
    # The token leaves this function only after the transaction above committed.
    return replace(session, token=minted.token, system_prompt=render_prompt(w, intent, links))


# --- release and revoke --------------------------------------------------------------------------


def _chain(conn: duckdb.DuckDBPyConnection, session_id: str) -> list[str]:
    """Live sessions chained below `session_id` (children, grandchildren, ...).

    Breadth-first with plain lookups: almost every session has no children, and one indexed
    lookup is far cheaper for DuckDB than planning a recursive CTE.
    """
    found: list[str] = []
    frontier = [session_id]
    while frontier:
        marks = ", ".join("?" for _ in frontier)
        rows = conn.execute(
            f"SELECT id, status FROM sessions WHERE parent_id IN ({marks}) ORDER BY id", frontier
        ).fetchall()
        frontier = [r[0] for r in rows if r[0] not in found]
        found += [r[0] for r in rows if r[1] in LIVE]
    return found


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
    from masque.credentials import broker

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
    _session_events(conn, items)
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


def _may_end(who: Acting, s: Session) -> None:
    """A session is ended by its own actor, or by a more trusted ring (admins end anything)."""
    if who.actor.name == s.actor or who.actor.ring is Ring.ADMIN:
        return
    if s.actor_ring is not None and who.actor.ring.outranks(Ring(s.actor_ring)):
        return
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
        )
        return Ended(after, False, tuple(ended), tuple(revoked))


def _who_may_end(conn: duckdb.DuckDBPyConnection, s: Session, selection: Selection | None) -> Acting:
    from masque import rings

    sel = selection or rings.selection_from_env()
    # The holder of a session's own token may end it, even after the token expired.
    if sel.token and not sel.name:
        from masque.credentials import broker

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
    from masque.scoring import add_score

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
        _session_event(conn, "mask_session_revoking", s, {"by": who.actor.name, "deadline": deadline.isoformat()})
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
