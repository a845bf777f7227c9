"""`masque mcp --http`: the streamable HTTP app, with a bearer on every request.

Nothing is served unauthenticated over HTTP: each request must carry `Authorization: Bearer <actor key
msqk_... or session token msq_...>`, checked by `rings.bearer_selection` and `rings.acting` (the same
proof as every verb). A refusal is a 401 whose JSON body carries the CLI's `reason` and exit code 3.
An MCP session (`Mcp-Session-Id`) belongs to the actor whose request opened it: a request on it with
another actor's bearer is refused (403, `connection_bound`) before it reaches the server, so it can
never see, use or end the first caller's worn session.

To mount it in another ASGI app (e.g. `masque serve` at `/mcp`)::

    server = build_server(http_selection, transport="http")
    app.mount("/mcp", BearerGuard(server.streamable_http_app(streamable_http_path="/")))
    # and run `server.session_manager.run()` in the host app's lifespan.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import anyio

from masque.errors import MasqueError, Refused

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context, MCPServer

    from masque.trust.rings import Selection

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def http_selection(ctx: Context) -> Selection:
    """The Selection one HTTP request proves: its bearer, never the server's own environment."""
    from masque.trust import rings

    headers = ctx.headers or {}
    return rings.bearer_selection(headers.get("authorization"))


def _actor_of(authorization: str | None) -> str:
    from masque.trust import rings

    return rings.acting(rings.bearer_selection(authorization)).actor.name


class BearerGuard:
    """ASGI middleware: refuse a request without a valid bearer, or on another actor's MCP session."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._owners: dict[str, str] = {}  # Mcp-Session-Id -> the actor who opened it
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            actor = await anyio.to_thread.run_sync(_actor_of, headers.get("authorization"))
        except MasqueError as exc:
            await _refuse(send, 401 if isinstance(exc, Refused) else 400, exc)
            return
        session = headers.get("mcp-session-id")
        if session is not None:
            with self._lock:
                owner = self._owners.get(session)
            if owner is not None and owner != actor:
                bound = Refused(
                    f"this MCP session was opened by another actor; actor {actor!r} cannot use it",
                    reason="connection_bound",
                    hint="open your own MCP session with your own bearer credential",
                )
                await _refuse(send, 403, bound)
                return

        ending = scope.get("method") == "DELETE" and session is not None

        async def remember_owner(message: Message) -> None:
            if message["type"] == "http.response.start" and ending and message["status"] < 300:
                with self._lock:
                    self._owners.pop(str(session), None)  # the client ended its MCP session
            elif message["type"] == "http.response.start":
                for key, value in message.get("headers", []):
                    if key.decode("latin-1").lower() == "mcp-session-id":
                        with self._lock:
                            self._owners.setdefault(value.decode("latin-1"), actor)
            await send(message)

        await self.app(scope, receive, remember_owner)


async def _refuse(send: Send, status: int, exc: MasqueError) -> None:
    from masque.mcp.server import error_payload

    body = json.dumps(error_payload(exc)).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="masque"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def http_app(server: MCPServer, host: str = "127.0.0.1", path: str = "/mcp") -> ASGIApp:
    """The server's streamable HTTP app at `path`, behind the bearer guard."""
    app = server.streamable_http_app(streamable_http_path=path, host=host)
    return BearerGuard(app)


def serve(server: MCPServer, host: str, port: int, *, ready: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted; `ready(url)` once the socket accepts connections."""
    import uvicorn

    config = uvicorn.Config(http_app(server, host), host=host, port=port, log_level="warning", lifespan="on")
    runner = uvicorn.Server(config)
    if ready is not None:
        original = runner.startup

        async def startup(sockets: Any = None) -> None:
            await original(sockets)
            shown = f"[{host}]" if ":" in host else host
            ready(f"http://{shown}:{port}/mcp")

        runner.startup = startup  # type: ignore[method-assign]
    runner.run()
