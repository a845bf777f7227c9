"""Teams and the collaboration bus for agents: plain bodies over `masque.teams` and `masque.bus.ops`.

The MCP tools (`masque.mcp.team_tools`) and the REST routes (`masque.serve.teams`) both call these, so
the two surfaces give the same answers and refusals as `masque team ...` / `masque bus ...`. Each takes
the caller's proven `Selection` and passes it to the library, which resolves the actor and applies
the team rule. Nothing here imports the MCP SDK (only pydantic, through the results).

Member tokens leave `spawn_team` only when `return_tokens` is asked; otherwise they are dropped here
(the store keeps only their hashes), and the team's actor reaches each member with `member=NAME`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from masque.errors import UsageError
from masque.mcp import results

if TYPE_CHECKING:
    from masque.trust.rings import Selection


def spawn_team(
    selection: Selection,
    masques: Sequence[str],
    intent: str,
    *,
    name: str | None = None,
    roles: Mapping[str, str] | None = None,
    arbiter: str | None = None,
    ttl: str | None = None,
    return_tokens: bool = False,
) -> results.TeamSpawned:
    """`masque team spawn`: every member qualifies or nothing is recorded; the bus wired in the same transaction."""
    from masque import teams
    from masque.bus.wiring import wire_team

    spawned = teams.spawn(
        list(masques),
        intent,
        selection=selection,
        name=name,
        roles=dict(roles or {}),
        arbiter=arbiter,
        ttl=ttl,
        holder_pid=os.getpid(),  # the server holds them: a server killed with -9 leaves sessions --stale sweeps
        on_spawned=wire_team,
    )
    return results.TeamSpawned(**spawned.to_dict(with_tokens=return_tokens))


def list_teams(selection: Selection, *, include_released: bool = False) -> results.Teams:
    from masque import teams

    found = teams.list(selection=selection, include_released=include_released)
    return results.Teams(teams=[results.Team(**v.to_dict()) for v in found])


def show_team(selection: Selection, ref: str) -> results.Team:
    from masque import teams

    return results.Team(**teams.show(ref, selection=selection).to_dict())


def release_team(
    selection: Selection, ref: str, *, score: str | None = None, notes: str | None = None
) -> results.TeamReleased:
    from masque import teams

    return results.TeamReleased(**teams.release(ref, selection=selection, score=score, notes=notes).to_dict())


def payload_of(text: str | None, data: Mapping[str, Any] | None) -> dict[str, Any]:
    """`text` gives {"text": T}, `data` any object; not both (as `--text` / `--data` on the CLI)."""
    if text is not None and data is not None:
        raise UsageError("give text or data, not both", hint='data takes an object: {"text": "...", "diff": "..."}')
    if data is not None:
        return dict(data)
    return {"text": text} if text is not None else {}


def post(
    selection: Selection,
    team: str,
    kind: str,
    *,
    member: str | None = None,
    reply_to: str | None = None,
    text: str | None = None,
    data: Mapping[str, Any] | None = None,
    request_revision: bool = False,
) -> results.BusPosted:
    """`masque bus post`: checked against the team rule and the interaction contract; may surface a conflict."""
    from masque.bus import ops

    posted = ops.post(
        team,
        kind,
        payload=payload_of(text, data),
        member=member,
        reply_to=reply_to,
        request_revision=request_revision,
        selection=selection,
    )
    return results.BusPosted(**posted.to_json())


def kinds_of(kind: str | Sequence[str] | None) -> list[str]:
    """`critique`, `critique,approval` or a list: the kinds asked for (none: all)."""
    if kind is None:
        return []
    items = [kind] if isinstance(kind, str) else list(kind)
    return [k.strip() for item in items for k in item.split(",") if k.strip()]


def read(
    selection: Selection,
    team: str,
    *,
    member: str | None = None,
    since: str | None = None,
    kind: str | Sequence[str] | None = None,
) -> results.BusEvents:
    """`masque bus read`: in posting order; with `member`, only the topics it subscribes to."""
    from masque.bus import ops

    events = ops.read(team, member=member, since=since, kinds=kinds_of(kind), selection=selection)
    return results.BusEvents(events=[results.BusEvent(**e.to_json()) for e in events])


def resolve(
    selection: Selection,
    team: str,
    conflict_id: str,
    *,
    decision: str,
    notes: str | None = None,
    prevails: str | None = None,
    member: str | None = None,
) -> results.BusPosted:
    """`masque bus resolve`: the one resolution of a conflict, by the arbiter member or a person."""
    from masque.bus import ops

    posted = ops.resolve(
        team, conflict_id, decision=decision, notes=notes, prevails=prevails, member=member, selection=selection
    )
    return results.BusPosted(**posted.to_json())
