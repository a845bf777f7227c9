"""The app factory: `create_app(mounts={"/mcp": mcp_asgi_app})`.

A router is one module exposing `router`; add it to ROUTERS. Extra ASGI apps (the MCP server's
streamable-HTTP app, later ones) are mounted beside the API under their own path prefix and do their
own authentication.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from fastapi import FastAPI
from starlette.types import ASGIApp

from masque import __version__
from masque.serve import problems
from masque.serve.models import Health

ROUTERS = (
    "masque.serve.masks",
    "masque.serve.registry",
    "masque.serve.sessions",
    "masque.serve.stats",
    "masque.serve.memory",
    "masque.serve.feedback",
    "masque.serve.teams",
)

DESCRIPTION = """\
AssumeRole for AI agents, served. Every request but `/health` and these docs needs
`Authorization: Bearer <actor key msqk_... or session token msq_...>`; the same rings apply as on the
command line. Errors are RFC 9457 problem details (`application/problem+json`) carrying the CLI's
`exit_code`, a stable `reason` and a `hint`.
"""


def create_app(mounts: Mapping[str, ASGIApp] | None = None) -> FastAPI:
    """The REST API, with `mounts` (path prefix -> ASGI app) mounted beside it."""
    app = FastAPI(title="Masque", version=__version__, description=DESCRIPTION)
    problems.install(app)

    @app.get("/health", response_model=Health, tags=["health"])
    def health() -> Health:
        """Liveness: answers without a credential and without opening the store."""
        return Health(status="ok", version=__version__)

    for name in ROUTERS:
        app.include_router(importlib.import_module(name).router)
    for prefix, sub in (mounts or {}).items():
        app.mount(prefix, sub)
    return app
