"""Who is calling the bus, and as whom: the team rule every bus verb applies.

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

from dataclasses import dataclass
from typing import TYPE_CHECKING

from masque.bus import contract
from masque.durations import utcnow
from masque.errors import MasqueError, Refused
from masque.model import Collaboration, Ring
from masque.teams.model import Member, Team, find_team
from masque.trust import rings

if TYPE_CHECKING:
    import duckdb

    from masque.trust.rings import Acting, Selection

LIVE_SESSION = ("active", "revoking")


@dataclass(frozen=True)
class Access:
    acting: Acting
    team: Team
    own: Member | None  # the member whose token the caller presented


def selection_or_env(selection: Selection | None) -> Selection:
    return selection if selection is not None else rings.selection_from_env()


def check_access(conn: duckdb.DuckDBPyConnection, team_ref: str, selection: Selection | None) -> Access:
    acting = rings.resolve_acting(conn, selection_or_env(selection))
    team = find_team(conn, team_ref)
    if acting.via is rings.ActingVia.SESSION:
        own = team.member_of_session(acting.session_id or "")
        if own is None:
            raise Refused(
                f"session {acting.session_id} is not a member of team {team.name}",
                reason="not_a_member",
                hint="use a member's token (inside its `masque exec`), or the team actor's key with --member",
            )
        return Access(acting, team, own)
    if acting.actor.name != team.actor and acting.actor.ring is not Ring.ADMIN:
        raise Refused(
            f"actor {acting.actor.name!r} is neither the actor of team {team.name} ({team.actor}) nor an admin",
            reason="not_team_actor",
            hint="the team's bus is for its members, the actor who spawned it, and admins",
        )
    return Access(acting, team, None)


def is_live(conn: duckdb.DuckDBPyConnection, session_id: str) -> bool:
    row = conn.execute("SELECT status, expires_at FROM sessions WHERE id = ?", [session_id]).fetchone()
    if row is None:
        return False
    return row[0] in LIVE_SESSION and (row[1] is None or row[1] > utcnow())


def author_of(conn: duckdb.DuckDBPyConnection, access: Access, member: str | None) -> Member | None:
    """The member a post is by (None: a person), checked against how the caller proved itself."""
    if access.own is not None:
        if member is not None and member != access.own.member:
            raise Refused(
                f"this token is member {access.own.member}'s; it cannot post as member {member}",
                reason="not_that_member",
                hint="drop --member, or post from that member's own session",
            )
        return access.own
    if member is None:
        return None
    chosen = access.team.member(member)
    if not is_live(conn, chosen.session_id):
        raise Refused(
            f"member {member!r} of team {access.team.name} has ended (session {chosen.session_id})",
            reason="member_ended",
            hint="a member posts only while its session is live",
        )
    return chosen


_collaborations: dict[str, Collaboration | None] = {}


def member_collaboration(conn: duckdb.DuckDBPyConnection, member: Member) -> Collaboration | None:
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


def poster_for(team: Team, member: Member | None, collaboration: Collaboration | None) -> contract.Poster:
    if member is None:
        return contract.Poster(None)
    arbiter = team.arbiter is not None and team.arbiter in (member.member, member.masque)
    return contract.Poster(member.member, f"{member.masque}@{member.version}", collaboration, arbiter)
