"""Wearing a masque over HTTP: activate (assume), generate (streamed), deactivate (release)."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from masque.errors import MasqueError, Refused, UsageError
from masque.serve import problems
from masque.serve.auth import Caller, acting
from masque.serve.models import (
    ActivateRequest,
    ActivateResponse,
    DeactivateRequest,
    DeactivateResponse,
    GenerateRequest,
    Knowledge,
    Problem,
)
from masque.trust import rings

router = APIRouter(prefix="/masks", tags=["masks"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {problems.MEDIA_TYPE: {}}} for code in (400, 401, 403, 404, 422, 503)
}


@router.post("/activate", response_model=ActivateResponse, responses=ERRORS)
def activate(body: ActivateRequest, caller: Caller) -> ActivateResponse:
    """Don a masque (`masque assume`): decide the intent, check the ring, mint a session token.

    A refused intent or ring is a 403 problem with `reason` (intent_denied, ring_refused, ...) and
    `exit_code` 3, recorded like every refusal.
    """
    from masque.sessions import lifecycle

    s = lifecycle.assume(
        body.masque, body.intent, selection=caller, ttl=body.ttl, strict_knowledge=body.strict_knowledge
    )
    assert s.token is not None
    return ActivateResponse(
        session_id=s.session_id,
        token=s.token,
        masque=s.masque,
        version=s.version,
        actor=s.actor,
        actor_ring=s.actor_ring,
        intent=s.intent,
        role=s.role,
        accessor=s.accessor,
        expires_at=s.credential_expires_at,
        system_prompt=s.system_prompt or "",
        knowledge=[Knowledge(uri=k.uri, endpoint=k.endpoint) for k in s.knowledge],
    )


def _session_of(caller: rings.Selection, session_id: str | None, verb: str) -> str:
    """The session named, else the one the bearer token proves."""
    if session_id:
        return session_id
    who = acting(caller)
    if who.session_id is None:
        raise UsageError(
            f"{verb} needs a session: none was named and the bearer is an actor key",
            hint="send the session token from /masks/activate as the bearer, or name session_id",
        )
    return who.session_id


_END = object()


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


@router.post(
    "/generate",
    responses={
        **ERRORS,
        200: {
            "content": {"text/event-stream": {}},
            "description": "Server-sent events: `token` ({text}) per piece, then `done` (the logged generation)"
            " or `error` (problem details) if the provider fails mid-stream.",
        },
    },
)
def generate(body: GenerateRequest, caller: Caller) -> StreamingResponse:
    """One LLM call framed by the session's masque (`masque generate --session`), streamed as SSE.

    Errors found before the first piece (no such session, not yours, ended, provider unreachable)
    are ordinary problem responses; after that they arrive as an `error` event.
    """
    from masque.mythatron.generate import generate as run_generation

    session_id = _session_of(caller, body.session_id, "generate")
    pieces: queue.Queue[Any] = queue.Queue()

    def work() -> None:
        try:
            result = run_generation(
                body.prompt,
                session_id=session_id,
                provider=body.provider,
                model=body.model,
                on_token=pieces.put,
                selection=caller,
            )
        except BaseException as exc:  # handed to the response: raised before streaming, an event after
            pieces.put(exc)
        else:
            pieces.put(_summary(result))
        pieces.put(_END)

    threading.Thread(target=work, name=f"generate-{session_id}", daemon=True).start()
    first = pieces.get()
    if isinstance(first, BaseException):
        raise first
    # No caching, and no buffering by a proxy in front (nginx honours X-Accel-Buffering): pieces flow as made.
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_events(first, pieces), media_type="text/event-stream", headers=headers)


def _events(first: Any, pieces: queue.Queue[Any]) -> Iterator[bytes]:
    item = first
    while item is not _END:
        if isinstance(item, str):
            yield _sse("token", {"text": item})
        elif isinstance(item, dict):
            yield _sse("done", item)
        elif isinstance(item, MasqueError):
            yield _sse("error", problems.from_error(item))
        elif isinstance(item, BaseException):
            problems.log.error("generation failed", exc_info=item)
            yield _sse("error", {"status": 500, "detail": f"internal error: {type(item).__name__}"})
        item = pieces.get()


def _summary(result: Any) -> dict[str, Any]:
    return {**result.to_json(), "warnings": list(result.warnings)}


@router.post("/deactivate", response_model=DeactivateResponse, responses=ERRORS)
def deactivate(body: DeactivateRequest, caller: Caller) -> DeactivateResponse:
    """End a session (`masque release`), optionally scoring it; returns its memory shard diff.

    The session's own token may always end it (even expired); an actor key ends its own sessions, and
    a more trusted ring ends those of less trusted ones.
    """
    from masque.memory import session_diff
    from masque.sessions import lifecycle

    session_id = body.session_id or _token_session(caller)
    ended = lifecycle.release(session_id, score=body.score, notes=body.notes, selection=caller)
    s = ended.session
    # Release returns the diff it archived; a session ended before keeps it in its metadata too.
    memory = s.memory if s.memory is not None else session_diff(s.session_id)
    return DeactivateResponse(
        session=json.loads(json.dumps(s.to_dict(), default=_iso)),
        already_ended=ended.already_ended,
        ended=list(ended.ended),
        revoked=list(ended.revoked),
        memory=memory,
    )


def _token_session(caller: rings.Selection) -> str:
    """The session a bearer token belongs to, even an expired one (its holder may still end it)."""
    from masque.trust.credentials import broker

    if caller.token:
        status = broker().verify(caller.token)
        if status.session_id:
            return status.session_id
        raise Refused(
            f"the bearer token is not valid: {status.message}",
            reason="token_invalid",
            hint="send the session token /masks/activate returned, or an actor key and session_id",
        )
    raise UsageError(
        "deactivate needs a session: none was named and the bearer is not a session token",
        hint="send the session token from /masks/activate as the bearer, or name session_id",
    )


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
