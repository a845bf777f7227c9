"""Helpers for the bus tests: masques with collaboration blocks, and a team of real member sessions.

`masque team spawn` is built elsewhere; until it lands, a team is made here the way it will be: real
sessions assumed through the CLI (each with its own token), then `insert_team` in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.test_sessions_support import assume_json

INTENT = "work on the song"

BUS_MASQUES = {
    "lyricist": """\
name: Lyricist
index: 21
version: "1.0.0"
ring: player
intent:
  allowed: ["work *"]
lens: |
  Write the words.
collaboration:
  role: writer
  subscribes: ["*.critique", "*.resolution"]
""",
    "critic": """\
name: Critic
index: 22
version: "1.0.0"
ring: player
intent:
  allowed: ["work *"]
lens: |
  Find what is weak.
collaboration:
  role: reviewer
  capabilities:
    can_provide_feedback: true
    can_request_revision: true
  subscribes: ["*.proposal", "*.revision"]
""",
    "producer": """\
name: Producer
index: 23
version: "1.0.0"
ring: player
intent:
  allowed: ["work *"]
lens: |
  Ship what is good.
collaboration:
  role: reviewer
  capabilities:
    can_provide_feedback: true
    can_approve: true
  subscribes: ["*.proposal", "*.revision", "*.conflict"]
""",
    "editor-in-chief": """\
name: Editor-in-chief
index: 24
version: "1.0.0"
ring: player
intent:
  allowed: ["work *"]
lens: |
  Decide.
collaboration:
  role: orchestrator
  capabilities:
    can_arbitrate: true
  subscribes: ["*.conflict"]
""",
    "plain": """\
name: Plain
index: 25
version: "1.0.0"
ring: player
intent:
  allowed: ["work *"]
lens: |
  No collaboration block.
""",
}


def write_bus_masques(directory: Path | None = None) -> Path:
    target = directory or Path.cwd() / "personas"
    target.mkdir(parents=True, exist_ok=True)
    for name, text in BUS_MASQUES.items():
        (target / f"{name}.masque.yaml").write_text(text, encoding="utf-8")
    return target


@dataclass
class TeamFixture:
    id: str
    name: str
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def token_env(self, member: str) -> dict[str, str]:
        """The environment a member's `masque exec` child has: its session token."""
        return {"MASQUE_TOKEN": str(self.sessions[member]["token"])}


def make_team(
    invoke: Callable[..., Any],
    members: dict[str, str],
    *,
    name: str = "crew",
    arbiter: str | None = None,
    actor: str = "root",
    env: dict[str, str] | None = None,
) -> TeamFixture:
    """Assume one session per member (as `actor`) and record the team, as `team spawn` will."""
    from masque.durations import utcnow
    from masque.ids import new_id
    from masque.store import turns
    from masque.teams.model import Member, Team, insert_team

    team_id = new_id("team_")
    sessions = {m: assume_json(invoke, masque, "--intent", INTENT, env=env) for m, masque in members.items()}
    team = Team(
        id=team_id,
        name=name,
        intent=INTENT,
        actor=actor,
        arbiter=arbiter,
        status="active",
        created_at=utcnow(),
        members=tuple(
            Member(team_id, m, str(s["session_id"]), str(s["masque"]), str(s["version"]), "member")
            for m, s in sessions.items()
        ),
    )
    with turns.transaction() as conn:
        insert_team(conn, team)
    return TeamFixture(team_id, name, sessions)


def post_json(
    invoke: Callable[..., Any], team: str, *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> dict[str, Any]:
    result = invoke(["bus", "post", team, *args, "--json"], env=env, input=input)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def read_json(
    invoke: Callable[..., Any], team: str, *args: str, env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    result = invoke(["bus", "read", team, *args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout)["events"])
