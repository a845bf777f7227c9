"""The don/doff lifecycle: assume here, release and revoke in `masque.sessions.end`. The only writers of
session rows.

An assumption is decided (intent, ring, TTL) and then written — session, credential hash, skills and
events — in ONE transaction before the token is returned: if that write fails no credential exists.
Refusals are recorded as events too (`intent_denied`, `ring_refused`, `assume_refused`). Releasing
or revoking a session ends every session chained below it and revokes their credentials; the
originator of a chain is carried unchanged on every event (like STS's SourceIdentity).

`assume` runs three steps, public so that several assumptions can share ONE transaction
(`masque team spawn`): `prepare_assumption` (outside the store's turn: user code, file parsing),
`decide_assumption` (on the caller's connection, writes nothing), then `grant` or `record_denial`.

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
from masque.durations import format_duration, needs_isodate, parse_duration, utcnow
from masque.enums import Ring
from masque.errors import Refused, UsageError
from masque.ids import new_id
from masque.sessions.code import resolve_wearable
from masque.sessions.end import DEFAULT_GRACE, abandon, end_actor_sessions, record_score, release, revoke
from masque.sessions.events import record_session_events
from masque.sessions.model import (
    ENDED,
    LIVE,
    Ended,
    Knowledge,
    Session,
    _from_row,
    _holder_start,
    holder_alive,
    load,
    render_prompt,
)
from masque.sessions.wearable import Wearable, wearable_from_model
from masque.store import turns
from masque.store.events import record_event

__all__ = [
    "DEFAULT_GRACE",
    "ENDED",
    "LIVE",
    "Decided",
    "Denied",
    "Ended",
    "Knowledge",
    "Prepared",
    "Session",
    "Wearable",
    "_from_row",
    "abandon",
    "assume",
    "decide_assumption",
    "end_actor_sessions",
    "grant",
    "holder_alive",
    "load",
    "prepare_assumption",
    "record_definition_refusal",
    "record_denial",
    "record_score",
    "release",
    "render_prompt",
    "resolve_wearable",
    "revoke",
    "wearable_from_model",
]

if TYPE_CHECKING:
    import duckdb

    from masque.masques.intent import Decision
    from masque.masques.trusted import DefinitionRefused
    from masque.trust.rings import Acting, Selection

# --- assume ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """The expiries of one assumption and the caps that bounded them."""

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


@dataclass(frozen=True)
class Prepared:
    """An assumption readied outside the store's turn: code masques decided, registry files parsed."""

    ref: str | Wearable
    intent: str
    ready: Wearable | None
    early: Decision | None
    holder_pid: int
    holder_start: str | None
    ttl: str | None = None
    local: bool = False
    strict_knowledge: bool = False
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Decided:
    """A granted decision, not yet written: `grant` writes it on the same connection."""

    prepared: Prepared
    w: Wearable
    resolved: Any  # registry.Resolved, or None for a code masque
    decision: Decision
    links: tuple[Knowledge, ...]
    who: Acting
    parent: Session | None
    originator: str
    plan: _Plan
    now: dt.datetime


@dataclass(frozen=True)
class Denied:
    """A refused decision: `record_denial` writes its audit event, then the caller raises `error`."""

    error: Refused
    w: Wearable
    intent: str
    who: Acting | None
    parent: Session | None
    originator: str | None
    claimed: str | None
    pattern: str | None


def prepare_assumption(
    ref: str | Wearable,
    intent: str,
    *,
    ttl: str | None = None,
    local: bool = False,
    strict_knowledge: bool = False,
    holder_pid: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> Prepared:
    """Everything that must not run under the store's turn: code masques run user code (access(),
    validate_intent) to resolve and decide; registry files are parsed into the cache."""
    from masque.masques import registry
    from masque.sessions.code import code_masque_for

    pid = holder_pid if holder_pid is not None else os.getpid()
    ready = ref if isinstance(ref, Wearable) else code_masque_for(ref)
    early = ready.decide(intent) if ready is not None else None
    if ready is None:
        registry.prepare(str(ref))
    # What deciding and granting import, loaded now: the turn is held only for the transaction.
    modules = [
        "masque.masques.intent",
        "masque.masques.intent_text",
        "masque.masques.knowledge",
        "masque.sessions.events",
        "masque.trust.credentials",
        "masque.trust.rings",
    ]
    # parse_duration's ISO reader (~5 ms), for a --ttl or a code masque's ttl; registry.prepare sees to
    # the registry's masques, whose cached definitions usually bring their parsed access.ttl along.
    if needs_isodate(ttl) or (ready is not None and needs_isodate(ready.ttl)):
        modules.append("isodate")
    turns.prepare(*modules)
    return Prepared(ref, intent, ready, early, pid, _holder_start(pid), ttl, local, strict_knowledge, metadata)


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
    prepared = prepare_assumption(
        ref,
        intent,
        ttl=ttl,
        local=local,
        strict_knowledge=strict_knowledge,
        holder_pid=holder_pid,
        metadata=metadata,
    )
    try:
        with turns.transaction() as conn:
            outcome = decide_assumption(conn, prepared, selection)
            if isinstance(outcome, Denied):
                # Recorded in this transaction, raised after it commits: refusals are part of the audit trail.
                record_denial(conn, outcome)
            else:
                session = grant(conn, outcome)
    except trusted.DefinitionRefused as exc:
        # Its transaction rolled back having only read; the refusal is recorded in one of its own.
        with turns.transaction() as conn:
            record_definition_refusal(conn, exc, intent, selection)
        raise
    if isinstance(outcome, Denied):
        raise outcome.error
    # The token leaves this function only after the transaction above committed.
    return session


def record_definition_refusal(
    conn: duckdb.DuckDBPyConnection, exc: DefinitionRefused, intent: str, selection: Selection
) -> None:
    """The audit event of an assumption refused because its definition is not the trusted one."""
    from masque.errors import MasqueError
    from masque.trust import rings

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


def decide_assumption(conn: duckdb.DuckDBPyConnection, p: Prepared, selection: Selection) -> Decided | Denied:
    """Decide one assumption on the caller's connection, writing nothing (so several can share a
    transaction: `masque team spawn`). Raises `trusted.DefinitionRefused`, NotFound, ValidationFailed
    or UsageError for a masque that cannot be resolved; returns Denied for a refusal to record."""
    from masque.masques import knowledge as knowledge_mod
    from masque.masques import registry
    from masque.trust import rings

    # A registry masque is resolved here: its recorded stages are read on this connection.
    resolved = registry.resolve(str(p.ref), conn=conn) if p.ready is None else None
    w = p.ready if p.ready is not None else wearable_from_model(resolved)
    if p.ready is not None:  # not resolved through the registry: it may still not claim a pinned definition
        from masque.masques import trusted

        trusted.check_wearable(conn, w.key, w.version, w.content_hash, w.source_path)
    decision = p.early if p.early is not None else w.decide(p.intent)
    pointers = knowledge_mod.resolve(list(w.knowledge), strict=False)
    links = tuple(Knowledge(ptr.uri, ptr.endpoint) for ptr in pointers)
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
        if p.strict_knowledge and unresolved:
            knowledge_mod.resolve(list(w.knowledge), strict=True)
        if p.local and parent is None:
            raise UsageError("--local needs an enclosing session", hint="assume a global session first")
        if p.local and parent is not None and Ring(parent.masque_ring or "admin").rank > w.ring.rank:
            raise Refused(
                f"{w.ref} (ring {w.ring.value}) would widen the enclosing session {parent.session_id} "
                f"(ring {parent.masque_ring}); a local session can only narrow it",
                reason="local_widens",
                hint="pick a masque of the same or an outer ring",
            )
        plan = _plan_ttl(w, who, parent, p.local, p.ttl, now)
    except Refused as exc:
        # Including a bad actor key (then the actor is the name claimed, unverified).
        return Denied(exc, w, p.intent, who, parent, originator, selection.name, decision.pattern)
    assert originator is not None
    return Decided(p, w, resolved, decision, links, who, parent, originator, plan, now)


def record_denial(conn: duckdb.DuckDBPyConnection, d: Denied) -> None:
    """The audit event of a refused assumption: intent_denied, ring_refused or assume_refused."""
    from masque.masques.intent_text import escape_undecodable

    kind = {"intent_": "intent_denied", "ring_refused": "ring_refused"}
    record_event(
        conn,
        next((v for k, v in kind.items() if d.error.reason.startswith(k)), "assume_refused"),
        session_id=None,
        masque=d.w.key,
        version=d.w.version,
        actor=d.who.actor.name if d.who else d.claimed,
        originator=d.originator,
        payload={
            "intent": escape_undecodable(d.intent),
            "reason": d.error.reason,
            "message": str(d.error),
            "pattern": d.pattern,
            "actor_verified": d.who is not None,
            "actor_ring": d.who.actor.ring.value if d.who else None,
            "masque_ring": d.w.ring.value,
            "parent_id": d.parent.session_id if d.parent else None,
        },
    )


def grant(conn: duckdb.DuckDBPyConnection, d: Decided) -> Session:
    """Write a granted assumption — session, credential hash, pin, skills, events — on the caller's
    connection. The returned session carries the token: hand it out only after the transaction commits."""
    from masque.trust.credentials import SESSION_ROLE, broker

    p, w, who, parent, plan, now = d.prepared, d.w, d.who, d.parent, d.plan, d.now
    session = Session(
        session_id=new_id("ses_"),
        masque=w.key,
        version=w.version,
        actor=who.actor.name,
        intent=p.intent,
        started_at=now,
        expires_at=plan.session_expires,
        role=w.vault_role,
        actor_ring=who.actor.ring.value,
        masque_ring=w.ring.value,
        originator=d.originator,
        parent_id=parent.session_id if parent else None,
        scope="local" if p.local else "global",
        holder_pid=p.holder_pid,
        holder_host=socket.gethostname(),
        content_hash=w.content_hash,
        source_path=w.source_path,
        knowledge=d.links,
    )
    meta = {
        "knowledge": [{"uri": k.uri, "endpoint": k.endpoint} for k in d.links],
        "holder_start": p.holder_start,
        "source": w.source,
        "caps": list(plan.caps),
        "acting_via": who.via.value,
        "audited": who.actor.ring is not Ring.ADMIN,
        **(p.metadata or {}),
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
    if d.resolved is not None and not d.resolved.pinned and not _pinned_here(conn, d.resolved):
        # Trust on first use: the first granted assume of a name@version pins its content.
        from masque.masques import trusted

        trusted.register(conn, d.resolved, actor=who.actor.name)
    _record_skills(conn, w)
    started = (
        "mask_session_started",
        session,
        {
            "intent": p.intent,
            "scope": session.scope,
            "parent_id": session.parent_id,
            "role": w.vault_role,
            "accessor": minted.accessor,
            "content_hash": w.content_hash,
            "expires_at": plan.session_expires.isoformat(),
            "pattern": d.decision.pattern,
            "unresolved_knowledge": [k.uri for k in d.links if k.endpoint is None],
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
    return replace(session, token=minted.token, system_prompt=render_prompt(w, p.intent, d.links))


def _record_skills(conn: duckdb.DuckDBPyConnection, w: Wearable) -> None:
    """Record the skills this name@version claims, once: a skill already recorded keeps its row.

    Almost every assume finds them all recorded; reading costs far less than an upsert that changes nothing.
    """
    if not w.skills:
        return
    recorded = conn.execute("SELECT skill FROM masque_skills WHERE masque = ? AND version = ?", [w.key, w.version])
    known = {row[0] for row in recorded.fetchall()}
    missing = [k for k in w.skills if k.uri not in known]
    if missing:
        conn.execute(
            "INSERT INTO masque_skills VALUES "
            + ", ".join("(?, ?, ?, ?)" for _ in missing)
            + " ON CONFLICT DO NOTHING",  # duplicate URIs in one list, or a concurrent writer on PostgreSQL
            [v for k in missing for v in (w.key, w.version, k.uri, k.level.value)],
        )


def _pinned_here(conn: duckdb.DuckDBPyConnection, resolved: Any) -> bool:
    """Pinned earlier in this same transaction (a team with two members of one name@version)."""
    row = conn.execute(
        "SELECT 1 FROM trusted_definitions WHERE masque = ? AND version = ?",
        [resolved.masque.key, resolved.masque.version],
    ).fetchone()
    return row is not None
