"""Helpers for the MCP tests: the SDK's real Client against an in-process server, stdio or HTTP."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from masque.trust import rings

REPO = Path(__file__).resolve().parent.parent


def memory_server(selection: rings.Selection | None = None) -> Any:
    """The server as `masque mcp` builds it, in-process, acting as `selection` (default: the founder)."""
    from masque.mcp.server import build_server

    chosen = selection or rings.Selection()
    return build_server(lambda ctx: chosen, transport="memory")


def connect(server: Any) -> Client:
    """An in-process connection with the handshake, which keeps one worn session per connection."""
    return Client(server, mode="legacy")


def stdio_params(*args: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    """`python -m masque mcp ARGS` as a subprocess, in this test's MASQUE_HOME and working directory."""
    keep = ("MASQUE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "NO_COLOR")
    full = {k: os.environ[k] for k in keep if k in os.environ}
    full["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    full.update(env or {})
    return StdioServerParameters(
        command=sys.executable, args=["-m", "masque", "mcp", *args], env=full, cwd=str(Path.cwd())
    )


@asynccontextmanager
async def http_client(url: str, bearer: str | None) -> AsyncIterator[Client]:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        yield client


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; its structured content."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


async def refused(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must fail; the error's structured content ({error, reason, exit_code, hint})."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    assert result.structured_content is not None
    text = result.content[0].text  # type: ignore[union-attr]
    assert result.structured_content["reason"] in text
    return dict(result.structured_content)


def session_row(session_id: str) -> dict[str, Any]:
    from test_sessions_support import store_rows

    rows = store_rows("SELECT status, end_reason, holder_pid, actor FROM sessions WHERE id = ?", [session_id])
    assert rows, session_id
    status, reason, pid, actor = rows[0]
    return {"status": status, "end_reason": reason, "holder_pid": pid, "actor": actor}


def token_valid(token: str) -> bool:
    from masque import api

    return api.verify(token).valid


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)
