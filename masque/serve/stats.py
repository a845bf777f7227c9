"""Reflection over HTTP: `GET /stats/{level}` is `masque stats --json` for one level."""

from __future__ import annotations

from enum import Enum
from typing import Any

from fastapi import APIRouter, Query

from masque.errors import UsageError
from masque.serve.auth import Caller
from masque.serve.masks import ERRORS
from masque.serve.sessions import jsonable

router = APIRouter(tags=["stats"])


class LevelName(str, Enum):
    system = "system"
    masque = "masque"
    skill = "skill"
    ring = "ring"
    session = "session"


@router.get("/stats/{level}", responses=ERRORS)
def stats(
    level: LevelName,
    caller: Caller,
    subject: str | None = Query(
        None, description="NAME[@VERSION], a skill, a ring or a session id; none for the system level."
    ),
    since: str | None = Query(None, description="Sessions started from: 2026-01-15, or 30d ago."),
    until: str | None = Query(None, description="Sessions started before: a date or a duration ago."),
    actor: str | None = Query(None, description="Only sessions worn by this actor."),
    top: int = Query(5, ge=1, le=100, description="How many top intents / top and bottom masques."),
) -> dict[str, Any]:
    """The five reflection levels; counts only sessions of the caller's ring and below (all for an admin)."""
    from masque.reflection.levels import Filters, Selection, report

    if level is LevelName.system:
        if subject:
            raise UsageError("the system level takes no subject", hint="drop ?subject=, or pick another level")
        chosen = Selection.choose()
    else:
        if not subject:
            raise UsageError(f"the {level.value} level needs ?subject=", hint="e.g. /stats/masque?subject=codesmith")
        chosen = Selection.choose(**{level.value: subject})
    result = report(chosen, Filters.parse(since, until, actor), top=top, acting=caller)
    return dict(jsonable(result.to_json()))
