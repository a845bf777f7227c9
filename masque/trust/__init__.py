"""Trust: who is acting and what they may do.

Modules (the package imports none of them until a name of `__all__` below is first used):
  rings        actors, the four rings, keys, approvals, and `resolve_acting`, the one identity check
               every verb calls; ring moves and disapprovals say whose sessions must end, and
               `masque.sessions.actors` ends them in the same transaction
  actors       actors as stored: find/get, who sees whom, `check_qualified` (the lowest module here)
  credentials  the credentials broker: mint, verify, renew and revoke session tokens (only hashes stored)
  accessors    credential verbs by accessor for the acting actor: lookup, revoke
Layer: above the store, below the masque file (which asks rings about pins and stages).
"""

from __future__ import annotations

from masque.lazy import lazy_exports

# The public surface, resolved on first use (importing the package stays free).
__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "Selection": "rings",
        "Acting": "rings",
        "selection_from_env": "rings",
        "bearer_selection": "rings",
        "resolve_acting": "rings",
        "acting": "rings",
        "init": "rings",
        "add_actor": "rings",
        "list_actors": "rings",
        "approve": "rings",
        "Actor": "actors",
        "broker": "credentials",
        "TokenStatus": "credentials",
        "CredentialBroker": "credentials",
    },
)
