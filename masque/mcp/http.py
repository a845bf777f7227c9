"""`masque mcp --http`: the streamable HTTP app, with a bearer on every request.

Nothing is served unauthenticated over HTTP: each request must carry `Authorization: Bearer <actor key
msqk_... or session token msq_...>`, checked by `rings.bearer_selection` and `rings.acting` (the same
proof as every verb). A refusal is a 401 whose JSON body carries the CLI's `reason` and exit code 3.
An MCP session (`Mcp-Session-Id`) belongs to the actor whose request opened it: a request on it with
another actor's bearer is refused (403, `connection_bound`) before it reaches the server, so it can
never see, use or end the first caller's worn session.

To mount it in another ASGI app (e.g. `masque serve` at `/mcp`)::

    server = build_server(http_selection, transport="http")
    app.mount("/mcp", http_app(server, path="/"))
    # and run `server.session_manager.run()` in the host app's lifespan.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
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


# The SDK closes a stateful session after this long without a request in flight (its own default,
# passed explicitly so the guard forgets owners on the same schedule).
SESSION_IDLE_TIMEOUT = 30 * 60.0
# Forget an owner only this long after the SDK would have closed the session: never while it may live.
FORGET_MARGIN = 60.0


@dataclass
class _Owner:
    actor: str
    last_seen: float  # when a request on the session last started or ended
    in_flight: int = 0  # requests on it being served now (an open GET stream keeps its session alive)


class BearerGuard:
    """ASGI middleware: refuse a request without a valid bearer, or on another actor's MCP session.

    Owners are forgotten when the client ends its session (DELETE), when the SDK answers 404 for it
    (closed or reaped), and once it has been idle, with nothing in flight, longer than the SDK keeps
    an idle session: so a long-running server's table does not grow with every session ever opened.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        idle_timeout: float = SESSION_IDLE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self._owners: dict[str, _Owner] = {}  # Mcp-Session-Id -> the actor who opened it
        self._lock = threading.Lock()
        self._forget_after = idle_timeout + FORGET_MARGIN
        self._clock = clock

    def tracked(self) -> int:
        """How many MCP sessions have a remembered owner."""
        with self._lock:
            return len(self._owners)

    def owner(self, session: str) -> str | None:
        """The actor who opened `session`, while it is remembered."""
        with self._lock:
            found = self._owners.get(session)
            return found.actor if found else None

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
        owner = self._enter(session, actor) if session is not None else None
        if owner is not None and owner.actor != actor:
            bound = Refused(
                f"this MCP session was opened by another actor; actor {actor!r} cannot use it",
                reason="connection_bound",
                hint="open your own MCP session with your own bearer credential",
            )
            await _refuse(send, 403, bound)
            return
        ending = scope.get("method") == "DELETE" and session is not None

        async def remember_owner(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                if session is not None and (status == 404 or (ending and status < 300)):
                    self._forget(session)  # ended by the client, or no longer known to the SDK
                for key, value in message.get("headers", []):
                    if key.decode("latin-1").lower() == "mcp-session-id" and session is None:
                        self._opened(value.decode("latin-1"), actor)
            await send(message)

        try:
            await self.app(scope, receive, remember_owner)
        finally:
            if owner is not None:
                with self._lock:
                    owner.in_flight -= 1
                    owner.last_seen = self._clock()

    def _enter(self, session: str, actor: str) -> _Owner | None:
        """The session's owner; counted in flight when `actor` is that owner."""
        with self._lock:
            owner = self._owners.get(session)
            if owner is not None and owner.actor == actor:
                owner.in_flight += 1
                owner.last_seen = self._clock()
            return owner

    def _opened(self, session: str, actor: str) -> None:
        now = self._clock()
        with self._lock:
            self._owners.setdefault(session, _Owner(actor, now))
            idle = [
                key
                for key, o in self._owners.items()
                if o.in_flight == 0 and now - o.last_seen > self._forget_after and key != session
            ]
            for key in idle:
                del self._owners[key]

    def _forget(self, session: str) -> None:
        with self._lock:
            self._owners.pop(session, None)


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
    app = server.streamable_http_app(streamable_http_path=path, host=host, session_idle_timeout=SESSION_IDLE_TIMEOUT)
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
