"""Build the MCP server: tools, resources and prompts over the library, for one way of proving identity.

`build_server(selection_for, transport=...)` returns an `mcp.server.mcpserver.MCPServer`. Every request
proves who is calling through `selection_for(ctx)` (stdio: the local actor from `--as/--key-file` or the
environment; HTTP: the request's bearer, see `masque.mcp.http`), then the tool body calls the same
library function as the CLI with that Selection, so the rules are identical.

Adding a tool is a few lines (`MasqueTools.tool`): write a sync body whose first parameter is a
`Caller`, return a pydantic model, and register it::

    def add_bus(tools: MasqueTools) -> None:
        @tools.tool("bus_post", "Post a message to a team bus.")
        def bus_post(caller: Caller, topic: str, text: str) -> Posted:
            return Posted(**bus.post(topic, text, selection=caller.selection).to_dict())

    server = build_server(selection_for, transport="http", extensions=[add_bus])

The body runs in a worker thread; a MasqueError becomes a tool error whose structured content is
`{"error", "reason", "exit_code", "hint"}`, the reason and exit code the CLI would give.
"""

from __future__ import annotations

import inspect
import json
import threading
import typing
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.mcpserver.prompts.base import Prompt
from mcp_types import CallToolResult, TextContent

from masque import __version__
from masque.errors import MasqueError, Refused, UsageError
from masque.mcp import results
from masque.mcp import tools as bodies
from masque.mcp.connections import Caller, Connection
from masque.trust.rings import Selection

SelectionFor = Callable[[Context], Selection]
"""How one request proves who is calling (stdio: fixed at start; HTTP: its bearer header)."""

_KEY = "masque"  # our slot in the SDK connection's per-connection state

INSTRUCTIONS = (
    "Masque: don a versioned persona (a masque) with a stated intent. `list` shows the masques, `check` "
    "tells whether an intent would be allowed, `don` wears one (follow the returned system_prompt), "
    "`recall`/`remember` use its memory, `doff` ends it (optionally with a score). One masque per connection. "
    "`team_spawn` wears several masques as a team; its members talk with `bus_post`/`bus_read`, and a "
    "surfaced conflict is settled once with `bus_resolve`; `team_release` ends the team."
)


def refusal(exc: MasqueError) -> CallToolResult:
    """A MasqueError as an MCP tool error: the CLI's message, reason and exit code."""
    payload = error_payload(exc)
    text = f"{payload['error']} (reason {payload['reason']}, exit code {payload['exit_code']})"
    if payload["hint"]:
        text += f"\nhint: {payload['hint']}"
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=payload, is_error=True)


def error_payload(exc: MasqueError) -> dict[str, Any]:
    kind = {2: "usage", 1: "failed", 4: "not_found", 5: "store"}.get(int(exc.exit_code), "error")
    return {
        "error": str(exc),
        "reason": exc.reason if isinstance(exc, Refused) else kind,
        "exit_code": int(exc.exit_code),
        "hint": exc.hint,
    }


class MasqueTools:
    """Registers tool bodies on an MCPServer and finds each request's Caller."""

    def __init__(self, server: MCPServer, selection_for: SelectionFor, *, transport: str, shared: bool) -> None:
        self.server = server
        self.selection_for = selection_for
        self.transport = transport
        # stdio serves one client for the life of the process: that is the connection, whatever the protocol era.
        self.shared = Connection(transport) if shared else None
        self._lock = threading.Lock()

    def connection(self, ctx: Context, *, required: bool) -> Connection:
        """This request's Connection: kept on the SDK's per-connection state and abandoned when it closes."""
        if self.shared is not None:
            return self.shared
        # The SDK keeps per-connection state and teardown on its Connection, not yet public on the
        # request context: read it from the request's session (pinned SDK: mcp>=2.3,<3).
        sdk_conn = getattr(ctx.request_context.session, "_connection", None)
        from mcp_types.version import MODERN_PROTOCOL_VERSIONS

        if sdk_conn is None or sdk_conn.protocol_version in MODERN_PROTOCOL_VERSIONS:
            if required:
                raise UsageError(
                    "this request has no MCP connection to keep a worn masque on (a stateless 2026-07-28 request)",
                    hint="connect with the initialize handshake (the SDK's Client(mode='legacy')), which keeps a "
                    "session per connection",
                )
            return Connection(self.transport, kept=False)
        with self._lock:
            found = sdk_conn.state.get(_KEY)
            if found is None:
                found = sdk_conn.state[_KEY] = Connection(self.transport)
                sdk_conn.exit_stack.push_async_callback(anyio.to_thread.run_sync, found.abandon)
        return typing.cast(Connection, found)

    def caller(self, ctx: Context, *, stateful: bool) -> Caller:
        selection = self.selection_for(ctx)
        conn = self.connection(ctx, required=stateful)
        if conn.kept and self.shared is None:
            # Whatever reads or changes this connection's state acts as the actor who opened it, or not at all.
            from masque.trust import rings

            conn.bind(rings.acting(selection).actor.name)
        return Caller(selection, conn)

    def tool(self, name: str, description: str, *, stateful: bool = True) -> Callable[[Callable[..., Any]], Any]:
        """Register a sync `body(caller, **arguments) -> Model` as the MCP tool `name`."""

        def register(body: Callable[..., Any]) -> Any:
            hints = typing.get_type_hints(body)
            params = list(inspect.signature(body).parameters.values())[1:]  # drop `caller`
            shown = [p.replace(annotation=hints[p.name]) for p in params]
            shown.append(inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context))

            async def call(ctx: Context, **arguments: Any) -> Any:
                try:
                    who = await anyio.to_thread.run_sync(lambda: self.caller(ctx, stateful=stateful))
                    return await anyio.to_thread.run_sync(lambda: body(who, **arguments))
                except MasqueError as exc:
                    return refusal(exc)

            call.__signature__ = inspect.Signature(shown, return_annotation=hints["return"])  # type: ignore[attr-defined]
            call.__annotations__ = {**{p.name: p.annotation for p in shown}, "return": hints["return"]}
            call.__name__ = name
            call.__doc__ = description
            self.server.add_tool(call, name=name, description=description, structured_output=True)
            return body

        return register


def build_server(
    selection_for: SelectionFor,
    *,
    transport: str = "stdio",
    extensions: Sequence[Callable[[MasqueTools], None]] = (),
) -> MCPServer:
    """The Masque MCP server for one transport: "stdio" (the process is the one connection) or "http" /
    "memory" (one worn session per MCP session). Each of `extensions` is called with the tool registry,
    to add tools with `MasqueTools.tool` (e.g. the teams' `team_spawn`, the bus's `bus_post`)."""
    # WARNING: the SDK's INFO lines (one per request) would bury the server's own messages on stderr.
    server = MCPServer("masque", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")
    tools = MasqueTools(server, selection_for, transport=transport, shared=transport == "stdio")
    register_tools(tools)
    from masque.mcp.team_tools import add_team_tools  # here: team_tools builds on this module

    add_team_tools(tools)
    for extend in extensions:
        extend(tools)
    register_resources(server)
    register_prompts(server)
    _REGISTRIES[server] = tools
    return server


_REGISTRIES: weakref.WeakKeyDictionary[MCPServer, MasqueTools] = weakref.WeakKeyDictionary()


def tools_of(server: MCPServer) -> MasqueTools:
    """The tool registry `build_server` made for `server` (the CLI ends stdio's shared connection with it)."""
    return _REGISTRIES[server]


def register_tools(tools: MasqueTools) -> None:
    @tools.tool("list", "The masques on the search path: name, version, stage, ring, file, and which copy wins.",
                stateful=False)  # fmt: skip
    def list_tool(caller: Caller) -> results.Catalog:
        return bodies.catalog()

    @tools.tool("inspect", "One masque as REF resolves it (NAME, NAME@1.2.3): definition, file, sha256.",
                stateful=False)  # fmt: skip
    def inspect_tool(caller: Caller, ref: str) -> results.Inspected:
        return bodies.inspect_masque(ref)

    @tools.tool("check", "Would this intent be allowed for REF? Decides without wearing or recording anything.",
                stateful=False)  # fmt: skip
    def check_tool(caller: Caller, ref: str, intent: str) -> results.Decision:
        return bodies.check(ref, intent)

    @tools.tool(
        "don",
        "Wear a masque with a stated intent (intent, ring and TTL are checked). Returns the lens, context, "
        "knowledge and session id; follow system_prompt. The token stays on the server unless return_token.",
    )
    def don_tool(
        caller: Caller, ref: str, intent: str, ttl: str | None = None, return_token: bool = False
    ) -> results.Donned:
        return bodies.don(caller.connection, caller.selection, ref, intent, ttl, return_token)

    @tools.tool("doff", "End the worn masque's session (credential revoked), optionally scoring it: + - / * e.")
    def doff_tool(caller: Caller, score: str | None = None, notes: str | None = None) -> results.Doffed:
        return bodies.doff(caller.connection, score, notes)

    @tools.tool("whoami", "Who is acting (and how it was proven), and the session this connection wears.",
                stateful=False)  # fmt: skip
    def whoami_tool(caller: Caller) -> results.WhoAmI:
        return bodies.whoami(caller.connection, caller.selection)

    @tools.tool("recall", "Search the worn masque's memory (hybrid vector + full text), best first.")
    def recall_tool(caller: Caller, query: str, k: int = 10) -> results.Memories:
        return bodies.recall(caller.connection, query, k)

    @tools.tool("remember", "Add a memory to the worn masque's shard, tagged with this session.")
    def remember_tool(
        caller: Caller, text: str, tags: list[str] | None = None, ttl: str | None = None
    ) -> results.Remembered:
        return bodies.remember(caller.connection, text, tags or [], ttl)

    @tools.tool("score", "Score the worn session, or the one this connection last doffed: + - / * e.")
    def score_tool(caller: Caller, symbol: str, notes: str | None = None) -> results.Scored:
        return bodies.score(caller.connection, caller.selection, symbol, notes)

    @tools.tool("stats", "Reflect on sessions: the system, or one masque, skill, ring or session (JSON report).",
                stateful=False)  # fmt: skip
    def stats_tool(
        caller: Caller,
        masque: str | None = None,
        skill: str | None = None,
        ring: str | None = None,
        session: str | None = None,
        since: str | None = None,
        until: str | None = None,
        actor: str | None = None,
        top: int = 5,
    ) -> results.Stats:
        return bodies.stats(caller.selection, masque, skill, ring, session, since, until, actor, top)


def _resource_text(read: Callable[[], Any]) -> str:
    try:
        return json.dumps(read().model_dump(mode="json"), indent=2, ensure_ascii=False)
    except MasqueError as exc:
        raise ResourceError(json.dumps(error_payload(exc))) from None


def register_resources(server: MCPServer) -> None:
    @server.resource("masque://catalog", name="catalog", mime_type="application/json",
                     description="Every masque on the search path (as `masque list --json`).")  # fmt: skip
    async def catalog_resource() -> str:
        return await anyio.to_thread.run_sync(_resource_text, bodies.catalog)

    @server.resource("masque://{name}@{version}", name="masque-version", mime_type="application/json",
                     description="One masque version: its definition and file (`masque show N@V --json`).")  # fmt: skip
    async def versioned_resource(name: str, version: str) -> str:
        return await anyio.to_thread.run_sync(_resource_text, lambda: bodies.inspect_masque(f"{name}@{version}"))

    @server.resource("masque://{name}", name="masque", mime_type="application/json",
                     description="A masque's definition and file, the version NAME resolves to.")  # fmt: skip
    async def named_resource(name: str) -> str:
        return await anyio.to_thread.run_sync(_resource_text, lambda: bodies.inspect_masque(name))


def register_prompts(server: MCPServer) -> None:
    """One `don-<name>` prompt per valid masque on the path: its lens, context and knowledge for an intent."""
    from masque.masques import registry

    names = sorted({e.masque.key for e in registry.available() if e.active and e.masque is not None})
    for key in names:
        server.add_prompt(
            Prompt.from_function(_prompt_for(key), name=f"don-{key}", description=f"Wear {key}: its lens for INTENT.")
        )


def _prompt_for(key: str) -> Callable[[str], Any]:
    def render(intent: str) -> str:
        from masque.masques import knowledge, registry
        from masque.sessions.lifecycle import Knowledge, render_prompt, wearable_from_model

        try:
            resolved = registry.resolve(key)
            wearable = wearable_from_model(resolved)
            decision = wearable.decide(intent)
            if not decision.allowed:
                raise decision.refusal(wearable.ref)
        except MasqueError as exc:
            raise ValueError(json.dumps(error_payload(exc))) from None
        links = tuple(Knowledge(p.uri, p.endpoint) for p in knowledge.resolve(list(wearable.knowledge), strict=False))
        return render_prompt(wearable, intent, links)

    return render
