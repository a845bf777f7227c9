"""Team values and their rows: the only module that writes `teams` and `team_members`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from masque.errors import NotFound

if TYPE_CHECKING:
    import duckdb

TEAM_COLUMNS = "id, name, intent, actor, arbiter, status, created_at, ended_at, score, notes"
MEMBER_COLUMNS = "team_id, member, session_id, masque, version, role"


@dataclass(frozen=True)
class Member:
    """One position of a team: its own session (and credential), masque and formation role."""

    team_id: str
    member: str
    session_id: str
    masque: str
    version: str
    role: str


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    intent: str
    actor: str
    arbiter: str | None
    status: str
    created_at: dt.datetime
    ended_at: dt.datetime | None = None
    score: str | None = None
    notes: str | None = None
    members: tuple[Member, ...] = ()

    def member(self, name: str) -> Member:
        for m in self.members:
            if m.member == name:
                return m
        raise NotFound(
            f"team {self.name} has no member {name!r}",
            hint=f"its members: {', '.join(m.member for m in self.members) or 'none'}",
        )

    def member_of_session(self, session_id: str) -> Member | None:
        return next((m for m in self.members if m.session_id == session_id), None)


def insert_team(conn: duckdb.DuckDBPyConnection, team: Team) -> None:
    """Write a team and its members (call inside the transaction that creates the member sessions)."""
    conn.execute(
        f"INSERT INTO teams ({TEAM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            team.id,
            team.name,
            team.intent,
            team.actor,
            team.arbiter,
            team.status,
            team.created_at,
            team.ended_at,
            team.score,
            team.notes,
        ],
    )
    for m in team.members:
        conn.execute(
            f"INSERT INTO team_members ({MEMBER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            [m.team_id, m.member, m.session_id, m.masque, m.version, m.role],
        )


def mark_released(
    conn: duckdb.DuckDBPyConnection, team_id: str, *, at: dt.datetime, score: str | None, notes: str | None
) -> None:
    conn.execute(
        "UPDATE teams SET status = 'released', ended_at = ?, score = ?, notes = ? WHERE id = ?",
        [at, score, notes, team_id],
    )


def _members(conn: duckdb.DuckDBPyConnection, team_id: str) -> tuple[Member, ...]:
    rows = conn.execute(
        f"SELECT {MEMBER_COLUMNS} FROM team_members WHERE team_id = ? ORDER BY member", [team_id]
    ).fetchall()
    return tuple(Member(*row) for row in rows)


def _team(conn: duckdb.DuckDBPyConnection, row: tuple[object, ...]) -> Team:
    team = Team(*row)  # type: ignore[arg-type]
    return Team(**{**team.__dict__, "members": _members(conn, team.id)})


def find_team(conn: duckdb.DuckDBPyConnection, ref: str) -> Team:
    """A team by id, or by name (the active one of that name first, else the newest)."""
    row = conn.execute(
        f"SELECT {TEAM_COLUMNS} FROM teams WHERE id = ? OR name = ?"
        " ORDER BY (status = 'active') DESC, created_at DESC LIMIT 1",
        [ref, ref],
    ).fetchone()
    if row is None:
        raise NotFound(f"no team {ref!r}", hint="`masque team list` shows the teams you can see")
    return _team(conn, row)


def list_teams(conn: duckdb.DuckDBPyConnection, *, include_released: bool = False) -> list[Team]:
    where = "" if include_released else " WHERE status = 'active'"
    rows = conn.execute(f"SELECT {TEAM_COLUMNS} FROM teams{where} ORDER BY created_at DESC").fetchall()
    return [_team(conn, row) for row in rows]


def team_of_session(conn: duckdb.DuckDBPyConnection, session_id: str) -> Team | None:
    """The team a session is a member of, if any."""
    row = conn.execute("SELECT team_id FROM team_members WHERE session_id = ?", [session_id]).fetchone()
    return find_team(conn, str(row[0])) if row else None
