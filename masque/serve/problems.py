"""Errors as RFC 9457 problem details (`application/problem+json`).

Every masque.errors class keeps the meaning it has on the command line: the body carries the CLI's
`exit_code`, a stable `reason` (a Refused reason, else the error kind) and the `hint`.

    UsageError        400  (422 for a request body or parameter FastAPI rejects)   exit 2
    ValidationFailed  422                                                           exit 1
    Refused           403, 401 when no or no valid credential was presented         exit 3
    NotFound          404                                                           exit 4
    StoreBusy         503 with Retry-After                                          exit 5
    StoreError        500                                                           exit 5
    Conflict          409 (a stale version: re-read and apply again)                exit 6
    MasqueError       500 (a failed operation, e.g. the LLM provider)               exit 1
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from masque.errors import (
    Conflict,
    ExitCode,
    MasqueError,
    NotFound,
    Refused,
    StoreBusy,
    StoreError,
    UsageError,
    ValidationFailed,
)

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:masque:problem:"
RETRY_AFTER_SECONDS = 1
# Refusals that mean "who are you?" rather than "you may not": 401 with a WWW-Authenticate challenge.
UNAUTHENTICATED = frozenset({"unauthenticated", "actor_key_invalid", "actor_key_missing", "token_invalid"})

log = logging.getLogger("masque.serve")


def status_for(exc: MasqueError) -> int:
    """The HTTP status a masque error maps to (the table in this module's docstring)."""
    if isinstance(exc, Refused):
        return 401 if exc.reason in UNAUTHENTICATED else 403
    if isinstance(exc, UsageError):
        return 400
    if isinstance(exc, ValidationFailed):
        return 422
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, StoreBusy):
        return 503
    if isinstance(exc, Conflict):
        return 409
    return 500  # StoreError and any other MasqueError


def reason_for(exc: MasqueError) -> str:
    if isinstance(exc, Refused):
        return exc.reason
    for cls, name in (
        (UsageError, "usage"),
        (ValidationFailed, "validation_failed"),
        (NotFound, "not_found"),
        (StoreBusy, "store_busy"),
        (StoreError, "store_error"),
        (Conflict, "conflict"),
    ):
        if isinstance(exc, cls):
            return name
    return "failed"


_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Refused",
    404: "Not found",
    409: "Conflict",
    405: "Method not allowed",
    422: "Unprocessable content",
    500: "Operation failed",
    503: "Store busy",
}


def problem(
    status: int, detail: str, *, reason: str, exit_code: int, hint: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A problem details body (RFC 9457) with Masque's extension members."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + reason,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "reason": reason,
        "exit_code": exit_code,
        "hint": hint,
    }
    body.update(extra)
    return body


def from_error(exc: MasqueError) -> dict[str, Any]:
    extra = {"expected": exc.expected, "current": exc.current} if isinstance(exc, Conflict) else {}
    return problem(
        status_for(exc), exc.message, reason=reason_for(exc), exit_code=int(exc.exit_code), hint=exc.hint, **extra
    )


def response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=int(body["status"]), media_type=MEDIA_TYPE, headers=headers)


def error_response(exc: MasqueError) -> JSONResponse:
    body = from_error(exc)
    headers: dict[str, str] = {}
    if body["status"] == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if body["status"] == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="masque"'
    return response(body, headers)


def install(app: FastAPI) -> None:
    """Every error the app can raise leaves as problem details; no traceback reaches a client."""

    async def masque_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, MasqueError)
        return error_response(exc)

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return response(
            problem(
                422,
                f"the request is not valid: {where}",
                reason="usage",
                exit_code=int(ExitCode.USAGE),
                hint="see /docs for the request schema",
                errors=errors,
            )
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        exit_code = ExitCode.NOT_FOUND if status == 404 else ExitCode.USAGE
        reason = "not_found" if status == 404 else "usage"
        body = problem(status, str(exc.detail), reason=reason, exit_code=int(exit_code), hint="see /docs")
        return response(body, dict(exc.headers or {}))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error serving %s %s", request.method, request.url.path)
        body = problem(
            500,
            f"internal error: {type(exc).__name__}",
            reason="internal",
            exit_code=int(ExitCode.FAILED),
            hint="the server log has the traceback; please report it",
        )
        return response(body)

    app.add_exception_handler(MasqueError, masque_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
