"""`masque mcp` through the official SDK's Client: in-process, over a stdio subprocess, and `mcp install`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_support import call, connect, memory_server, refused, session_row, stdio_params, token_valid
from test_cli_root import imported_heavy
from test_sessions_support import add_actor, events, init_store, store_rows, write_masques

from masque.trust import rings


@pytest.fixture(autouse=True)
def masques() -> Path:
    return write_masques()


def test_help_imports_no_sdk() -> None:
    """`masque --help` (and `masque mcp --help`) start without the MCP SDK, pydantic or a web server."""
    heavy = ("mcp", "pydantic", "uvicorn", "starlette", "tomlkit")
    assert imported_heavy("--help", heavy=heavy) == []
    # Typer itself may bring pydantic to a sub-command's help; the SDK stays out of it.
    assert imported_heavy("mcp", "--help", heavy=heavy[:1] + heavy[2:]) == []


def test_catalog_resources_and_prompts() -> None:
    async def main() -> None:
        async with connect(memory_server()) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert {"list", "inspect", "check", "don", "doff", "whoami", "recall", "remember", "score", "stats"} <= set(
                tools
            )
            assert all(t.output_schema for t in tools.values()), "every tool has structured output"
            catalog = await call(client, "list")
            assert sorted(m["name"] for m in catalog["masques"]) == ["Open", "Ops", "Peer", "Tool"]
            shown = await call(client, "inspect", ref="tool@1.0.0")
            assert shown["masque"]["lens"].startswith("Be methodical")
            read = await client.read_resource("masque://catalog")
            assert len(json.loads(read.contents[0].text)["masques"]) == 4  # type: ignore[union-attr]
            for uri in ("masque://tool", "masque://tool@1.0.0"):
                card = json.loads((await client.read_resource(uri)).contents[0].text)  # type: ignore[union-attr]
                assert card["ref"] == "tool@1.0.0"
            prompts = {p.name for p in (await client.list_prompts()).prompts}
            assert prompts == {"don-open", "don-ops", "don-peer", "don-tool"}
            got = await client.get_prompt("don-tool", {"intent": "implement the parser"})
            text = got.messages[0].content.text  # type: ignore[union-attr]
            assert "Be methodical" in text and "implement the parser" in text

    anyio.run(main)
    assert store_rows("SELECT count(*) FROM sessions") == [(0,)], "looking records nothing"


def test_don_remember_recall_doff() -> None:
    async def main() -> str:
        async with connect(memory_server()) as client:
            me = await call(client, "whoami")
            assert me["session"] is None, "a connection starts bare"
            worn = await call(client, "don", ref="tool", intent="implement the parser", ttl="30m")
            assert worn["token"] is None, "the token stays on the server"
            assert worn["lens"].startswith("Be methodical") and "implement the parser" in worn["system_prompt"]
            assert session_row(worn["session_id"]) == {
                "status": "active", "end_reason": None, "holder_pid": os.getpid(), "actor": "root"
            }  # fmt: skip
            stored = await call(client, "remember", text="the parser lives in parse.py", tags=["layout"])
            assert stored["stored"] and stored["masque"] == "tool"
            found = await call(client, "recall", query="where is the parser")
            assert [r["text"] for r in found["results"]] == ["the parser lives in parse.py"]
            assert found["results"][0]["session_id"] == worn["session_id"]
            me = await call(client, "whoami")
            assert me["session"]["session_id"] == worn["session_id"]
            done = await call(client, "doff", score="+", notes="solid")
            assert done["status"] == "ended" and done["revoked"]
            assert (await refused(client, "recall", query="x"))["exit_code"] == 2, "nothing worn any more"
            with pytest.raises(MCPError, match="not_found"):
                await client.read_resource("masque://nosuch")
            rescored = await call(client, "score", symbol="*")
            assert rescored["session_id"] == worn["session_id"]
            report = await call(client, "stats", masque="tool")
            assert report["report"]["sessions"]["total"] == 1
            return str(worn["session_id"])

    init_store_quietly()
    sid = anyio.run(main)
    assert session_row(sid)["status"] == "ended"
    assert store_rows("SELECT symbol, notes FROM scores WHERE session_id = ? ORDER BY created_at", [sid]) == [
        ("+", "solid"),
        ("*", None),
    ]


def init_store_quietly() -> None:
    rings.init("root")


def test_refusals_carry_reason_and_exit_code() -> None:
    async def main() -> None:
        async with connect(memory_server()) as client:
            decision = await call(client, "check", ref="tool", intent="rush the release")
            assert decision["allowed"] is False and decision["exit_code"] == 3
            denied = await refused(client, "don", ref="tool", intent="rush the release")
            assert denied["reason"] == "intent_denied" and denied["exit_code"] == 3
            assert denied["hint"]
            missing = await refused(client, "don", ref="nosuch", intent="work on it")
            assert missing["exit_code"] == 4
            too_long = await refused(client, "don", ref="peer", intent="review it", ttl="2h")
            assert too_long["reason"] == "ttl_too_long"
            await call(client, "don", ref="tool", intent="implement it")
            again = await refused(client, "don", ref="open", intent="answer it")
            assert again["reason"] == "already_wearing"
            await call(client, "doff")
            await call(client, "don", ref="open", intent="answer it")  # doff, then don again

    anyio.run(main)
    assert [e["payload"]["reason"] for e in events("intent_denied")] == ["intent_denied"]


def test_identity_is_the_one_presented(invoke: Callable[..., Any]) -> None:
    """An outsider's key acts as the outsider: never the founder, whatever else the server could use."""
    init_store(invoke)
    key = add_actor(invoke, "ola", "outsider")

    async def main() -> None:
        async with connect(memory_server(rings.Selection(name="ola", key=key))) as client:
            assert (await call(client, "whoami"))["actor"] == "ola"
            ring = await refused(client, "don", ref="ops", intent="deploy it")
            assert ring["reason"] == "ring_refused" and ring["exit_code"] == 3
            worn = await call(client, "don", ref="open", intent="answer it")
            assert worn["actor"] == "ola"
        async with connect(memory_server(rings.Selection(name="ola", key="msqk_wrong"))) as client:
            bad = await refused(client, "don", ref="open", intent="answer it")
            assert bad["reason"] == "actor_key_invalid"

    anyio.run(main)


def test_connections_keep_their_own_sessions_and_closing_abandons() -> None:
    server = memory_server()
    worn: dict[str, dict[str, Any]] = {}

    async def wear(name: str, ref: str, intent: str, both: anyio.Event, count: list[int]) -> None:
        async with connect(server) as client:
            worn[name] = await call(client, "don", ref=ref, intent=intent, return_token=True)
            count.append(1)
            if len(count) == 2:
                both.set()
            await both.wait()  # both connections are open at once
            me = await call(client, "whoami")
            assert me["session"]["session_id"] == worn[name]["session_id"]
            assert token_valid(worn[name]["token"])
            # leaving without doff

    async def main() -> None:
        both, count = anyio.Event(), []
        async with anyio.create_task_group() as tg:
            tg.start_soon(wear, "a", "tool", "implement it", both, count)
            tg.start_soon(wear, "b", "open", "answer it", both, count)

    anyio.run(main)
    assert worn["a"]["session_id"] != worn["b"]["session_id"]
    for name in ("a", "b"):
        row = session_row(worn[name]["session_id"])
        assert (row["status"], row["end_reason"]) == ("abandoned", "connection_closed")
        assert not token_valid(worn[name]["token"]), "its credential is revoked"


def test_racing_dons_on_one_connection_wear_one_masque() -> None:
    outcomes: list[bool] = []

    async def main() -> None:
        async with connect(memory_server()) as client:

            async def don(ref: str, intent: str) -> None:
                outcomes.append((await client.call_tool("don", {"ref": ref, "intent": intent})).is_error)

            async with anyio.create_task_group() as tg:
                tg.start_soon(don, "tool", "implement it")
                tg.start_soon(don, "open", "answer it")

    anyio.run(main)
    assert sorted(outcomes) == [False, True]
    assert store_rows("SELECT status FROM sessions") == [("abandoned",)], "one session, ended when the client left"


def test_a_session_revoked_from_outside_frees_the_connection(invoke: Callable[..., Any]) -> None:
    async def main() -> None:
        async with connect(memory_server()) as client:
            worn = await call(client, "don", ref="tool", intent="implement it")
            assert invoke(["revoke", worn["session_id"], "--now"]).exit_code == 0
            assert (await call(client, "whoami"))["session"]["status"] == "revoked"
            again = await call(client, "don", ref="open", intent="answer it")
            assert again["session_id"] != worn["session_id"]

    anyio.run(main)


def test_stateless_requests_cannot_wear() -> None:
    """The 2026-07-28 protocol has no connection: reading works, wearing asks for the handshake."""

    async def main() -> None:
        async with Client(memory_server()) as client:
            assert (await call(client, "list"))["masques"]
            no = await refused(client, "don", ref="open", intent="answer it")
            assert no["exit_code"] == 2 and "handshake" in (no["hint"] or "")

    anyio.run(main)


@pytest.mark.slow
def test_stdio_subprocess(invoke: Callable[..., Any], tmp_path: Path) -> None:
    init_store(invoke)
    key = add_actor(invoke, "ola", "outsider")
    key_file = tmp_path / "ola.key"
    key_file.write_text(key)

    async def main() -> dict[str, Any]:
        async with Client(stdio_params("--as", "ola", "--key-file", str(key_file))) as client:
            assert (await call(client, "whoami"))["actor"] == "ola"
            assert len((await call(client, "list"))["masques"]) == 4
            assert (await refused(client, "don", ref="ops", intent="deploy it"))["reason"] == "ring_refused"
            return await call(client, "don", ref="open", intent="answer it", return_token=True)

    worn = anyio.run(main)
    row = session_row(worn["session_id"])
    assert row["actor"] == "ola" and row["holder_pid"] != os.getpid(), "held by the server process"
    assert (row["status"], row["end_reason"]) == ("abandoned", "connection_closed"), "stdin closed without doff"
    assert not token_valid(worn["token"])


@pytest.mark.slow
def test_stdio_inside_a_session_starts_bare_and_narrows(invoke: Callable[..., Any]) -> None:
    """Started from a shell that wears a masque: that session's actor acts, the connection wears nothing,
    and what it dons is chained below the shell's session (never the founder, never wider)."""
    from test_sessions_support import assume_json

    init_store(invoke)
    key = add_actor(invoke, "ola", "outsider")
    outer = assume_json(invoke, "open", "--intent", "answer it", env={"MASQUE_ACTOR": "ola", "MASQUE_ACTOR_KEY": key})
    shell = {"MASQUE_TOKEN": outer["token"], "MASQUE_SESSION_ID": outer["session_id"]}

    async def main() -> dict[str, Any]:
        async with Client(stdio_params(env=shell)) as client:
            me = await call(client, "whoami")
            assert (me["actor"], me["via"], me["session"]) == ("ola", "session", None)
            worn = await call(client, "don", ref="open", intent="answer more")
            assert (await call(client, "remember", text="kept"))["stored"]
            await call(client, "doff")
            return worn

    worn = anyio.run(main)
    assert store_rows("SELECT actor, parent_id FROM sessions WHERE id = ?", [worn["session_id"]]) == [
        ("ola", outer["session_id"])
    ]


@pytest.mark.slow
def test_stdio_bad_key_refused_before_serving(run_masque: Callable[..., Any], tmp_path: Path) -> None:
    key_file = tmp_path / "k"
    key_file.write_text("msqk_not_a_key")
    proc = run_masque("mcp", "--as", "nobody", "--key-file", str(key_file), input="")
    assert proc.returncode == 3
    assert "not valid" in proc.stderr


def test_missing_sdk_says_what_to_install(invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mcp.server.mcpserver", None)
    result = invoke(["mcp"])
    assert result.exit_code == 2
    assert "pip install 'masque[mcp]'" in result.stderr


def test_http_refuses_a_public_host_without_the_flag(invoke: Callable[..., Any]) -> None:
    result = invoke(["mcp", "--http", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "--allow-remote" in result.stderr


# --- install ---------------------------------------------------------------------------------------


def test_install_prints_the_entry(invoke: Callable[..., Any]) -> None:
    result = invoke(["mcp", "install", "--client", "claude-code"])
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)["mcpServers"]["masque"]
    assert entry["args"][-1] == "mcp"
    assert ".mcp.json" in result.stderr
    assert not Path(".mcp.json").exists(), "printing writes nothing"
    codex = invoke(["mcp", "install", "--client", "codex"])
    assert codex.stdout.startswith("[mcp_servers.masque]\n")


def test_install_write_merges_and_never_clobbers(invoke: Callable[..., Any]) -> None:
    Path(".cursor").mkdir()
    config = Path(".cursor/mcp.json")
    config.write_text(json.dumps({"mcpServers": {"other": {"command": "other"}}}))
    assert invoke(["mcp", "install", "--client", "cursor", "--write"]).exit_code == 0
    servers = json.loads(config.read_text())["mcpServers"]
    assert set(servers) == {"other", "masque"}
    again = invoke(["mcp", "install", "--client", "cursor", "--write", "--as", "ola", "--key-file", "k"])
    assert again.exit_code == 2
    assert ".cursor/mcp.json" in again.stderr and "--force" in again.stderr
    assert json.loads(config.read_text())["mcpServers"] == servers, "left unchanged"
    forced = invoke(["mcp", "install", "--client", "cursor", "--write", "--force", "--as", "ola", "--key-file", "k"])
    assert forced.exit_code == 0
    assert "--as" in json.loads(config.read_text())["mcpServers"]["masque"]["args"]


def test_install_codex_keeps_comments(invoke: Callable[..., Any]) -> None:
    config = Path(".codex/config.toml")
    config.parent.mkdir()
    config.write_text('# mine\nmodel = "o3"\n\n[mcp_servers.docs]\ncommand = "docs"  # keep\n')
    assert invoke(["mcp", "install", "--client", "codex", "--scope", "project", "--write"]).exit_code == 0
    text = config.read_text()
    assert text.startswith('# mine\nmodel = "o3"\n') and 'command = "docs"  # keep' in text
    assert "[mcp_servers.masque]" in text
    assert invoke(["mcp", "install", "--client", "codex", "--scope", "project", "--write"]).exit_code == 2


def _stdio_server_wearing(ref: str, intent: str) -> tuple[subprocess.Popen[str], str]:
    """A `masque mcp` process spoken to over raw JSON-RPC, wearing `ref`; returns it and the session id."""
    params = stdio_params()
    proc = subprocess.Popen(
        [params.command, *params.args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, **(params.env or {})},
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None

    def send(message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()

    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})
    assert json.loads(proc.stdout.readline())["id"] == 1
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    don = {"name": "don", "arguments": {"ref": ref, "intent": intent}}
    send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": don})
    answer = json.loads(proc.stdout.readline())
    return proc, answer["result"]["structuredContent"]["session_id"]


@pytest.mark.slow
def test_stdio_stopped_by_sigterm_abandons_its_session() -> None:
    proc, sid = _stdio_server_wearing("open", "answer it")
    assert session_row(sid)["status"] == "active"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert session_row(sid)["status"] == "abandoned"
    for stream in (proc.stdin, proc.stdout):
        assert stream is not None
        stream.close()


@pytest.mark.slow
def test_stdio_killed_leaves_a_session_the_stale_sweep_abandons(invoke: Callable[..., Any]) -> None:
    proc, sid = _stdio_server_wearing("open", "answer it")
    proc.kill()
    proc.wait(timeout=60)
    for stream in (proc.stdin, proc.stdout):
        assert stream is not None
        stream.close()
    assert session_row(sid)["status"] == "active", "nothing could run in a process killed with -9"
    swept = invoke(["sessions", "--stale", "--json"])
    assert [s["session_id"] for s in json.loads(swept.stdout)] == [sid]
    assert session_row(sid)["status"] == "abandoned"
