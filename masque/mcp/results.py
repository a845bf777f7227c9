"""The typed results of the MCP tools: each becomes the tool's output schema and `structuredContent`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class CatalogEntry(BaseModel):
    name: str | None
    version: str | None
    stage: str | None
    ring: str | None
    path: str
    source: str
    status: str
    active: bool
    error: str | None = None


class Catalog(BaseModel):
    """Every masque file on the search path (`masque list --json`), plus which copy a ref uses."""

    search_path: list[str]
    masques: list[CatalogEntry]


class Inspected(BaseModel):
    """One masque as a ref resolves it (`masque show --json`)."""

    ref: str
    path: str
    source: str
    sha256: str
    warnings: list[str]
    masque: dict[str, Any]
    knowledge: list[dict[str, Any]]


class Decision(BaseModel):
    """Would an intent be allowed (`masque check --json`)? Recorded nowhere."""

    ref: str
    intent: str
    allowed: bool
    message: str
    pattern: str | None = None
    refusal_reason: str | None = None
    exit_code: int = Field(description="What `masque check` would exit with: 0 allowed, 3 refused.")


class Donned(BaseModel):
    """The session this connection now wears."""

    session_id: str
    ref: str
    actor: str
    intent: str
    expires_at: str | None
    credential_expires_at: str | None
    system_prompt: str = Field(description="Lens, context, intent and knowledge: use it as your instructions.")
    lens: str
    context: str | None
    knowledge: list[dict[str, Any]]
    token: str | None = Field(None, description="Only with return_token=true; otherwise it stays on the server.")


class Doffed(BaseModel):
    session_id: str
    ref: str
    status: str
    already_ended: bool
    ended: list[str]
    revoked: list[str]
    score: str | None


class WhoAmI(BaseModel):
    actor: str
    ring: str
    via: str = Field(description="key, session or founder: how the actor was proven.")
    transport: str
    session: dict[str, Any] | None = Field(description="The session this connection wears, if any.")


class Memories(BaseModel):
    masque: str
    access: str
    results: list[dict[str, Any]]


class Remembered(BaseModel):
    masque: str
    stored: bool
    ids: list[str]
    reason: str | None = None


class Scored(BaseModel):
    session_id: str
    symbol: str
    value: float
    notes: str | None
    scored_by: str | None


class Stats(BaseModel):
    """A reflection report (`masque stats --json`)."""

    report: dict[str, Any]


# --- teams and the collaboration bus (also the REST bodies of `masque serve`'s /teams) -------------


class TeamMember(BaseModel):
    member: str
    role: str
    masque: str
    version: str
    session_id: str
    session_status: str | None = Field(None, description="The member session's status (team_show, team list).")
    accessor: str | None = Field(None, description="The member credential's accessor (at spawn).")
    expires_at: str | None = Field(None, description="When the member credential expires (at spawn).")
    token: str | None = Field(None, description="The member's session token: only when return_tokens was asked.")


class Team(BaseModel):
    """A team as `masque team show --json` prints it."""

    id: str
    name: str
    intent: str
    actor: str
    arbiter: str | None
    status: str = Field(description="active or released.")
    created_at: str | None
    ended_at: str | None
    score: str | None
    notes: str | None
    members: list[TeamMember]


class TeamSpawned(Team):
    """A spawned team; tokens are in `members` only when return_tokens was asked."""

    subscriptions: list[dict[str, Any]] = Field(
        default_factory=list, description="Bus subscriptions considered per member: member, pattern, wired, note."
    )


class Teams(BaseModel):
    teams: list[Team]


class TeamReleased(Team):
    already_released: bool
    ended: list[str] = Field(description="Session ids this call ended (members and what was chained below).")
    revoked: list[str] = Field(description="Credential accessors this call revoked.")


class BusEvent(BaseModel):
    """One event on a team's bus (docs/bus.md)."""

    id: str
    team: str
    kind: str
    topic: str = Field(description="member.kind: what subscriptions match.")
    author_session: str | None
    author_member: str | None
    actor: str
    reply_to: str | None
    payload: dict[str, Any]
    ts: str


class BusPosted(BaseModel):
    """The posted event, and the conflict Masque recorded with it when it disagreed with another review."""

    event: BusEvent
    conflict: BusEvent | None = None


class BusEvents(BaseModel):
    events: list[BusEvent]
