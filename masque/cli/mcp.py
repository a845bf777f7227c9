"""`masque mcp` (serve the MCP tools over stdio or streamable HTTP) and `masque mcp install`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from masque.cli.app import app
from masque.errors import UsageError

mcp_app = typer.Typer(
    name="mcp",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(mcp_app)

_MISSING = "the MCP server needs the official MCP SDK"
_INSTALL = "pip install 'masque[mcp]'"


def _require_sdk() -> None:
    try:
        import mcp.server.mcpserver  # noqa: F401
    except ImportError:
        raise UsageError(_MISSING, hint=_INSTALL) from None


@mcp_app.callback(invoke_without_command=True)
def mcp_cmd(
    ctx: typer.Context,
    http: bool = typer.Option(False, "--http", help="Serve streamable HTTP at /mcp instead of stdio."),
    host: str = typer.Option("127.0.0.1", "--host", help="HTTP: address to bind (loopback unless --allow-remote)."),
    port: int = typer.Option(8765, "--port", help="HTTP: port to listen on."),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="HTTP: allow a non-loopback --host (every request still needs a bearer)."
    ),
    as_name: str | None = typer.Option(None, "--as", help="stdio: act as this actor (needs --key-file)."),
    key_file: Path | None = typer.Option(None, "--key-file", help="stdio: file holding that actor's key."),
) -> None:
    """Serve Masque to MCP clients (stdio, or --http); `mcp install` configures a client.

    Tools list, inspect, check, don, doff, whoami, recall, remember, score and stats; team_spawn,
    team_show, team_release, bus_post, bus_read and bus_resolve; a don-<name> prompt per masque;
    masque://catalog and masque://NAME[@VERSION] resources.

    stdio (default) acts as the local actor: --as/--key-file, else MASQUE_ACTOR(+_KEY) / MASQUE_TOKEN,
    else the founder. --http requires `Authorization: Bearer <actor key or session token>` on every
    request and binds 127.0.0.1 unless --allow-remote. Each connection wears at most one masque; one
    that closes without doff ends its session as abandoned. See docs/mcp.md.
    """
    if ctx.invoked_subcommand is not None:
        return
    _require_sdk()
    from masque import config

    # A connection starts bare: the shell's session id would otherwise count as a claim in memory verbs.
    config.drop_session_claim()
    if http:
        if as_name or key_file:
            raise UsageError(
                "--as/--key-file do not apply to --http",
                hint="over HTTP every request proves its caller with `Authorization: Bearer <key or token>`",
            )
        _serve_http(host, port, allow_remote)
    else:
        _serve_stdio(as_name, key_file)


def _serve_stdio(as_name: str | None, key_file: Path | None) -> None:
    from masque.mcp.server import build_server, tools_of
    from masque.trust import rings

    selection = rings.selection_from_env(as_name, key_file)
    rings.acting(selection)  # a bad key or token is refused now (exit 3), before any client connects
    server = build_server(lambda ctx: selection, transport="stdio")
    connection = tools_of(server).shared
    assert connection is not None  # stdio: the process is the one connection
    import os
    import signal

    def stop(signum: int, frame: object) -> None:
        # The stdin reader sits in a thread no cancellation reaches: end the session here, then exit.
        try:
            connection.abandon()
        finally:
            os._exit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    try:
        server.run("stdio")
    finally:
        # stdin closed (or Ctrl-C) without doff: end what the client still wears.
        connection.abandon()


def _serve_http(host: str, port: int, allow_remote: bool) -> None:
    from masque.mcp.http import LOOPBACK, http_selection, serve
    from masque.mcp.server import build_server

    if host not in LOOPBACK and not allow_remote:
        raise UsageError(
            f"--host {host} is not a loopback address",
            hint="add --allow-remote to serve other machines (bearer required; put TLS in front), "
            "or use --host 127.0.0.1",
        )
    if not 0 < port < 65536:
        raise UsageError(f"--port must be 1..65535, got {port}")
    server = build_server(http_selection, transport="http")

    def ready(url: str) -> None:
        sys.stderr.write(f"masque mcp: serving {url} (Authorization: Bearer <actor key or session token>)\n")
        sys.stderr.flush()

    from masque.store import lease

    lease.enable()  # keep the store between requests while no other process waits for it
    try:
        serve(server, host, port, ready=ready)
    finally:
        lease.release()


@mcp_app.command("install")
def install_cmd(
    client: str = typer.Option(..., "--client", help="claude-code, codex or cursor."),
    write: bool = typer.Option(False, "--write", help="Merge the entry into the client's config file."),
    force: bool = typer.Option(False, "--force", help="With --write: replace an existing `masque` entry."),
    scope: str | None = typer.Option(None, "--scope", help="project or user (default: project; codex: user)."),
    as_name: str | None = typer.Option(None, "--as", help="Make the client act as this actor (with --key-file)."),
    key_file: Path | None = typer.Option(None, "--key-file", help="That actor's key file (its path is written)."),
) -> None:
    """Print the MCP config entry that starts `masque mcp` for a client, or merge it with --write.

    claude-code: .mcp.json (project) or ~/.claude.json (user); cursor: .cursor/mcp.json or ~/.cursor/mcp.json;
    codex: ~/.codex/config.toml (user, its default) or .codex/config.toml (a trusted project). Other servers
    and settings in the file are kept; an existing `masque` entry is replaced only with --force.
    """
    from masque.mcp import install

    plan = install.plan(client, scope=scope, as_name=as_name, key_file=key_file)
    if not write:
        typer.echo(plan.snippet, nl=False)
        typer.echo(f"# add to {plan.path} (or rerun with --write)", err=True)
        return
    written = install.write(plan, force=force)
    typer.echo(f"{'updated' if written.replaced else 'added'} the `masque` MCP server in {written.path}", err=True)
