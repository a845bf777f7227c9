"""The MCP endpoint inside `masque serve`: the SDK's streamable-HTTP app at `/mcp`, behind the bearer guard.

One process answers REST and MCP under the same bearer check (`masque.mcp.http.BearerGuard`: every
request proves an actor key or a session token; an MCP session belongs to the actor who opened it).
The MCP app answers at exactly `/mcp` (no redirect to `/mcp/`, which MCP clients would not follow),
and its session manager runs inside the FastAPI app's lifespan. Without the `mcp` extra the API is
served as before and `/mcp` is absent (one log line says so).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

log = logging.getLogger("masque.serve")
PATH = "/mcp"


def mount_mcp(app: FastAPI, *, host: str = "127.0.0.1") -> bool:
    """Add the MCP endpoint to `app` at /mcp; False (and a log line) when the MCP SDK is not installed."""
    try:
        import mcp.server.mcpserver  # noqa: F401
    except ImportError:
        log.warning("MCP endpoint /mcp not served: the MCP SDK is not installed (pip install 'masque[mcp]')")
        return False
    from starlette.routing import Route

    from masque.mcp.http import http_app, http_selection
    from masque.mcp.server import build_server

    server = build_server(http_selection, transport="http")
    # host: the SDK turns DNS-rebinding protection on for a loopback host (Host/Origin checked).
    guarded = http_app(server, host, PATH)  # the SDK's app behind the bearer guard, as `masque mcp --http`
    app.router.routes.append(Route(PATH, endpoint=guarded, include_in_schema=False))
    serving = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(owner: Any) -> AsyncIterator[Any]:
        async with server.session_manager.run(), serving(owner) as state:
            yield state

    app.router.lifespan_context = lifespan
    return True
