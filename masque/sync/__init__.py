"""Sync with a `masque serve` server (seed 001 §2): push the outbox, pull the server's diff."""

from __future__ import annotations

from masque.lazy import lazy_exports

# The public surface, resolved on first use (importing the package stays free).
__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "add_remote": "client",
        "list_remotes": "client",
        "remove_remote": "client",
        "push": "client",
        "pull": "client",
        "status": "client",
    },
)
