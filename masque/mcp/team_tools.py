"""The teams and bus tools: `team_spawn`, `team_show`, `team_release`, `bus_post`, `bus_read`, `bus_resolve`.

Who acts: the connection's caller, exactly the Selection the other tools use (stdio: the local actor,
`--as` or MASQUE_TOKEN; HTTP: the bearer). A masque the connection wears (`don`) does NOT change
that: a session donned over MCP is never a team member (members are the sessions `team_spawn`
creates), so acting as it would only be refused. The team's actor posts for a member with `member`;
an agent holding a member's own token (its bearer, or MASQUE_TOKEN for stdio) posts as that member.
None of these tools needs the handshake's connection state, so stateless requests may use them too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from masque.mcp import results
from masque.mcp import team_bodies as bodies
from masque.mcp.connections import Caller

if TYPE_CHECKING:
    from masque.mcp.server import MasqueTools


def add_team_tools(tools: MasqueTools) -> None:
    @tools.tool(
        "team_spawn",
        "Spawn a team: several masques worn together for one intent, each member its own session. Every "
        "member qualifies or nothing is recorded. masques: NAME[:LABEL][@VERSION]. Member tokens are "
        "returned only with return_tokens (the team's actor posts for members with `member`).",
        stateful=False,
    )
    def team_spawn(
        caller: Caller,
        masques: list[str],
        intent: str,
        name: str | None = None,
        roles: dict[str, str] | None = None,
        arbiter: str | None = None,
        ttl: str | None = None,
        return_tokens: bool = False,
    ) -> results.TeamSpawned:
        return bodies.spawn_team(caller.selection, masques, intent, name=name, roles=roles, arbiter=arbiter,
                                 ttl=ttl, return_tokens=return_tokens)  # fmt: skip

    @tools.tool("team_show", "One team by id or name: intent, actor, arbiter, outcome, members and their "
                "session statuses.", stateful=False)  # fmt: skip
    def team_show(caller: Caller, team: str) -> results.Team:
        return bodies.show_team(caller.selection, team)

    @tools.tool(
        "team_release",
        "Release a team: end every member session (credentials revoked) and record one outcome: score + - / * e.",
        stateful=False,
    )
    def team_release(
        caller: Caller, team: str, score: str | None = None, notes: str | None = None
    ) -> results.TeamReleased:
        return bodies.release_team(caller.selection, team, score=score, notes=notes)

    @tools.tool(
        "bus_post",
        "Post to a team's bus: kind proposal, critique, revision, approval, output or context_delta; text or "
        "data (an object); reply_to the event answered; member to post as (the team's actor). A review that "
        "disagrees with an earlier one also returns the `conflict` Masque recorded.",
        stateful=False,
    )
    def bus_post(
        caller: Caller,
        team: str,
        kind: str,
        member: str | None = None,
        reply_to: str | None = None,
        text: str | None = None,
        data: dict[str, Any] | None = None,
        request_revision: bool = False,
    ) -> results.BusPosted:
        return bodies.post(caller.selection, team, kind, member=member, reply_to=reply_to, text=text, data=data,
                           request_revision=request_revision)  # fmt: skip

    @tools.tool(
        "bus_read",
        "A team's bus events in posting order; member: only its subscribed topics; since: after this event id; "
        "kind: one kind or several, comma-separated.",
        stateful=False,
    )
    def bus_read(
        caller: Caller, team: str, member: str | None = None, since: str | None = None, kind: str | None = None
    ) -> results.BusEvents:
        return bodies.read(caller.selection, team, member=member, since=since, kind=kind)

    @tools.tool(
        "bus_resolve",
        "Resolve a surfaced conflict once: decision accept, reject or revise, with notes; member: the arbiter "
        "(or one with can_arbitrate), none for a person; prevails: the conflicting event that stands.",
        stateful=False,
    )
    def bus_resolve(
        caller: Caller,
        team: str,
        conflict_id: str,
        decision: str,
        notes: str | None = None,
        member: str | None = None,
        prevails: str | None = None,
    ) -> results.BusPosted:
        return bodies.resolve(caller.selection, team, conflict_id, decision=decision, notes=notes, member=member,
                              prevails=prevails)  # fmt: skip
