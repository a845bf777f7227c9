"""Teams and their collaboration bus over HTTP: spawn, list, show, release; post, read, stream, resolve.

The same bodies as the MCP tools (`masque.mcp.team_bodies`, which call `masque.teams` and
`masque.bus.ops` with the request's Selection), so the rules are the CLI's: a team spawns whole or
not at all, the bus checks the team rule and the interaction contract, a conflict is resolved once.

`GET /teams/{ref}/bus/stream` tails the bus as server-sent events, like `masque bus watch`: each poll
stats the store's files and reads (one short turn, no connection held in between) only when something
was committed or every few seconds, re-checking the caller's right each time. It ends when the client
disconnects, after `count` events / an event of kind `until`, or when the server stops (`end_streams`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from masque.errors import MasqueError, UsageError
from masque.mcp import results
from masque.mcp import team_bodies as bodies
from masque.serve import problems
from masque.serve.auth import Caller
from masque.serve.masks import ERRORS
from masque.trust import rings

router = APIRouter(prefix="/teams", tags=["teams"])


class SpawnRequest(BaseModel):
    masques: list[str] = Field(description="Member specs NAME[:LABEL][@VERSION].", examples=[["engineer", "qa"]])
    intent: str = Field(description="The one team intent, checked against every member.")
    name: str | None = Field(None, description="Team name (default: made from the intent).")
    roles: dict[str, str] = Field(default_factory=dict, description="MEMBER -> formation role.")
    arbiter: str | None = Field(None, description="The member that resolves conflicts on the bus.")
    ttl: str | None = Field(None, description="A shorter credential lifetime for every member: 2h, PT30M.")
    return_tokens: bool = Field(False, description="Return each member's session token (shown once).")


class ReleaseRequest(BaseModel):
    score: str | None = Field(default=None, description="The team's outcome: + - / * e.")
    notes: str | None = None


class PostRequest(BaseModel):
    kind: str = Field(description="proposal, critique, revision, approval, output or context_delta.")
    member: str | None = Field(None, description="Post as this member (the team's actor or an admin).")
    reply_to: str | None = Field(None, description="The event this one answers.")
    text: str | None = Field(None, description='Payload {"text": T}.')
    data: dict[str, Any] | None = Field(None, description="Payload as an object (instead of text).")
    request_revision: bool = Field(False, description="A critique that asks for a revision.")


class ResolveRequest(BaseModel):
    decision: str = Field(description="accept, reject or revise.")
    notes: str | None = Field(None, description="Why, in words (kept in the history).")
    member: str | None = Field(None, description="Resolve as this member (the arbiter); none: a person.")
    prevails: str | None = Field(None, description="The conflicting event that stands.")


@router.post("", status_code=201, response_model=results.TeamSpawned, responses=ERRORS)
def spawn(body: SpawnRequest, caller: Caller) -> results.TeamSpawned:
    """Spawn a team (`masque team spawn`): every member qualifies for the intent, or nothing is recorded
    (403 naming every refused member). Members' bus subscriptions are wired in the same transaction."""
    return bodies.spawn_team(caller, body.masques, body.intent, name=body.name, roles=body.roles,
                             arbiter=body.arbiter, ttl=body.ttl, return_tokens=body.return_tokens)  # fmt: skip


@router.get("", response_model=results.Teams, responses=ERRORS)
def list_teams(caller: Caller, all: bool = Query(False, description="Released teams too.")) -> results.Teams:
    """Teams the caller may see (its own and less trusted rings'), newest first (`masque team list --json`)."""
    return bodies.list_teams(caller, include_released=all)


@router.get("/{ref}", response_model=results.Team, responses=ERRORS)
def show(ref: str, caller: Caller) -> results.Team:
    """One team by id or name (`masque team show --json`); a team the caller may not see is 404."""
    return bodies.show_team(caller, ref)


@router.post("/{ref}/release", response_model=results.TeamReleased, responses=ERRORS)
def release(ref: str, caller: Caller, body: ReleaseRequest | None = None) -> results.TeamReleased:
    """End every member session and record the team's one outcome (`masque team release`)."""
    given = body or ReleaseRequest()
    return bodies.release_team(caller, ref, score=given.score, notes=given.notes)


@router.post("/{ref}/bus", status_code=201, response_model=results.BusPosted, responses=ERRORS)
def post(ref: str, body: PostRequest, caller: Caller) -> results.BusPosted:
    """Post to the team's bus (`masque bus post`); `conflict` is set when the review disagreed with another."""
    return bodies.post(caller, ref, body.kind, member=body.member, reply_to=body.reply_to, text=body.text,
                       data=body.data, request_revision=body.request_revision)  # fmt: skip


@router.get("/{ref}/bus", response_model=results.BusEvents, responses=ERRORS)
def read(
    ref: str,
    caller: Caller,
    member: str | None = Query(None, description="Only the topics this member subscribes to."),
    since: str | None = Query(None, description="Only events after this event id."),
    kind: list[str] | None = Query(None, description="Only these kinds (repeat, or comma-separate)."),
) -> results.BusEvents:
    """The team's events in posting order (`masque bus read --json`)."""
    return bodies.read(caller, ref, member=member, since=since, kind=kind)


@router.post("/{ref}/bus/{conflict_id}/resolve", status_code=201, response_model=results.BusPosted,
             responses=ERRORS)  # fmt: skip
def resolve(ref: str, conflict_id: str, body: ResolveRequest, caller: Caller) -> results.BusPosted:
    """Record the one resolution of a conflict (`masque bus resolve`); a second one is 403 `already_resolved`."""
    return bodies.resolve(caller, ref, conflict_id, decision=body.decision, notes=body.notes, member=body.member,
                          prevails=body.prevails)  # fmt: skip


KEEPALIVE_SECONDS = 15.0  # a comment line now and then: proxies keep the stream open, a gone client shows
_WAKE_SECONDS = 0.25  # how often a stream checks for its client and the server stopping, whatever its interval
_stopping = threading.Event()


def end_streams() -> None:
    """The server is stopping: every open bus stream ends within a moment.

    uvicorn's graceful shutdown waits for in-flight responses, and a tail never finishes on its own; the
    `masque serve` command calls this from its exit signal handler.
    """
    _stopping.set()


@router.get(
    "/{ref}/bus/stream",
    responses={
        **ERRORS,
        200: {
            "content": {"text/event-stream": {}},
            "description": "Server-sent events: one per bus event (`id` the event id, `event` its kind, `data` "
            "the event), `error` (problem details) if the caller's right ends meanwhile.",
        },
    },
)
def stream(
    ref: str,
    request: Request,
    caller: Caller,
    member: str | None = Query(None, description="Only the topics this member subscribes to."),
    since: str | None = Query(None, description="Start after this event id (default: from now)."),
    from_start: bool = Query(False, description="Replay the whole history first."),
    kind: list[str] | None = Query(None, description="Only these kinds (repeat, or comma-separate)."),
    until: str | None = Query(None, description="End after sending an event of this kind."),
    count: int | None = Query(None, ge=1, description="End after sending this many events."),
    interval: float = Query(0.25, ge=0.05, le=60, description="Seconds between looks at the store."),
    last_event_id: str | None = Header(None, description="Resume after this event id (what EventSource sends)."),
) -> StreamingResponse:
    """Tail the bus (`masque bus watch --json`): errors before the first byte are problem responses."""
    from masque.bus import ops
    from masque.bus.model import ID_PREFIX, Kind

    stop_kind = Kind.parse(until) if until else None
    kinds = [Kind.parse(k).value for k in bodies.kinds_of(kind)]
    start = since or last_event_id
    if start is not None and not start.startswith(ID_PREFIX):
        raise UsageError(f"since takes a bus event id, got {start!r}", hint="ids look like bus_01J...")
    # Checks the caller and the team now, so a refusal is an ordinary problem response.
    newest = ops.newest_id(ref, selection=caller)
    if member is not None:
        ops.read(ref, member=member, since=newest or None, kinds=kinds, selection=caller)
    tail = _Tail(ref, caller, member, kinds, start if start or from_start else newest, stop_kind, count, interval)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(tail.events(request), media_type="text/event-stream", headers=headers)


class _Tail:
    """One client's tail of a bus: polls the store (stat, then a short read) until the client goes."""

    def __init__(
        self,
        ref: str,
        caller: rings.Selection,
        member: str | None,
        kinds: list[str],
        after: str | None,
        stop_kind: Any,
        count: int | None,
        interval: float,
    ) -> None:
        self.ref, self.caller, self.member, self.kinds = ref, caller, member, kinds
        self.after, self.stop_kind, self.count, self.interval = after, stop_kind, count, interval

    def _read(self) -> list[Any]:
        from masque.bus import ops

        return ops.read(self.ref, member=self.member, since=self.after, kinds=self.kinds, selection=self.caller)

    async def events(self, request: Request) -> AsyncIterator[bytes]:
        from masque.bus.reading import FULL_POLL_EVERY, store_stamp

        sent = 0
        seen: Any = None
        read_at = quiet_since = next_look = time.monotonic()
        yield b": tailing\n\n"  # the headers and a first byte go out now: the client knows it is listening
        while not _stopping.is_set() and not await request.is_disconnected():
            if time.monotonic() < next_look:
                await anyio.sleep(min(_WAKE_SECONDS, next_look - time.monotonic()))
                continue
            next_look = time.monotonic() + self.interval
            stamp = store_stamp()
            if stamp != seen or time.monotonic() - read_at >= FULL_POLL_EVERY:
                seen, read_at = stamp, time.monotonic()
                try:
                    found = await anyio.to_thread.run_sync(self._read)
                except MasqueError as exc:  # e.g. the member token was revoked meanwhile
                    yield _sse("error", problems.from_error(exc))
                    return
                for event in found:
                    self.after = event.id
                    sent += 1
                    quiet_since = time.monotonic()
                    yield _sse(event.kind.value, event.to_json(), event_id=event.id)
                    if (self.count is not None and sent >= self.count) or event.kind is self.stop_kind:
                        return
            if time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                quiet_since = time.monotonic()
                yield b": keepalive\n\n"


def _sse(event: str, data: Any, *, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
