"""The bus verbs in one place: post and resolve here; read, watch and the subscriptions re-exported.

`post` checks the caller (masque.bus.access), the contract (masque.bus.contract), then writes the
event and, when a review disagrees with an earlier one, the `conflict` in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from masque.bus import contract
from masque.bus.access import author_of, check_access, clear_cache, member_collaboration, poster_for, selection_or_env
from masque.bus.model import HUMAN, MASQUE, BusEvent, Kind, get_event, insert_event, next_id, team_events
from masque.bus.reading import newest_id, read, watch
from masque.bus.wiring import Wiring, subscribe, subscriptions, wire_team
from masque.durations import utcnow
from masque.errors import NotFound, Refused, UsageError
from masque.store import turns
from masque.store.events import record_event

if TYPE_CHECKING:
    import duckdb

    from masque.trust.rings import Selection

__all__ = [
    "Posted",
    "Wiring",
    "clear_cache",
    "newest_id",
    "post",
    "read",
    "resolve",
    "subscribe",
    "subscriptions",
    "watch",
    "wire_team",
]

MAX_PAYLOAD_BYTES = 256 * 1024  # a bus message is a message, not a file store


@dataclass(frozen=True)
class Posted:
    """A posted event, and the conflict Masque recorded with it (if the post disagreed with another)."""

    event: BusEvent
    conflict: BusEvent | None = None

    def to_json(self) -> dict[str, Any]:
        return {"event": self.event.to_json(), "conflict": self.conflict.to_json() if self.conflict else None}


def _payload(payload: Mapping[str, Any] | None) -> dict[str, Any]:
    body = dict(payload or {})
    size = len(json.dumps(body, ensure_ascii=False).encode("utf-8"))
    if size > MAX_PAYLOAD_BYTES:
        raise UsageError(
            f"the payload is {size:,} bytes; a bus event holds at most {MAX_PAYLOAD_BYTES:,}",
            hint="post a summary and a pointer (a path or URL) to the full text",
        )
    return body


def _settled(events: Sequence[BusEvent]) -> set[str]:
    """Reviews named by conflicts that have a resolution: they no longer disagree with anything."""
    resolved = {e.reply_to for e in events if e.kind is Kind.RESOLUTION}
    return {str(i) for e in events if e.kind is Kind.CONFLICT and e.id in resolved for i in e.payload.get("events", [])}


def _check_resolution(target: BusEvent, body: dict[str, Any], events: Sequence[BusEvent]) -> None:
    earlier = next((e for e in events if e.kind is Kind.RESOLUTION and e.reply_to == target.id), None)
    if earlier is not None:
        by = earlier.author_member or f"{earlier.actor} (a person)"
        raise Refused(
            f"conflict {target.id} was already resolved by {by} in {earlier.id}",
            reason="already_resolved",
            hint="the history keeps both sides and the resolution: `masque bus read TEAM --kind resolution`",
        )
    if body.get("decision") not in contract.DECISIONS:
        raise UsageError(
            f"a resolution needs a decision, one of: {', '.join(contract.DECISIONS)}",
            hint='pass --decision accept|reject|revise (or {"decision": ...} in --data)',
        )
    prevails = body.get("prevails")
    if prevails is not None and prevails not in target.payload.get("events", []):
        raise UsageError(
            f"{prevails} is not one of the events of conflict {target.id}",
            hint=f"choose one of: {', '.join(target.payload.get('events', []))}",
        )


def post(
    team: str,
    kind: Kind | str,
    *,
    payload: Mapping[str, Any] | None = None,
    member: str | None = None,
    reply_to: str | None = None,
    request_revision: bool = False,
    selection: Selection | None = None,
) -> Posted:
    """Post one event to a team's bus; a review that disagrees with an earlier one records a conflict too."""
    kind = kind if isinstance(kind, Kind) else Kind.parse(kind)
    body = _payload(payload)
    if request_revision and kind is not Kind.CRITIQUE:
        raise UsageError("--request-revision goes with --kind critique", hint="a critique asks for a revision")
    selection = selection_or_env(selection)
    turns.prepare("masque.masques.registry")
    with turns.transaction() as conn:
        access = check_access(conn, team, selection)
        the_team = access.team
        if the_team.status != "active":
            raise Refused(
                f"team {the_team.name} was {the_team.status}; its bus is read-only now",
                reason="team_released",
                hint="`masque bus read` still shows its history",
            )
        author = author_of(conn, access, member)
        # Only reviews and resolutions need the author's capabilities: resolve its masque file just for those.
        needs_block = author is not None and kind in contract.NEEDS
        poster = poster_for(the_team, author, member_collaboration(conn, author) if author and needs_block else None)
        if kind is Kind.CRITIQUE:
            body["verdict"] = contract.critique_verdict(body, request_revision)
        contract.check_capability(poster, kind, request_revision=body.get("verdict") == "revise")
        target = get_event(conn, reply_to) if reply_to else None
        if reply_to and target is None:
            raise NotFound(f"no bus event {reply_to!r}", hint="`masque bus read TEAM` lists the event ids")
        contract.check_reply(kind, target, the_team.id)
        events = team_events(conn, the_team.id)
        contract.check_lineage(kind, poster, target, {e.id: e for e in events})
        if kind is Kind.RESOLUTION:
            assert target is not None
            _check_resolution(target, body, events)
        now = utcnow()
        event = BusEvent(
            next_id(conn),
            the_team.id,
            kind,
            f"{author.member if author else HUMAN}.{kind.value}",
            author.session_id if author else None,
            author.member if author else None,
            access.acting.actor.name,
            reply_to,
            body,
            now,
        )
        insert_event(conn, event)
        conflict = _surface_conflict(conn, event, events)
        if kind is Kind.RESOLUTION:
            record_event(
                conn,
                "bus_conflict_resolved",
                session_id=event.author_session,
                actor=event.actor,
                originator=event.actor,
                payload={"team": the_team.id, "conflict": reply_to, "resolution": event.id, **body},
            )
    return Posted(event, conflict)


def _surface_conflict(conn: duckdb.DuckDBPyConnection, event: BusEvent, events: Sequence[BusEvent]) -> BusEvent | None:
    """Record a `conflict` event when `event` disagrees with earlier unsettled reviews (same transaction)."""
    root, earlier = contract.conflicting(event, events, _settled(events))
    if root is None or not earlier:
        return None
    conflict = BusEvent(
        next_id(conn),
        event.team_id,
        Kind.CONFLICT,
        f"{MASQUE}.{Kind.CONFLICT.value}",
        None,
        None,
        event.actor,
        root.id,
        {
            "events": [e.id for e in earlier] + [event.id],
            "proposal": root.id,
            "targets": sorted({str(e.reply_to) for e in [*earlier, event]}),
            "reason": contract.conflict_reason(event, earlier),
        },
        event.ts,
    )
    insert_event(conn, conflict)
    return conflict


def resolve(
    team: str,
    conflict_id: str,
    *,
    decision: str,
    notes: str | None = None,
    prevails: str | None = None,
    member: str | None = None,
    selection: Selection | None = None,
) -> Posted:
    """Record the one resolution of a conflict: by the arbiter member (or one with can_arbitrate), or a person."""
    body: dict[str, Any] = {"decision": decision.strip().lower()}
    if notes:
        body["notes"] = notes
    if prevails:
        body["prevails"] = prevails
    return post(team, Kind.RESOLUTION, payload=body, member=member, reply_to=conflict_id, selection=selection)
