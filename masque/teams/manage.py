"""Listing, showing and releasing teams, and the short-lived member credential `exec --team` hands out.

Release ends every live member session (and what is chained below each) in ONE transaction, through
`masque.sessions.end` like `masque release`, and records one team outcome: `teams.score`/`notes` and a
`team_released` event. It is allowed only to an actor who may end every member session (its own
actor, a more trusted ring, or an admin); releasing a released team changes nothing and says so.
"""

from __future__ import annotations

import builtins
import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from masque.durations import as_utc, utcnow
from masque.enums import Ring
from masque.errors import Refused
from masque.store import turns
from masque.store.events import record_event
from masque.teams.model import Member, Team, find_team, list_teams, mark_released
from masque.teams.views import require_visible, team_dict, visible

if TYPE_CHECKING:
    import duckdb

    from masque.sessions.model import Session
    from masque.trust.credentials import Minted
    from masque.trust.rings import Acting, Selection


# Imported before taking the store's turn, which is then held only for the reads.
_READS = ("masque.sessions.model", "masque.trust.rings")


@dataclass(frozen=True)
class TeamView:
    """A team with the current status of each member session."""

    team: Team
    sessions: dict[str, Session] = field(default_factory=dict)  # member name -> session

    def to_dict(self) -> dict[str, Any]:
        return team_dict(self.team, {s.session_id: s.status for s in self.sessions.values()})


@dataclass(frozen=True)
class Released:
    team: Team
    already_released: bool = False
    ended: tuple[str, ...] = ()  # session ids ended now (members and what was chained below them)
    revoked: tuple[str, ...] = ()  # credential accessors revoked now

    def to_dict(self) -> dict[str, Any]:
        return {
            **team_dict(self.team),
            "already_released": self.already_released,
            "ended": builtins.list(self.ended),
            "revoked": builtins.list(self.revoked),
        }


def _who(conn: duckdb.DuckDBPyConnection, selection: Selection | None) -> Acting:
    from masque.trust import rings

    return rings.resolve_acting(conn, selection or rings.selection_from_env())


def _sessions(conn: duckdb.DuckDBPyConnection, team: Team) -> dict[str, Session]:
    from masque.sessions.model import load

    return {m.member: load(conn, m.session_id) for m in team.members}


def list(*, selection: Selection | None = None, include_released: bool = False) -> builtins.list[TeamView]:
    """Teams the caller may see, newest first (active ones only unless `include_released`)."""
    turns.prepare(*_READS)
    with turns.connect(read_only=True) as conn:
        who = _who(conn, selection)
        return [
            TeamView(t, _sessions(conn, t))
            for t in list_teams(conn, include_released=include_released)
            if visible(conn, who, t)
        ]


def show(ref: str, *, selection: Selection | None = None) -> TeamView:
    """One team (by id or name) with its members' session statuses."""
    turns.prepare(*_READS)
    with turns.connect(read_only=True) as conn:
        who = _who(conn, selection)
        team = find_team(conn, ref)
        require_visible(conn, who, team, ref)
        return TeamView(team, _sessions(conn, team))


def release(
    ref: str, *, selection: Selection | None = None, score: str | None = None, notes: str | None = None
) -> Released:
    """End every live member session and record the team's one outcome (score + - / * e, notes)."""
    from masque.sessions import end
    from masque.sessions.model import LIVE, load

    symbol = None
    if score is not None:
        from masque.reflection.scoring import parse_symbol

        symbol = parse_symbol(score).value
    end.prepare_ending()
    with turns.transaction() as conn:
        who = _who(conn, selection)
        team = find_team(conn, ref)
        require_visible(conn, who, team, ref)
        members = _sessions(conn, team)
        for member, s in members.items():
            if not end.may_end(who, s):
                raise Refused(
                    f"actor {who.actor.name!r} (ring {who.actor.ring.value}) cannot release team {team.name}: "
                    f"member {member} is session {s.session_id} of actor {s.actor!r}",
                    reason="ring_refused",
                    hint="a team is released by its actor, a more trusted ring, or an admin",
                )
        if team.status != "active":
            return Released(team, already_released=True)
        ended: builtins.list[str] = []
        revoked: builtins.list[str] = []
        for s in members.values():
            current = load(conn, s.session_id)  # may have ended as part of an earlier member's chain
            if current.status in LIVE:
                e, r = end.end_session(conn, current, reason="team_released", by=who.actor.name)
                ended += e
                revoked += r
        now = utcnow()
        mark_released(conn, team.id, at=now, score=symbol, notes=notes)
        record_event(
            conn,
            "team_released",
            actor=who.actor.name,
            originator=team.actor,
            payload={
                "team_id": team.id,
                "name": team.name,
                "score": symbol,
                "notes": notes,
                "ended": ended,
                "revoked": revoked,
            },
        )
        after = find_team(conn, team.id)
    return Released(after, False, tuple(ended), tuple(revoked))


# --- a member credential for `masque exec --team` ------------------------------------------------


@dataclass(frozen=True)
class MemberCredential:
    """A fresh credential for one member session, for one child process; revoke it when the child exits."""

    team: Team
    member: Member
    session: Session
    minted: Minted = field(repr=False)


def member_credentials(
    ref: str, members: builtins.list[str] | None, *, selection: Selection | None = None
) -> builtins.list[MemberCredential]:
    """Mint one credential per member (all members when `members` is None) of an active team.

    Tokens are stored only hashed, so the member's original token cannot be handed out again; a new
    credential of the same session is minted instead, expiring no later than the member's own. Only the
    team's actor (proven) or an admin may.
    """
    from masque.sessions.events import record_session_events
    from masque.sessions.model import LIVE, load
    from masque.trust.credentials import SESSION_ROLE, broker

    turns.prepare("masque.trust.credentials", "masque.sessions.events")
    with turns.transaction() as conn:
        who = _who(conn, selection)
        team = find_team(conn, ref)
        require_visible(conn, who, team, ref)
        if who.actor.name != team.actor and who.actor.ring is not Ring.ADMIN:
            raise Refused(
                f"actor {who.actor.name!r} cannot run team {team.name}'s members: it is actor {team.actor!r}'s team",
                reason="ring_refused",
                hint="`masque exec --team` is for the actor that spawned the team, or an admin",
            )
        if team.status != "active":
            raise Refused(
                f"team {team.name} ({team.id}) was released; its members cannot run",
                reason="team_released",
                hint="spawn a new team (`masque team spawn`)",
            )
        chosen = [team.member(m) for m in members] if members else builtins.list(team.members)
        out: builtins.list[MemberCredential] = []
        now = utcnow()
        for m in chosen:
            s = load(conn, m.session_id)
            if s.status not in LIVE:
                raise Refused(
                    f"member {m.member} of team {team.name}: session {s.session_id} has ended ({s.status})",
                    reason="member_ended",
                    hint="release the team and spawn a new one",
                )
            expires, max_expires = _member_expiry(conn, s.session_id)
            if expires is None or max_expires is None or expires <= now:
                raise Refused(
                    f"member {m.member} of team {team.name}: its credential has expired or was revoked",
                    reason="token_expired",
                    hint="spawn a new team (`masque team release` this one first)",
                )
            minted = broker().mint(
                conn,
                session_id=s.session_id,
                role=s.role or SESSION_ROLE,
                actor=s.actor,
                issued_at=now,
                expires_at=expires,
                max_expires_at=max_expires,
            )
            record_session_events(
                conn,
                [
                    (
                        "credential_minted",
                        s,
                        {
                            "accessor": minted.accessor,
                            "role": minted.role,
                            "expires_at": minted.expires_at.isoformat(),
                            "max_expires_at": minted.max_expires_at.isoformat(),
                            "for": "exec",
                            "team_id": team.id,
                            "member": m.member,
                            "by": who.actor.name,
                        },
                    )
                ],
            )
            out.append(MemberCredential(team, m, s, minted))
    return out


def _member_expiry(conn: duckdb.DuckDBPyConnection, session_id: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The latest expiry (and maximum) among the session's live credentials: the new one's bounds."""
    row = conn.execute(
        "SELECT max(expires_at), max(max_expires_at) FROM credentials WHERE session_id = ? AND revoked_at IS NULL",
        [session_id],
    ).fetchone()
    return (as_utc(row[0]), as_utc(row[1])) if row else (None, None)


def revoke_credentials(accessors: builtins.list[str], *, reason: str = "exited") -> None:
    """Revoke the exec credentials once their children exit (the member sessions stay open)."""
    from masque.trust.accessors import revoke_minted

    if not accessors:
        return
    with turns.transaction() as conn:
        for accessor in accessors:
            revoke_minted(conn, accessor, reason=reason, by=None)


def live_sessions(session_ids: builtins.list[str]) -> set[str]:
    """Which of these sessions are still `active` (not revoking or ended): one short read."""
    if not session_ids:
        return set()
    with turns.connect(read_only=True) as conn:
        rows = conn.execute(
            f"SELECT id FROM sessions WHERE status = 'active' AND id IN ({', '.join('?' for _ in session_ids)})",
            session_ids,
        ).fetchall()
    return {str(r[0]) for r in rows}
