"""Who is calling: `Authorization: Bearer <actor key msqk_... or session token msq_...>`.

The header goes through `rings.bearer_selection`, the one check every served surface shares: nothing
presented is refused (401), never a fall-back to the founder, and nothing is read from the server's own
environment. Routes pass the Selection to the same library functions the CLI calls, which resolve
the actor and apply the ring rule.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from masque.trust import rings

# auto_error=False: a missing header is our Refused("unauthenticated") -> a 401 problem, not FastAPI's 403.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="masque",
    description="An actor key (msqk_..., from `masque init` / `masque actor add`) or a session token (msq_...).",
)


def selection(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> rings.Selection:
    """The caller's Selection, as presented (the library proves it when it resolves the actor)."""
    return rings.bearer_selection(credentials.credentials if credentials else None)


def proven(sel: Annotated[rings.Selection, Depends(selection)]) -> rings.Acting:
    """The resolved actor, for routes whose library call does not resolve one itself (registry reads)."""
    return rings.acting(sel)


Caller = Annotated[rings.Selection, Depends(selection)]
Proven = Annotated[rings.Acting, Depends(proven)]
