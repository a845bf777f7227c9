"""A masque's memory over HTTP: hybrid search and add, with the same ring and opt-out rules as the CLI."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from masque.serve.auth import Caller
from masque.serve.masks import ERRORS
from masque.serve.models import MemoryAddRequest
from masque.serve.sessions import jsonable

router = APIRouter(prefix="/memory", tags=["memory"])


@router.get("/{masque}/search", responses=ERRORS)
def search(
    masque: str,
    caller: Caller,
    q: str = Query(..., description="The query (vector + full-text)."),
    k: int = Query(10, ge=1, description="Number of results."),
) -> dict[str, Any]:
    """Best first, as `masque memory search MASQUE QUERY --json` prints."""
    from masque.memory.search import find

    return dict(jsonable(find(q, masque, k=k, selection=caller).to_json()))


@router.post("/{masque}", status_code=201, responses=ERRORS)
def add(masque: str, body: MemoryAddRequest, caller: Caller) -> dict[str, Any]:
    """Remember a text in the masque's shard (`masque memory add --json`); a session token tags it."""
    from masque.durations import parse_duration
    from masque.memory import ops

    result = ops.add(
        [body.text],
        masque,
        branch=body.branch,
        tags=tuple(body.tags),
        ttl=parse_duration(body.ttl) if body.ttl else None,
        selection=caller,
    )
    return dict(jsonable(result.to_json()))
