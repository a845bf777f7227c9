"""The bus verbs: post, resolve, read, watch, subscribe, and wiring a team's subscriptions.

Every verb takes a `Selection` (what the caller presented) and proves who is calling with
`rings.resolve_acting`, then applies the team rule (docs/bus.md, "Who may post and read"):

- a caller acting through a session token (MASQUE_TOKEN, e.g. inside a member's `masque exec`) is that
  session, which must be a member of the team (else `not_a_member`); it posts as that member only;
- a caller acting through an actor key (or as the founder) must be the team's actor, who wears every
  member session, or an admin (else `not_team_actor`); it posts as a member with `member=NAME`, or as
  a person without one.

An author is never taken from a bare session id: only a token proves a session.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from masque import config
from masque.bus import contract
from masque.bus.model import (
    HUMAN,
    ID_PREFIX,
    MASQUE,
    BusEvent,
    Kind,
    all_subscriptions,
    get_event,
    insert_event,
    insert_subscription,
    next_id,
    subscription_patterns,
    team_events,
)
from masque.durations import utcnow
from masque.errors import MasqueError, NotFound, Refused, UsageError
from masque.model import Collaboration, Masque, Ring
from masque.store import turns
from masque.store.events import record_event
from masque.teams.model import Member, Team, find_team
from masque.trust import rings

if TYPE_CHECKING:
    import duckdb

    from masque.trust.rings import Acting, Selection

MAX_PAYLOAD_BYTES = 256 * 1024  # a bus message is a message, not a file store
LIVE_SESSION = ("active", "revoking")


@dataclass(frozen=True)
class Posted:
    """A posted event, and the conflict Masque recorded with it (if the post disagreed with another)."""

    event: BusEvent
    conflict: BusEvent | None = None

    def to_json(self) -> dict[str, Any]:
        return {"event": self.event.to_json(), "conflict": self.conflict.to_json() if self.conflict else None}


@dataclass(frozen=True)
class Wiring:
    """One subscription considered for a member: recorded (`wired`) or skipped, with why."""

    member: str
    pattern: str
    wired: bool
    note: str | None = None  # why it was skipped, or "already subscribed"

    def to_json(self) -> dict[str, Any]:
        return {"member": self.member, "pattern": self.pattern, "wired": self.wired, "note": self.note}


@dataclass(frozen=True)
class _Access:
    acting: Acting
    team: Team
    own: Member | None  # the member whose token the caller presented


def _selection(selection: Selection | None) -> Selection:
    return selection if selection is not None else rings.selection_from_env()


def _access(conn: duckdb.DuckDBPyConnection, team_ref: str, selection: Selection | None) -> _Access:
    acting = rings.resolve_acting(conn, _selection(selection))
    team = find_team(conn, team_ref)
    if acting.via is rings.ActingVia.SESSION:
        own = team.member_of_session(acting.session_id or "")
        if own is None:
            raise Refused(
                f"session {acting.session_id} is not a member of team {team.name}",
                reason="not_a_member",
                hint="use a member's token (inside its `masque exec`), or the team actor's key with --member",
            )
        return _Access(acting, team, own)
    if acting.actor.name != team.actor and acting.actor.ring is not Ring.ADMIN:
        raise Refused(
            f"actor {acting.actor.name!r} is neither the actor of team {team.name} ({team.actor}) nor an admin",
            reason="not_team_actor",
            hint="the team's bus is for its members, the actor who spawned it, and admins",
        )
    return _Access(acting, team, None)


def _is_live(conn: duckdb.DuckDBPyConnection, session_id: str) -> bool:
    row = conn.execute("SELECT status, expires_at FROM sessions WHERE id = ?", [session_id]).fetchone()
    if row is None:
        return False
    return row[0] in LIVE_SESSION and (row[1] is None or row[1] > utcnow())


def _author(conn: duckdb.DuckDBPyConnection, access: _Access, member: str | None) -> Member | None:
    """The member a post is by (None: a person), checked against how the caller proved itself."""
    if access.own is not None:
        if member is not None and member != access.own.member:
            raise Refused(
                f"this token is member {access.own.member!r}'s; it cannot post as {member!r}",
                reason="not_that_member",
                hint="drop --member, or post from that member's own session",
            )
        return access.own
    if member is None:
        return None
    chosen = access.team.member(member)
    if not _is_live(conn, chosen.session_id):
        raise Refused(
            f"member {member!r} of team {access.team.name} has ended (session {chosen.session_id})",
            reason="member_ended",
            hint="a member posts only while its session is live",
        )
    return chosen


_collaborations: dict[str, Collaboration | None] = {}


def _collaboration(conn: duckdb.DuckDBPyConnection, member: Member) -> Collaboration | None:
    """The member's masque's collaboration block; a masque that no longer resolves declares nothing."""
    from masque.masques import registry

    ref = f"{member.masque}@{member.version}"
    if ref not in _collaborations:
        try:
            _collaborations[ref] = registry.resolve(ref, conn=conn).masque.collaboration
        except MasqueError:
            return None  # not cached: the file may come back
    return _collaborations[ref]


def clear_cache() -> None:
    """Forget masques' collaboration blocks (tests and long-lived processes that rewrite files)."""
    _collaborations.clear()


def _poster(team: Team, member: Member | None, collaboration: Collaboration | None) -> contract.Poster:
    if member is None:
        return contract.Poster(None)
    arbiter = team.arbiter is not None and team.arbiter in (member.member, member.masque)
    return contract.Poster(member.member, f"{member.masque}@{member.version}", collaboration, arbiter)


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
    selection = _selection(selection)
    turns.prepare("masque.masques.registry")
    with turns.transaction() as conn:
        access = _access(conn, team, selection)
        the_team = access.team
        if the_team.status != "active":
            raise Refused(
                f"team {the_team.name} was {the_team.status}; its bus is read-only now",
                reason="team_released",
                hint="`masque bus read` still shows its history",
            )
        author = _author(conn, access, member)
        # Only reviews and resolutions need the author's capabilities: resolve its masque file just for those.
        needs_block = author is not None and kind in contract.NEEDS
        poster = _poster(the_team, author, _collaboration(conn, author) if author and needs_block else None)
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


# --- subscriptions ----------------------------------------------------------------------------------


def _collaboration_of(given: object) -> Collaboration | None:
    """The block itself, a model Masque's, or the one inside the API's ModelMasque (`.resolved.masque`)."""
    if given is None or isinstance(given, Collaboration):
        return given
    model = getattr(getattr(given, "resolved", None), "masque", given)
    found = getattr(model, "collaboration", None)
    return found if isinstance(found, Collaboration) else None


def wire_team(
    conn: duckdb.DuckDBPyConnection,
    team: Team,
    masques_by_member: Mapping[str, Masque | Collaboration | None],
) -> list[Wiring]:
    """Record each member's compatible subscriptions from its masque's `collaboration.subscribes`.

    Call inside the transaction that creates the team. Patterns the member could not answer (see
    `contract.subscription_problem`) are skipped and returned with the reason, not recorded.
    """
    result = []
    now = utcnow()
    for m in team.members:
        given = masques_by_member.get(m.member)
        collab = _collaboration_of(given)
        poster = _poster(team, m, collab)
        for raw in collab.subscribes if collab else ():
            problem = None
            try:
                pattern = contract.check_pattern(raw)
            except UsageError as exc:
                pattern, problem = raw, str(exc)
            problem = problem or contract.subscription_problem(poster, pattern)
            if problem:
                result.append(Wiring(m.member, pattern, False, problem))
                continue
            added = insert_subscription(conn, team.id, m.member, pattern, now)
            result.append(Wiring(m.member, pattern, True, None if added else "already subscribed"))
    return result


def _ensure_wired(conn: duckdb.DuckDBPyConnection, team: Team, member: Member) -> None:
    """Wire a member's masque subscriptions the first time they are needed (teams spawned before wiring)."""
    if subscription_patterns(conn, team.id, member.member):
        return
    one = Team(**{**team.__dict__, "members": (member,)})
    wire_team(conn, one, {member.member: _collaboration(conn, member)})


def subscribe(team: str, member: str | None, pattern: str, *, selection: Selection | None = None) -> Wiring:
    """Subscribe a member to a topic pattern; refused (`capability_missing`) when it could not answer it."""
    pattern = contract.check_pattern(pattern)
    selection = _selection(selection)
    turns.prepare("masque.masques.registry")
    with turns.transaction() as conn:
        access = _access(conn, team, selection)
        if access.own is None and member is None:
            raise UsageError("say which member subscribes", hint="pass --member NAME")
        target = _author(conn, access, member)
        assert target is not None
        _ensure_wired(conn, access.team, target)
        poster = _poster(access.team, target, _collaboration(conn, target))
        problem = contract.subscription_problem(poster, pattern)
        if problem:
            raise Refused(
                problem,
                reason="capability_missing",
                hint="subscribe to what the member can answer, or give its masque the capability",
            )
        added = insert_subscription(conn, access.team.id, target.member, pattern, utcnow())
        if added:
            record_event(
                conn,
                "bus_subscribed",
                session_id=target.session_id,
                actor=access.acting.actor.name,
                originator=access.acting.actor.name,
                payload={"team": access.team.id, "member": target.member, "pattern": pattern},
            )
    return Wiring(target.member, pattern, True, None if added else "already subscribed")


def subscriptions(team: str, *, selection: Selection | None = None) -> dict[str, list[str]]:
    """Each member's topic patterns (wiring masque subscriptions not yet recorded)."""
    selection = _selection(selection)
    turns.prepare("masque.masques.registry")
    with turns.transaction() as conn:
        access = _access(conn, team, selection)
        for m in access.team.members:
            _ensure_wired(conn, access.team, m)
        found: dict[str, list[str]] = {m.member: [] for m in access.team.members}
        for member, pattern, _ in all_subscriptions(conn, access.team.id):
            found.setdefault(member, []).append(pattern)
    return found


# --- reading ----------------------------------------------------------------------------------------


def _check_since(since: str | None) -> None:
    if since is not None and not since.startswith(ID_PREFIX):
        raise UsageError(f"--since takes a bus event id, got {since!r}", hint="ids look like bus_01J...")


def read(
    team: str,
    *,
    member: str | None = None,
    since: str | None = None,
    kinds: Sequence[Kind | str] = (),
    selection: Selection | None = None,
) -> list[BusEvent]:
    """A team's events in posting order; with `member`, only the topics that member subscribes to."""
    wanted = [k.value if isinstance(k, Kind) else Kind.parse(k).value for k in kinds]
    _check_since(since)
    selection = _selection(selection)
    with turns.connect(read_only=True) as conn:
        access = _access(conn, team, selection)
        listener = access.team.member(member) if member is not None else None
        patterns = subscription_patterns(conn, access.team.id, listener.member) if listener else []
        if listener is None or patterns:
            events = team_events(conn, access.team.id, since=since, kinds=wanted)
            return [e for e in events if listener is None or contract.topic_matches(e.topic, patterns)]
    # The member has no subscriptions recorded yet: wire its masque's, then read (one write, once).
    turns.prepare("masque.masques.registry")
    with turns.transaction() as conn:
        access = _access(conn, team, selection)
        listener = access.team.member(str(member))
        _ensure_wired(conn, access.team, listener)
        patterns = subscription_patterns(conn, access.team.id, listener.member)
        events = team_events(conn, access.team.id, since=since, kinds=wanted)
    return [e for e in events if contract.topic_matches(e.topic, patterns)]


def newest_id(team: str, *, selection: Selection | None = None) -> str | None:
    """The id of a team's newest event (where `watch` starts by default)."""
    with turns.connect(read_only=True) as conn:
        access = _access(conn, team, _selection(selection))
        row = conn.execute("SELECT max(id) FROM mask_events WHERE team_id = ?", [access.team.id]).fetchone()
    return str(row[0]) if row and row[0] else None


_Stamp = tuple[tuple[int, int, int] | None, ...]


def _store_stamp() -> _Stamp:
    """What the store's files look like on disk: any commit changes it (its WAL grows, or a checkpoint rewrites it)."""
    path = config.store_path()
    stamp: list[tuple[int, int, int] | None] = []
    for file in (path, path.with_name(path.name + ".wal")):
        try:
            st = file.stat()
        except OSError:
            stamp.append(None)
            continue
        stamp.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(stamp)


FULL_POLL_EVERY = 5.0  # seconds: read (and re-check the caller's right to) even when the files look unchanged


def watch(
    team: str,
    *,
    member: str | None = None,
    since: str | None = None,
    from_start: bool = False,
    kinds: Sequence[Kind | str] = (),
    interval: float = 0.25,
    selection: Selection | None = None,
) -> Iterator[BusEvent]:
    """Yield a team's events as they are posted, forever (the caller stops).

    Each poll is one short read: no connection is held between polls, so writers are never locked
    out. Opening the store costs tens of milliseconds, so a poll first compares the store's files
    with the last look (a stat) and reads only when something was committed, or every
    FULL_POLL_EVERY seconds; every read checks the caller's right again (a revoked token stops it).
    """
    import duckdb

    _check_since(since)
    selection = _selection(selection)
    last = since if since or from_start else newest_id(team, selection=selection)
    seen: _Stamp | None = None
    read_at = 0.0
    try:
        while True:
            stamp = _store_stamp()  # before reading: a commit during the read shows at the next poll
            if stamp != seen or time.monotonic() - read_at >= FULL_POLL_EVERY:
                seen, read_at = stamp, time.monotonic()
                for event in read(team, member=member, since=last, kinds=kinds, selection=selection):
                    last = event.id
                    yield event
            time.sleep(interval)
    except duckdb.InterruptException:  # Ctrl-C while DuckDB ran a query: the same as anywhere else
        raise KeyboardInterrupt from None
