"""Who is calling: `Authorization: Bearer <actor key msqk_... or session token msq_...>`.

The header goes through `rings.bearer_selection`, the one check every served surface shares: nothing
presented is refused (401), never a fall-back to the founder, and nothing is read from the server's own
environment. Routes pass the Selection to the same library functions the CLI calls, which resolve
the actor and apply the ring rule.
"""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from masque.store import turns
from masque.trust import rings

# auto_error=False: a missing header is our Refused("unauthenticated") -> a 401 problem, not FastAPI's 403.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="masque",
    description="An actor key (msqk_..., from `masque init` / `masque actor add`) or a session token (msq_...).",
)


class KeyNames:
    """Which actor a key hash named last time: spares a store open per request.

    Only the name is remembered, never a verdict: `resolve_acting` compares the key with the actor's
    stored hash in the request's own store read, so a rotated key or a removed actor is refused at
    once. Unknown keys are never remembered (bearer_selection refuses them).
    """

    LIMIT = 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}

    def selection(self, bearer: str | None) -> rings.Selection:
        value = (bearer or "").strip()
        if not value.startswith(rings.KEY_PREFIX):
            return rings.bearer_selection(value)
        digest = rings.hash_key(value)
        with self._lock:
            name = self._names.get(digest)
        if name is not None:
            return rings.Selection(name=name, key=value)
        sel = rings.bearer_selection(value)
        with self._lock:
            if len(self._names) >= self.LIMIT:
                self._names.clear()
            self._names[digest] = str(sel.name)
        return sel


key_names = KeyNames()


def selection(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> rings.Selection:
    """The caller's Selection, as presented (the library proves it when it resolves the actor)."""
    return key_names.selection(credentials.credentials if credentials else None)


def acting(sel: rings.Selection) -> rings.Acting:
    """Resolve (prove) the caller in one short read-only turn at the store."""
    with turns.connect(read_only=True) as conn:
        return rings.resolve_acting(conn, sel)


def proven(sel: Annotated[rings.Selection, Depends(selection)]) -> rings.Acting:
    """The resolved actor, for routes whose library call does not resolve one itself (registry reads)."""
    return acting(sel)


Caller = Annotated[rings.Selection, Depends(selection)]
Proven = Annotated[rings.Acting, Depends(proven)]
