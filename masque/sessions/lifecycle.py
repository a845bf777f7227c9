"""The don/doff lifecycle: assume here, release and revoke in `masque.sessions.end`. The only writers of
session rows.

An assumption is decided (intent, ring, TTL) and then written — session, credential hash, skills and
events — in ONE transaction before the token is returned: if that write fails no credential exists.
Refusals are recorded as events too (`intent_denied`, `ring_refused`, `assume_refused`). Releasing
or revoking a session ends every session chained below it and revokes their credentials; the
originator of a chain is carried unchanged on every event (like STS's SourceIdentity).

Queries (list, show, whoami, stale sweep) live in `masque.sessions.queries`; `masque exec` in
`masque.sessions.runner`. This module re-exports the whole lifecycle, so it stays the one import.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from masque import config
from masque.durations import format_duration, parse_duration, utcnow
from masque.errors import Refused, UsageError
from masque.ids import new_id
from masque.model import Ring
from masque.sessions.code import resolve_wearable
from masque.sessions.end import DEFAULT_GRACE, end_actor_sessions, record_score, release, revoke
from masque.sessions.events import record_session_events
from masque.sessions.model import (
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
    wearable_from_model,
)
from masque.store import turns
from masque.store.events import record_event

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

if TYPE_CHECKING:
    import duckdb

    from masque.masques.trusted import DefinitionRefused
    from masque.trust.rings import Acting, Selection

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


def _parent(conn: duckdb.DuckDBPyConnection, who: Acting, selection: Selection) -> Session | None:
    """The session this assumption is made from: the token's session, or an exec parent."""
    parent_id = None
    if selection.token:
        from masque.trust.credentials import broker

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
    from masque.masques import trusted
    from masque.trust import rings

    selection = selection or rings.selection_from_env()
    try:
        return _assume(ref, intent, selection, ttl, local, strict_knowledge, holder_pid, metadata)
    except trusted.DefinitionRefused as exc:
        # Its transaction rolled back having only read; the refusal is recorded in one of its own.
        _record_definition_refusal(exc, intent, selection)
        raise


def _record_definition_refusal(exc: DefinitionRefused, intent: str, selection: Selection) -> None:
    from masque.errors import MasqueError
    from masque.trust import rings

    with turns.transaction() as conn:
        try:
            who: Acting | None = rings.resolve_acting(conn, selection)
        except MasqueError:
            who = None
        name = who.actor.name if who else selection.name
        record_event(
            conn,
            "assume_refused",
            session_id=None,
            masque=exc.key,
            version=exc.version,
            actor=name,
            originator=name,
            payload={
                "intent": intent,
                "reason": exc.reason,
                "message": str(exc),
                "paths": list(exc.paths),
                "actor_verified": who is not None,
                "actor_ring": who.actor.ring.value if who else None,
            },
        )


def _assume(
    ref: str | Wearable,
    intent: str,
    selection: Selection,
    ttl: str | None,
    local: bool,
    strict_knowledge: bool,
    holder_pid: int | None,
    metadata: dict[str, Any] | None,
) -> Session:
    from masque.masques import knowledge as knowledge_mod
    from masque.masques import registry
    from masque.masques.intent_text import escape_undecodable
    from masque.sessions.code import code_masque_for
    from masque.trust import rings
    from masque.trust.credentials import SESSION_ROLE, broker

    pid = holder_pid if holder_pid is not None else os.getpid()
    refusal: Refused | None = None
    # Code masques run user code (access(), validate_intent) to resolve and decide: never under the lock.
    ready = ref if isinstance(ref, Wearable) else code_masque_for(ref)
    early = ready.decide(intent) if ready is not None else None
    # The turn is held only for the transaction: parse files and import modules before taking it.
    if ready is None:
        registry.prepare(str(ref))
    # isodate: parse_duration's ISO reader (a cached definition no longer brings it in through validation).
    turns.prepare("masque.masques.intent", "masque.sessions.events", "isodate")
    holder_start = _holder_start(pid)
    with turns.transaction() as conn:
        # A registry masque is resolved here: its recorded stages are read on this connection.
        resolved = registry.resolve(str(ref), conn=conn) if ready is None else None
        w = ready if ready is not None else wearable_from_model(resolved)
        if ready is not None:  # not resolved through the registry: it may still not claim a pinned definition
            from masque.masques import trusted

            trusted.check_wearable(conn, w.key, w.version, w.content_hash, w.source_path)
        decision = early if early is not None else w.decide(intent)
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
            record_event(
                conn,
                next((v for k, v in kind.items() if exc.reason.startswith(k)), "assume_refused"),
                session_id=None,
                masque=w.key,
                version=w.version,
                actor=who.actor.name if who else selection.name,
                originator=originator,
                payload={
                    "intent": escape_undecodable(intent),
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
                "holder_start": holder_start,
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
            if resolved is not None and not resolved.pinned:
                # Trust on first use: the first granted assume of a name@version pins its content.
                from masque.masques import trusted

                trusted.register(conn, resolved, actor=who.actor.name)
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
            record_session_events(conn, [started, minted_event])
    if refusal is not None:
        raise refusal
    # The token leaves this function only after the transaction above committed.
    return replace(session, token=minted.token, system_prompt=render_prompt(w, intent, links))
