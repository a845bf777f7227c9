"""Observations, mappers, mapping and feedback over HTTP (seed 001 §5), plus the sync endpoints (§2).

Every route passes the request's Selection to the same library function the CLI calls, so the ring
rules of docs/feedback.md apply unchanged. `PUT /mappers/{id}` states the version it read (`If-Match`
header or the body's `expect_version`); a stale one is a 409 problem with exit_code 6.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Header, Query, Response
from pydantic import BaseModel, Field

from masque.errors import UsageError
from masque.serve.auth import Caller
from masque.serve.masks import ERRORS

router = APIRouter(tags=["feedback"])
LOCKED = {**ERRORS, 409: ERRORS[400]}


class ObservationIn(BaseModel):
    masque: str = Field(description="Masque the fact is about (name or name@version).")
    kind: str = Field(description="Kind of fact: focus, preference, ...")
    data: dict[str, Any] = Field(description="The fact as a JSON object (at most 64 KiB).")
    actor_subject: str | None = Field(None, description="Actor the fact is about, if one.")


class FeedbackIn(BaseModel):
    target: str = Field(description="A suggestion id (sug_...) or a session id (ses_...).")
    score: float | str = Field(description="+, - or a number from -1 to 1.")
    notes: str | None = None


class MapperIn(BaseModel):
    doc: dict[str, Any] = Field(description="The mapper document (the shape of a *.mapper.yaml file).")
    expect_version: int | None = Field(
        None, ge=0, description="The version you read (0: must be new); the If-Match header does the same."
    )


@router.post("/observations", status_code=201, responses=ERRORS)
def post_observation(body: ObservationIn, caller: Caller) -> dict[str, Any]:
    """Record an immutable fact (`masque observe`)."""
    from masque.feedback import observations

    obs = observations.observe(body.masque, body.kind, body.data, actor_subject=body.actor_subject, selection=caller)
    return obs.to_json()


@router.get("/observations", responses=ERRORS)
def get_observations(caller: Caller, masque: str = Query(...), kind: str | None = Query(None)) -> list[dict[str, Any]]:
    """A masque's observations, oldest first (`masque observations M`)."""
    from masque.feedback import observations

    return [o.to_json() for o in observations.list_observations(masque, kind=kind, selection=caller)]


@router.get("/map-persona", responses=ERRORS)
def map_persona(
    caller: Caller,
    mapper_id: str = Query(..., alias="mapperId"),
    persona_id: str = Query(..., alias="personaId", description="The masque to map (name or name@version)."),
    detail_level: str = Query("standard", alias="detailLevel", description="basic, standard or full."),
    limit: int | None = Query(None, ge=1),
    context: str | None = Query(None, description='Context as a JSON object, e.g. {"task": "review"}.'),
    at: str | None = Query(None, description="Evaluate time conditions at this ISO time (default: now)."),
) -> dict[str, Any]:
    """Suggestions for a masque from a mapper (`masque map`), best weight first, each with an id."""
    import datetime as dt

    from masque.feedback import mapping

    try:
        level = mapping.DetailLevel(detail_level)
    except ValueError:
        raise UsageError(f"detailLevel {detail_level!r} is not basic, standard or full") from None
    try:
        when = dt.datetime.fromisoformat(at) if at else None
    except ValueError:
        raise UsageError(f"at={at!r} is not an ISO time", hint="e.g. 2026-12-01T09:00:00+00:00") from None
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    found = mapping.map_masque(
        mapper_id,
        persona_id,
        detail_level=level,
        context=mapping.parse_context(context),
        now=when,
        limit=limit,
        selection=caller,
    )
    return found.to_json()


@router.post("/feedback", status_code=201, responses=ERRORS)
def post_feedback(body: FeedbackIn, caller: Caller) -> dict[str, Any]:
    """Judge a suggestion (`masque feedback`); the rule's weight learns."""
    from masque.feedback import learning

    return learning.give_feedback(body.target, body.score, notes=body.notes, selection=caller).to_json()


@router.get("/mappers", responses=ERRORS)
def get_mappers(caller: Caller) -> list[dict[str, Any]]:
    """The current version of every mapper (`masque mapper list`)."""
    from masque.feedback import mappers

    return [m.to_json(with_doc=False) for m in mappers.list_mappers(selection=caller)]


@router.post("/mappers", status_code=201, responses=LOCKED)
def post_mapper(body: MapperIn, caller: Caller, response: Response) -> dict[str, Any]:
    """Upload a mapper configuration (`masque mapper put`): stored as its next version (players and admins)."""
    from masque.feedback import mappers

    result = mappers.put_doc(body.doc, expect_version=body.expect_version, selection=caller)
    response.headers["ETag"] = f'"{result.mapper.version}"'
    return {**result.mapper.to_json(), "changed": result.changed}


@router.get("/mappers/{mapper_id}", responses=ERRORS)
def get_mapper(
    mapper_id: str, caller: Caller, response: Response, version: int | None = Query(None, ge=1)
) -> dict[str, Any]:
    """One mapper, current or a given version (`masque mapper show`); the ETag is its version."""
    from masque.feedback import mappers

    found = mappers.show(mapper_id, version, selection=caller)
    response.headers["ETag"] = f'"{found.version}"'
    return found.to_json()


@router.put("/mappers/{mapper_id}", responses=LOCKED)
def put_mapper(
    mapper_id: str,
    body: MapperIn,
    caller: Caller,
    response: Response,
    if_match: str | None = Header(None, description='The version you read, e.g. "3".'),
) -> dict[str, Any]:
    """Update a mapper, naming the version you read (If-Match or expect_version); stale: 409, exit_code 6."""
    from masque.feedback import mappers

    expected = _stated_version(if_match, body.expect_version)
    doc_id = str((body.doc.get("metadata") or {}).get("id", ""))
    if doc_id != mapper_id:
        raise UsageError(f"the document's metadata.id {doc_id!r} is not {mapper_id!r}", hint="PUT it to its own id")
    result = mappers.put_doc(body.doc, expect_version=expected, selection=caller)
    response.headers["ETag"] = f'"{result.mapper.version}"'
    return {**result.mapper.to_json(), "changed": result.changed}


def _stated_version(if_match: str | None, in_body: int | None) -> int:
    if if_match is not None:
        text = if_match.strip().removeprefix("W/").strip('"')
        if not text.isdigit():
            raise UsageError(
                f"If-Match {if_match!r} is not a version", hint='send the ETag you read, e.g. If-Match: "3"'
            )
        if in_body is not None and in_body != int(text):
            raise UsageError("If-Match and expect_version disagree", hint="state the version you read once")
        return int(text)
    if in_body is None:
        raise UsageError(
            "PUT names the version it read", hint='send If-Match: "N" (the ETag of GET /mappers/ID) or expect_version'
        )
    return in_body


@router.get("/mappers/{mapper_id}/versions", responses=ERRORS)
def get_mapper_versions(mapper_id: str, caller: Caller) -> list[dict[str, Any]]:
    """Every version, oldest first (`masque mapper versions`)."""
    from masque.feedback import mappers

    return [m.to_json(with_doc=False) for m in mappers.versions(mapper_id, selection=caller)]


@router.get("/profiles/{masque}", responses=ERRORS)
def get_profile(masque: str, caller: Caller, refresh: bool = Query(False)) -> dict[str, Any]:
    """A masque's derived profile (`masque profile`); `stale` says whether it lags its observations."""
    from masque.feedback import profiles

    return profiles.profile(masque, refresh=refresh, selection=caller).to_json()


@router.post("/sync/batches", responses=ERRORS)
def push_batch(caller: Caller, batch: dict[str, Any] = Body(...)) -> dict[str, Any]:
    """Apply one pushed batch in one transaction, attributed to the caller; a repeated batch id creates nothing."""
    from masque.sync import server

    return server.apply_batch(batch, selection=caller)


@router.get("/sync", responses=ERRORS)
def get_sync(
    caller: Caller, since: str | None = Query(None, description="The watermark a previous pull returned.")
) -> dict[str, Any]:
    """Mapper versions, persona profiles and masque definitions changed since the watermark; and the new one."""
    from masque.sync import server

    return server.changes(since, selection=caller)
