"""Sessions over HTTP: list them as `masque sessions --json` does (the ring rule applies)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query

from masque.serve.auth import Caller
from masque.serve.masks import ERRORS

router = APIRouter(tags=["sessions"])


def jsonable(value: Any) -> Any:
    """Datetimes as ISO strings, as the CLI's --json prints them."""
    return json.loads(json.dumps(value, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)))


@router.get("/sessions", responses=ERRORS)
def list_sessions(
    caller: Caller,
    active: bool = Query(False, description="Only live sessions (active or revoking)."),
    limit: int = Query(100, ge=1, description="At most this many, newest first."),
) -> list[dict[str, Any]]:
    """Sessions newest first: those of the caller's ring and the less trusted ones only."""
    from masque.sessions.queries import list_sessions as sessions_list

    return [jsonable(s.to_dict()) for s in sessions_list(active=active, limit=limit, selection=caller)]


@router.get("/sessions/{session_id}", responses=ERRORS)
def show_session(session_id: str, caller: Caller) -> dict[str, Any]:
    """One session (`masque sessions show --json`); a session of a more trusted ring is not found."""
    from masque.sessions.queries import show

    return dict(jsonable(show(session_id, selection=caller).to_dict()))
