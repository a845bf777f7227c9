"""Who may see a team, and its JSON shape (docs/teams.md).

A team is seen under the rule `masque sessions` uses: an actor sees its own teams and those of less
trusted rings (admins see all). The ring is the one its actor had when spawning, recorded on every
member session; a team of a ring the caller cannot see is "not found", its actor unnamed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from masque.errors import NotFound

if TYPE_CHECKING:
    import duckdb

    from masque.teams.model import Team
    from masque.trust.rings import Acting


def team_ring(conn: duckdb.DuckDBPyConnection, team: Team) -> str | None:
    """The ring the team's actor had when spawning it (recorded on its member sessions)."""
    ids = [m.session_id for m in team.members]
    if not ids:
        return None
    row = conn.execute(
        f"SELECT any_value(actor_ring) FROM sessions WHERE id IN ({', '.join('?' for _ in ids)})", ids
    ).fetchone()
    return str(row[0]) if row and row[0] is not None else None


def visible(conn: duckdb.DuckDBPyConnection, who: Acting, team: Team) -> bool:
    from masque.trust import rings

    return who.actor.name == team.actor or rings.sees(who.actor, team_ring(conn, team))


def require_visible(conn: duckdb.DuckDBPyConnection, who: Acting, team: Team, ref: str) -> None:
    if not visible(conn, who, team):
        raise NotFound(f"no team {ref!r}", hint="`masque team list` shows the teams you can see")


def team_dict(team: Team, statuses: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON shape of a team; `statuses`: member session id -> session status, when known."""
    return {
        "id": team.id,
        "name": team.name,
        "intent": team.intent,
        "actor": team.actor,
        "arbiter": team.arbiter,
        "status": team.status,
        "created_at": _iso(team.created_at),
        "ended_at": _iso(team.ended_at),
        "score": team.score,
        "notes": team.notes,
        "members": [
            {
                "member": m.member,
                "role": m.role,
                "masque": m.masque,
                "version": m.version,
                "session_id": m.session_id,
                **({"session_status": statuses.get(m.session_id)} if statuses is not None else {}),
            }
            for m in team.members
        ],
    }


def _iso(value: Any) -> str | None:
    from masque.durations import as_utc

    when = as_utc(value)
    return when.isoformat() if when else None
