"""`masque serve`: the REST API (FastAPI + uvicorn) in one long-lived process."""

from __future__ import annotations

from typing import Any

import typer

from masque.cli.app import app

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="TCP port (0 picks a free one)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level: warning, info, debug."),
    store_url: str | None = typer.Option(
        None,
        "--store",
        metavar="URL",
        help="Shared PostgreSQL store (postgresql://user@host:5432/db) instead of the DuckDB file; "
        "several servers on one database see the same actors and sessions. Needs 'masque[postgres]'.",
    ),
) -> None:
    """Serve the REST API (activate/generate/deactivate, masques, check, sessions, stats, memory, teams
    and their bus) and the MCP endpoint at /mcp.

    Every request needs `Authorization: Bearer <actor key msqk_... or session token msq_...>`;
    OpenAPI docs at /docs. The server keeps the store open between requests only while no other
    process wants it (a store lease), so CLI commands keep working beside it.
    SIGTERM or Ctrl-C stops it after in-flight requests finish. Needs `pip install 'masque[serve]'`.
    """
    import signal

    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        from masque.errors import UsageError

        raise UsageError(
            f"masque serve needs FastAPI and uvicorn ({exc.name} is not installed)",
            hint="pip install 'masque[serve]'",
        ) from None
    from masque import config
    from masque.cli.output import print_warning
    from masque.serve.app import create_app
    from masque.serve.mcp_mount import mount_mcp
    from masque.serve.teams import end_streams

    if store_url is not None:
        config.set_store_url(store_url)
    shared = config.store_url()
    if shared is not None:
        from masque import store

        store.check_shared(shared)  # fail now, not at the first request

    # Served identity is the request's bearer only: the id of a session the starting shell wears is no
    # claim for what this server serves (memory verbs would otherwise compare callers' tokens to it).
    config.drop_session_claim()
    if host not in _LOOPBACK:
        print_warning(
            f"serving on {host} without TLS: bearer keys and tokens cross the network in clear; "
            "put a TLS proxy in front"
        )
    # uvicorn re-raises the signal that stopped it once it has shut down; a SIGTERM handled that way is
    # a clean stop (exit 0), not a death by signal.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    api = create_app()
    mount_mcp(api, host=host)  # MCP at /mcp, same bearer check; absent (with a log line) without the SDK
    server = uvicorn.Server(uvicorn.Config(api, host=host, port=port, log_level=log_level.lower()))
    stop = server.handle_exit

    def handle_exit(sig: int, frame: Any) -> None:
        end_streams()  # open bus streams never finish on their own; graceful shutdown waits for responses
        stop(sig, frame)

    server.handle_exit = handle_exit  # type: ignore[method-assign]
    from masque.store import lease

    lease.enable()  # keep the store between requests while no other process waits for it
    try:
        server.run()
    finally:
        lease.release()
