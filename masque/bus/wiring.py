"""Subscriptions: which topics each member hears, wired from masque files or added by `bus subscribe`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from masque.bus import contract
from masque.bus.access import author_of, check_access, member_collaboration, poster_for, selection_or_env
from masque.bus.model import all_subscriptions, insert_subscription, subscription_patterns
from masque.durations import utcnow
from masque.errors import Refused, UsageError
from masque.model import Collaboration, Masque
from masque.store import turns
from masque.store.events import record_event
from masque.teams.model import Member, Team

if TYPE_CHECKING:
    import duckdb

    from masque.trust.rings import Selection


@dataclass(frozen=True)
class Wiring:
    """One subscription considered for a member: recorded (`wired`) or skipped, with why."""

    member: str
    pattern: str
    wired: bool
    note: str | None = None  # why it was skipped, or "already subscribed"

    def to_json(self) -> dict[str, Any]:
        return {"member": self.member, "pattern": self.pattern, "wired": self.wired, "note": self.note}


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
        poster = poster_for(team, m, collab)
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


def ensure_wired(conn: duckdb.DuckDBPyConnection, team: Team, member: Member) -> None:
    """Wire a member's masque subscriptions the first time they are needed (teams spawned before wiring)."""
    if subscription_patterns(conn, team.id, member.member):
        return
    one = Team(**{**team.__dict__, "members": (member,)})
    wire_team(conn, one, {member.member: member_collaboration(conn, member)})


def subscribe(team: str, member: str | None, pattern: str, *, selection: Selection | None = None) -> Wiring:
    """Subscribe a member to a topic pattern; refused (`capability_missing`) when it could not answer it."""
    pattern = contract.check_pattern(pattern)
    selection = selection_or_env(selection)
    turns.prepare("masque.masques.registry")
    with turns.transaction() as conn:
        access = check_access(conn, team, selection)
        if access.own is None and member is None:
            raise UsageError("say which member subscribes", hint="pass --member NAME")
        target = author_of(conn, access, member)
        assert target is not None
        ensure_wired(conn, access.team, target)
        poster = poster_for(access.team, target, member_collaboration(conn, target))
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
    selection = selection_or_env(selection)
    turns.prepare("masque.masques.registry")
    with turns.transaction() as conn:
        access = check_access(conn, team, selection)
        for m in access.team.members:
            ensure_wired(conn, access.team, m)
        found: dict[str, list[str]] = {m.member: [] for m in access.team.members}
        for member, pattern, _ in all_subscriptions(conn, access.team.id):
            found.setdefault(member, []).append(pattern)
    return found
