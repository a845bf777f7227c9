"""The registry over HTTP: list and show masques, and check an intent without assuming (records nothing)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from masque.serve.auth import Proven
from masque.serve.masks import ERRORS
from masque.serve.models import CheckRequest, CheckResponse

router = APIRouter(tags=["registry"])


@router.get("/masques", responses=ERRORS)
def list_masques(who: Proven) -> dict[str, Any]:
    """Every masque on the server's search path (`masque list --json`): which copy wins, which files are invalid."""
    from masque.masques import registry

    dirs = [{"path": str(d.path), "source": d.source.value, "exists": d.path.exists()} for d in registry.search_dirs()]
    return {"search_path": dirs, "masques": [e.to_dict() for e in registry.available()]}


@router.get("/masques/{ref}", responses=ERRORS)
def show_masque(ref: str, who: Proven) -> dict[str, Any]:
    """The masque a ref resolves to (`masque show --json`): its definition, file, SHA-256 and knowledge."""
    from masque.masques import knowledge, registry

    resolved = registry.resolve(ref)
    pointers = knowledge.resolve(resolved.masque.knowledge)
    return {**registry.resolved_to_dict(resolved), "knowledge": [p.to_dict() for p in pointers]}


@router.post("/check", response_model=CheckResponse, responses=ERRORS)
def check(body: CheckRequest, who: Proven) -> CheckResponse:
    """Would this intent be allowed (`masque check --json`)? Decides without assuming or recording anything.

    A refused intent is still a 200 answer here: `allowed` is false and `refusal_reason` says what
    `masque assume` would refuse with (the CLI's `check` exits 3).
    """
    from masque.masques import registry
    from masque.masques.intent import Policy
    from masque.masques.intent_text import escape_undecodable

    resolved = registry.resolve(body.masque)
    decision = Policy.compile(resolved.masque.intent).decide(body.intent)
    return CheckResponse(
        ref=resolved.ref,
        path=str(resolved.path),
        sha256=resolved.sha256,
        intent=escape_undecodable(body.intent),
        **decision.to_dict(),
        refusal_reason=None if decision.allowed else decision.refusal_reason,
    )
