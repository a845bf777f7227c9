"""The tool bodies: plain functions over the same library calls as the CLI, so every rule is the CLI's.

Each takes the caller's proven `Selection` and its `Connection` (the worn session) and returns a typed
result (`masque.mcp.results`). They block (DuckDB, LanceDB): `masque.mcp.server` runs them in a worker
thread. A refusal is raised as the CLI raises it; the server turns it into an MCP tool error carrying
the same `reason` and exit code.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from masque.errors import Refused
from masque.mcp import results

if TYPE_CHECKING:
    from masque.mcp.connections import Connection
    from masque.trust.rings import Selection


def catalog() -> results.Catalog:
    """`masque list --json`."""
    from masque.masques import registry

    entries = registry.available()
    return results.Catalog(
        search_path=[str(d.path) for d in registry.search_dirs()],
        masques=[
            results.CatalogEntry(
                name=e.name,
                version=e.version,
                stage=e.masque.stage.value if e.masque else None,
                ring=e.masque.ring.value if e.masque else None,
                path=str(e.path),
                source=str(e.source),
                status=e.status.value,
                active=e.active,
                error=e.error,
            )
            for e in entries
        ],
    )


def inspect_masque(ref: str) -> results.Inspected:
    """`masque show REF --json`."""
    from masque.masques import knowledge, registry

    resolved = registry.resolve(ref)
    shown = registry.resolved_to_dict(resolved)
    pointers = knowledge.resolve(resolved.masque.knowledge)
    return results.Inspected(
        ref=shown["ref"],
        path=shown["path"],
        source=shown["source"],
        sha256=shown["sha256"],
        warnings=shown["warnings"],
        masque=shown["masque"],
        knowledge=[p.to_dict() for p in pointers],
    )


def check(ref: str, intent: str) -> results.Decision:
    """`masque check REF --intent ... --json`: decides, records nothing. A refusal is an answer, not an error."""
    from masque.masques import registry
    from masque.masques.intent import Policy
    from masque.masques.intent_text import escape_undecodable

    resolved = registry.resolve(ref)
    decision = Policy.compile(resolved.masque.intent).decide(intent)
    return results.Decision(
        ref=resolved.ref,
        intent=escape_undecodable(intent),
        allowed=decision.allowed,
        message=decision.message,
        pattern=decision.pattern,
        refusal_reason=None if decision.allowed else decision.refusal_reason,
        exit_code=0 if decision.allowed else 3,
    )


def don(
    conn: Connection, selection: Selection, ref: str, intent: str, ttl: str | None, return_token: bool
) -> results.Donned:
    """`masque assume`, held by this connection: one session at a time, its token kept server-side."""
    with conn.wearing_lock:
        return _don(conn, selection, ref, intent, ttl, return_token)


def _don(
    conn: Connection, selection: Selection, ref: str, intent: str, ttl: str | None, return_token: bool
) -> results.Donned:
    from masque.sessions import lifecycle as sessions

    if conn.worn is not None and not _still_held(conn):
        conn.worn = None  # revoked or expired from outside: it no longer blocks a new one
    if conn.worn is not None:
        raise Refused(
            f"this connection already wears {conn.worn.ref} (session {conn.worn.session_id})",
            reason="already_wearing",
            hint="call `doff` first; one MCP connection wears one masque at a time",
        )
    # The holder is this server: a server killed with -9 leaves a session `masque sessions --stale` sweeps.
    s = sessions.assume(
        ref, intent, selection=selection, ttl=ttl, holder_pid=os.getpid(), metadata={"mcp": conn.transport}
    )
    conn.worn = s
    conn.last_session_id = s.session_id
    lens, context = _lens_and_context(s.ref)
    return results.Donned(
        session_id=s.session_id,
        ref=s.ref,
        actor=s.actor,
        intent=s.intent,
        expires_at=_iso(s.expires_at),
        credential_expires_at=_iso(s.credential_expires_at),
        system_prompt=s.system_prompt or "",
        lens=lens,
        context=context,
        knowledge=[{"uri": k.uri, "endpoint": k.endpoint} for k in s.knowledge],
        token=s.token if return_token else None,
    )


def _still_held(conn: Connection) -> bool:
    """Whether the worn session's credential still verifies; if not, its session is ended (abandoned)."""
    from masque import api

    if conn.worn is None or conn.worn.token is None or api.verify(conn.worn.token).valid:
        return True
    from masque.errors import MasqueError

    try:
        conn.abandon()  # a no-op for a session already ended; ends one whose credential merely expired
    except MasqueError:
        conn.worn = None
    return False


def _lens_and_context(ref: str) -> tuple[str, str | None]:
    from masque import api

    m = api.load(ref)
    return m.lens(), m.context()


def _iso(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def doff(conn: Connection, score: str | None, notes: str | None) -> results.Doffed:
    """`masque release`: ends the worn session (and its chain), revokes its credential, scores it if asked."""
    from masque.sessions import lifecycle as sessions

    with conn.wearing_lock:
        s = conn.wearing()
        ended = sessions.release(s.session_id, score=score, notes=notes, selection=conn.worn_selection())
        conn.worn = None
    return results.Doffed(
        session_id=s.session_id,
        ref=s.ref,
        status=ended.session.status,
        already_ended=ended.already_ended,
        ended=list(ended.ended),
        revoked=list(ended.revoked),
        score=score,
    )


def whoami(conn: Connection, selection: Selection) -> results.WhoAmI:
    """The acting actor and the session this connection wears (never the server environment's)."""
    from masque.sessions.queries import show
    from masque.trust import rings

    who = rings.acting(selection)
    session = None
    if conn.worn is not None:
        # As the caller (who may see its own sessions): the worn token may have been revoked meanwhile.
        session = show(conn.worn.session_id, selection=selection).session.to_dict()
    return results.WhoAmI(
        actor=who.actor.name,
        ring=who.actor.ring.value,
        via=who.via.value,
        transport=conn.transport,
        session=session,
    )


def recall(conn: Connection, query: str, k: int) -> results.Memories:
    """`masque memory search` in the worn masque's shard, as its session."""
    from masque.memory.search import find

    found = find(query, None, k=k, selection=conn.worn_selection())
    data = found.to_json()
    return results.Memories(masque=data["masque"], access=data["access"], results=data["results"])


def remember(conn: Connection, text: str, tags: list[str], ttl: str | None) -> results.Remembered:
    """`masque memory add` to the worn masque's shard, tagged with its session."""
    from masque.durations import parse_duration
    from masque.memory import ops

    added = ops.add(
        [text], None, tags=tuple(tags), ttl=parse_duration(ttl) if ttl else None, selection=conn.worn_selection()
    )
    return results.Remembered(masque=added.masque, stored=added.stored, ids=list(added.ids), reason=added.reason)


def score(conn: Connection, selection: Selection, symbol: str, notes: str | None) -> results.Scored:
    """`masque score`: the worn session, else the one this connection last doffed."""
    from masque.errors import UsageError
    from masque.reflection.scoring import score_session

    sid = conn.worn.session_id if conn.worn is not None else conn.last_session_id
    if sid is None:
        raise UsageError("this connection has no session to score", hint="`don` a masque first")
    # The worn session's token proves its actor; a doffed one is scored as the connection's actor.
    row = score_session(sid, symbol, notes, selection=conn.worn_selection() if conn.worn else selection)
    return results.Scored(
        session_id=row.session_id, symbol=row.symbol.value, value=row.value, notes=row.notes, scored_by=row.scored_by
    )


def stats(
    selection: Selection,
    masque: str | None,
    skill: str | None,
    ring: str | None,
    session: str | None,
    since: str | None,
    until: str | None,
    actor: str | None,
    top: int,
) -> results.Stats:
    """`masque stats --json`: one level, as the acting actor sees it."""
    from masque.errors import UsageError
    from masque.reflection.levels import Filters, report
    from masque.reflection.levels import Selection as Level

    if not 1 <= top <= 100:
        raise UsageError(f"top must be 1..100, got {top}")
    found = report(Level.choose(masque=masque, skill=skill, ring=ring, session=session),
                   Filters.parse(since, until, actor), top=top, acting=selection)  # fmt: skip
    return results.Stats(report=found.to_json())
