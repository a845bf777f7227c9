"""`masque mcp --http` as a real process on 127.0.0.1: a bearer on every request, sessions bound to actors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import pytest
from mcp_support import REPO, call, http_client, refused, session_row, token_valid
from net_support import free_port, wait_until
from test_sessions_support import add_actor, init_store, store_rows, write_masques

pytestmark = pytest.mark.slow

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}},
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture
def keys(invoke: Callable[..., Any]) -> dict[str, str]:
    write_masques()
    return {"root": init_store(invoke), "ola": add_actor(invoke, "ola", "outsider")}


@pytest.fixture
def server(keys: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "masque", "mcp", "--http", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )

    def accepting() -> bool:
        assert proc.poll() is None, (tmp_path / "server.log").read_text()
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(accepting, what="the server to accept connections")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _post(url: str, bearer: str | None, session: str | None = None) -> httpx.Response:
    headers = dict(HEADERS)
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    if session is not None:
        headers["Mcp-Session-Id"] = session
    with httpx.Client(timeout=30) as http, http.stream("POST", url, json=INITIALIZE, headers=headers) as r:
        r.read() if r.headers.get("content-type", "").startswith("application/json") else None
        return r


def test_no_bearer_or_a_bad_one_is_refused(server: str) -> None:
    nothing = _post(server, None)
    assert nothing.status_code == 401
    assert nothing.json()["reason"] == "unauthenticated" and nothing.json()["exit_code"] == 3
    bad = _post(server, "msqk_not_a_key")
    assert bad.status_code == 401 and bad.json()["reason"] == "actor_key_invalid"
    forged = _post(server, "msq_not_a_token")
    assert forged.status_code == 401 and forged.json()["reason"] == "token_invalid"


def test_a_session_belongs_to_the_actor_who_opened_it(server: str, keys: dict[str, str]) -> None:
    opened = _post(server, keys["root"])
    assert opened.status_code == 200
    session = opened.headers["mcp-session-id"]
    other = _post(server, keys["ola"], session=session)
    assert other.status_code == 403 and other.json()["reason"] == "connection_bound"


def test_wear_remember_doff_over_http(server: str, keys: dict[str, str]) -> None:
    async def main() -> dict[str, Any]:
        async with http_client(server, keys["ola"]) as client:
            assert (await call(client, "whoami"))["actor"] == "ola"
            assert (await refused(client, "don", ref="ops", intent="deploy it"))["reason"] == "ring_refused"
            worn = await call(client, "don", ref="open", intent="answer questions")
            await call(client, "remember", text="answers go in FAQ.md")
            found = await call(client, "recall", query="where do answers go")
            assert found["results"][0]["text"] == "answers go in FAQ.md"
            await call(client, "doff", score="+")
            return worn

    worn = anyio.run(main)
    assert session_row(worn["session_id"])["status"] == "ended"
    assert store_rows("SELECT symbol FROM scores WHERE session_id = ?", [worn["session_id"]]) == [("+",)]


def test_concurrent_sessions_and_abandon_on_close(server: str, keys: dict[str, str]) -> None:
    worn: dict[str, dict[str, Any]] = {}

    async def wear(actor: str, ref: str, intent: str, both: anyio.Event, count: list[int]) -> None:
        async with http_client(server, keys[actor]) as client:
            worn[actor] = await call(client, "don", ref=ref, intent=intent, return_token=True)
            count.append(1)
            if len(count) == 2:
                both.set()
            await both.wait()
            me = await call(client, "whoami")
            assert me["actor"] == actor and me["session"]["session_id"] == worn[actor]["session_id"]

    async def main() -> None:
        both, count = anyio.Event(), []
        async with anyio.create_task_group() as tg:
            tg.start_soon(wear, "root", "tool", "implement it", both, count)
            tg.start_soon(wear, "ola", "open", "answer it", both, count)

    anyio.run(main)
    assert worn["root"]["session_id"] != worn["ola"]["session_id"]
    for actor in ("root", "ola"):
        sid = worn[actor]["session_id"]
        wait_until(lambda sid=sid: session_row(sid)["status"] == "abandoned", what=f"{sid} to be abandoned")
        assert session_row(sid)["end_reason"] == "connection_closed"
        assert not token_valid(worn[actor]["token"])


def test_a_session_token_is_a_bearer_too(server: str, invoke: Callable[..., Any], keys: dict[str, str]) -> None:
    from test_sessions_support import assume_json

    as_ola = {"MASQUE_ACTOR": "ola", "MASQUE_ACTOR_KEY": keys["ola"]}
    outer = assume_json(invoke, "open", "--intent", "answer it", env=as_ola)

    async def main() -> None:
        async with http_client(server, outer["token"]) as client:
            me = await call(client, "whoami")
            assert (me["actor"], me["via"]) == ("ola", "session")
            inner = await call(client, "don", ref="open", intent="answer more")
            assert inner["actor"] == "ola"

    anyio.run(main)


# The guard's bookkeeping of session owners, against a stand-in for the SDK's app (it opens a session on
# a request without Mcp-Session-Id, answers 404 for one it closed, and can hold a request open like a
# GET stream) and a clock the test moves: no waiting on real time.
class _FakeSdk:
    def __init__(self) -> None:
        self.open: set[str] = set()
        self.hold = anyio.Event()
        self.streaming = anyio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = dict(scope["headers"])
        session = headers.get(b"mcp-session-id", b"").decode()
        if not session:
            session = f"s{len(self.open) + 1}"
            self.open.add(session)
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"mcp-session-id", session.encode())]}
            )
        elif session not in self.open:
            await send({"type": "http.response.start", "status": 404, "headers": []})
        else:
            if scope["method"] == "GET":
                self.streaming.set()
                await self.hold.wait()  # a stream stays open until the test lets it go
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _request(guard: Any, key: str, session: str | None = None, method: str = "POST") -> tuple[int, str | None]:
    headers = [(b"authorization", f"Bearer {key}".encode())]
    if session:
        headers.append((b"mcp-session-id", session.encode()))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await guard({"type": "http", "method": method, "headers": headers}, receive, send)
    start = sent[0]
    opened = dict(start.get("headers", [])).get(b"mcp-session-id")
    return start["status"], opened.decode() if opened else None


def test_the_guard_forgets_owners_of_ended_reaped_and_long_idle_sessions(keys: dict[str, str]) -> None:
    from masque.mcp.http import BearerGuard

    now = [0.0]
    sdk = _FakeSdk()
    guard = BearerGuard(sdk, idle_timeout=100.0, clock=lambda: now[0])

    async def scenario() -> None:
        _, first = await _request(guard, keys["root"])
        _, second = await _request(guard, keys["root"])
        assert first and second and guard.tracked() == 2 and guard.owner(first) == "root"
        assert (await _request(guard, keys["ola"], first))[0] == 403  # bound to root

        # Ended by the client: forgotten.
        assert (await _request(guard, keys["root"], second, "DELETE"))[0] == 200
        assert guard.tracked() == 1

        # A stream held open keeps its owner however long it lasts...
        async with anyio.create_task_group() as tg:
            tg.start_soon(_request, guard, keys["root"], first, "GET")
            await sdk.streaming.wait()  # the stream's request is past the guard and held open
            now[0] += 10_000
            await _request(guard, keys["ola"])  # a new session sweeps idle owners
            assert (await _request(guard, keys["ola"], first))[0] == 403
            sdk.hold.set()
        # ...and once it is idle longer than the SDK keeps sessions, the next sweep forgets it.
        now[0] += 10_000
        await _request(guard, keys["ola"])
        assert guard.owner(first) is None and guard.tracked() == 1  # only the session just opened

        # Closed by the SDK (a 404): forgotten at once.
        _, third = await _request(guard, keys["root"])
        sdk.open.discard(str(third))
        assert (await _request(guard, keys["root"], third))[0] == 404
        assert guard.owner(str(third)) is None

    anyio.run(scenario)
