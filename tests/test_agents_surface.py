"""The agents' surface for teams and the bus: MCP tools, REST routes, and MCP inside `masque serve`.

The team is the example formation (examples/team: orchestrator the arbiter, engineer, qa). The cycle is
the one docs/bus.md describes: the engineer proposes, qa critiques and asks for a revision, the team's
actor (a person) approves the proposal anyway -> Masque surfaces one conflict, the orchestrator resolves
it (revise), the engineer revises, qa approves the revision (no new conflict: the first reviews are
settled), then the team is released.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from mcp_support import REPO, call, connect, http_client, memory_server, refused
from net_support import free_port, wait_until
from test_sessions_support import add_actor, init_store, store_rows, write_masques

from masque.trust import rings

TEAM_DIR = REPO / "examples" / "team"
INTENT = "implement user authentication"
MEMBERS = ["orchestrator", "engineer", "qa"]
Invoke = Callable[..., Any]


@pytest.fixture
def keys(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The example team's masques on MASQUE_PATH; founder `root` (admin) and guest `gina`; their keys."""
    monkeypatch.setenv("MASQUE_PATH", str(TEAM_DIR))
    from masque.bus.access import clear_cache

    clear_cache()
    return {"root": init_store(invoke), "gina": add_actor(invoke, "gina", "guest")}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def counts() -> tuple[int, int, int]:
    """(teams, team members, sessions) recorded."""
    row = store_rows(
        "SELECT (SELECT count(*) FROM teams), (SELECT count(*) FROM team_members), (SELECT count(*) FROM sessions)"
    )
    return tuple(row[0])  # type: ignore[return-value]


def assert_cycle_history(events: list[dict[str, Any]]) -> None:
    kinds = [e["kind"] for e in events]
    assert kinds == ["proposal", "critique", "approval", "conflict", "resolution", "revision", "approval"]
    proposal, critique, person, conflict, resolution, revision, approval = events
    assert critique["payload"]["verdict"] == "revise" and critique["author_member"] == "qa"
    assert person["author_member"] is None and person["topic"] == "human.approval"
    assert conflict["topic"] == "masque.conflict" and conflict["payload"]["events"] == [critique["id"], person["id"]]
    assert resolution["author_member"] == "orchestrator" and resolution["payload"]["decision"] == "revise"
    assert resolution["reply_to"] == conflict["id"] and revision["reply_to"] == proposal["id"]
    assert approval["reply_to"] == revision["id"] and approval["author_member"] == "qa"


# --- (a) MCP, through the SDK's real Client ---------------------------------------------------------


def test_team_cycle_over_mcp(keys: dict[str, str]) -> None:
    async def main() -> dict[str, Any]:
        async with connect(memory_server(rings.Selection(name="root", key=keys["root"]))) as client:
            # One member cannot take the intent: nothing of the team is recorded.
            no = await refused(client, "team_spawn", masques=MEMBERS, intent="plan user authentication")
            assert no["exit_code"] == 3 and "engineer" in no["error"] and "qa" in no["error"]
            assert counts() == (0, 0, 0)

            team = await call(client, "team_spawn", masques=MEMBERS, intent=INTENT, name="auth", arbiter="orchestrator")
            assert [m["member"] for m in team["members"]] == sorted(MEMBERS)
            assert all(m["token"] is None for m in team["members"]), "tokens only with return_tokens"
            assert {"member": "orchestrator", "pattern": "*.conflict", "wired": True, "note": None} in team[
                "subscriptions"
            ]

            post = {"team": "auth"}
            p = (await call(client, "bus_post", **post, kind="proposal", member="engineer", text="login v1"))["event"]
            c = await call(client, "bus_post", **post, kind="critique", member="qa", reply_to=p["id"],
                           text="add rate limiting", request_revision=True)  # fmt: skip
            assert c["conflict"] is None
            a = await call(client, "bus_post", **post, kind="approval", reply_to=p["id"], text="ship it as is")
            conflict = a["conflict"]
            assert conflict is not None and conflict["payload"]["events"] == [c["event"]["id"], a["event"]["id"]]

            # The orchestrator hears conflicts only (it subscribes to *.output and *.conflict).
            heard = await call(client, "bus_read", team="auth", member="orchestrator")
            assert [e["id"] for e in heard["events"]] == [conflict["id"]]

            # Only the arbiter (or can_arbitrate) may resolve as a member; qa may not; then once only.
            qa = await refused(client, "bus_resolve", team="auth", conflict_id=conflict["id"], decision="accept",
                               notes="mine", member="qa")  # fmt: skip
            assert (qa["reason"], qa["exit_code"]) == ("capability_missing", 3)
            done = await call(client, "bus_resolve", team="auth", conflict_id=conflict["id"], decision="revise",
                              notes="rate limit first", member="orchestrator", prevails=c["event"]["id"])  # fmt: skip
            assert done["event"]["kind"] == "resolution"
            again = await refused(client, "bus_resolve", team="auth", conflict_id=conflict["id"], decision="accept",
                                  notes="late")  # fmt: skip
            assert again["reason"] == "already_resolved"

            r = await call(client, "bus_post", **post, kind="revision", member="engineer", reply_to=p["id"],
                           data={"text": "login v2", "diff": "+ rate limit"})  # fmt: skip
            ok = await call(client, "bus_post", **post, kind="approval", member="qa", reply_to=r["event"]["id"])
            assert ok["conflict"] is None, "the first reviews were settled by the resolution"

            history = await call(client, "bus_read", team="auth")
            assert_cycle_history(history["events"])
            since = await call(client, "bus_read", team="auth", since=r["event"]["id"], kind="approval,revision")
            assert [e["id"] for e in since["events"]] == [ok["event"]["id"]]

            released = await call(client, "team_release", team="auth", score="+", notes="shipped")
            assert released["status"] == "released" and len(released["ended"]) == 3 and not released["already_released"]
            shown = await call(client, "team_show", team="auth")
            assert shown["score"] == "+" and {m["session_status"] for m in shown["members"]} == {"ended"}
            late = await refused(client, "bus_post", team="auth", kind="output", member="engineer", text="more")
            assert (late["reason"], late["exit_code"]) == ("team_released", 3)
            return dict(team)

    team = anyio.run(main)
    assert store_rows("SELECT status, score FROM teams WHERE id = ?", [team["id"]]) == [("released", "+")]
    assert store_rows("SELECT count(*) FROM events WHERE type = 'bus_conflict_resolved'") == [(1,)]


def test_spawn_returns_tokens_only_when_asked_and_who_posts(keys: dict[str, str]) -> None:
    async def main() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        async with connect(memory_server()) as client:
            team = await call(client, "team_spawn", masques=MEMBERS, intent=INTENT, return_tokens=True)
            # Wearing a masque does not make the connection a member: it still acts as its caller (the actor).
            await call(client, "don", ref="engineer", intent="implement the login form")
            by_actor = await call(client, "bus_post", team=team["name"], kind="output", member="engineer", text="a")
        tokens = {m["member"]: m["token"] for m in team["members"]}
        # A client whose credential is a member's token (e.g. `masque mcp` inside `masque exec --team`) is that member.
        async with connect(memory_server(rings.Selection(token=tokens["qa"]))) as member:
            by_member = await call(member, "bus_post", team=team["name"], kind="output", text="b")
            other = await refused(member, "bus_post", team=team["name"], kind="output", member="engineer", text="c")
            assert other["reason"] == "not_that_member"
        return team, by_actor, by_member

    team, by_actor, by_member = anyio.run(main)
    assert all(m["token"].startswith("msq_") for m in team["members"])
    assert team["name"] == "implement-user-authentication"
    members = {m["member"]: m["session_id"] for m in team["members"]}
    assert (by_actor["event"]["author_member"], by_actor["event"]["actor"]) == ("engineer", "root")
    assert by_actor["event"]["author_session"] == members["engineer"]
    assert (by_member["event"]["author_member"], by_member["event"]["author_session"]) == ("qa", members["qa"])


# --- (b) REST, in-process ---------------------------------------------------------------------------


@pytest.fixture
def client() -> Iterator[TestClient]:
    from masque.serve.app import create_app

    with TestClient(create_app()) as c:
        yield c


def sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a text/event-stream body, comments left out."""
    found = []
    for block in text.strip().split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith(":")]
        if lines:
            fields = dict(line.split(": ", 1) for line in lines)
            found.append((fields["event"], json.loads(fields["data"])))
    return found


def test_team_cycle_over_rest(keys: dict[str, str], client: TestClient) -> None:
    root = bearer(keys["root"])
    no = client.post("/teams", json={"masques": MEMBERS, "intent": "plan user authentication"}, headers=root)
    assert no.status_code == 403 and no.headers["content-type"] == "application/problem+json"
    assert no.json()["exit_code"] == 3 and counts() == (0, 0, 0)

    spawn = {"masques": MEMBERS, "intent": INTENT, "name": "auth", "arbiter": "orchestrator", "return_tokens": True}
    r = client.post("/teams", json=spawn, headers=root)
    assert r.status_code == 201, r.text
    tokens = {m["member"]: m["token"] for m in r.json()["members"]}
    assert client.get("/teams", headers=root).json()["teams"][0]["name"] == "auth"

    def post(body: dict[str, Any], who: dict[str, str] = root) -> dict[str, Any]:
        answer = client.post("/teams/auth/bus", json=body, headers=who)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    # The engineer posts with its own session token (as inside `masque exec --team`): no `member` needed.
    p = post({"kind": "proposal", "text": "login v1"}, bearer(tokens["engineer"]))["event"]
    assert p["author_member"] == "engineer"
    posing = client.post("/teams/auth/bus", json={"kind": "output", "member": "qa", "text": "x"},
                         headers=bearer(tokens["engineer"]))  # fmt: skip
    assert posing.status_code == 403 and posing.json()["reason"] == "not_that_member"
    c = post({"kind": "critique", "member": "qa", "reply_to": p["id"], "text": "rate limit", "request_revision": True})

    # A stream opened now delivers the next event posted (since: the newest one it knows).
    streamed: dict[str, Any] = {}

    def tail() -> None:
        got = client.get(f"/teams/auth/bus/stream?since={c['event']['id']}&until=conflict", headers=root)
        streamed.update(status=got.status_code, type=got.headers["content-type"], events=sse(got.text))

    reader = threading.Thread(target=tail)
    reader.start()
    a = post({"kind": "approval", "reply_to": p["id"], "text": "ship it"})
    reader.join(60)
    assert not reader.is_alive()
    assert streamed["status"] == 200 and streamed["type"].startswith("text/event-stream")
    assert [e for e, _ in streamed["events"]] == ["approval", "conflict"]
    assert streamed["events"][1][1]["id"] == a["conflict"]["id"]

    conflict = a["conflict"]["id"]
    resolve = {"decision": "revise", "notes": "rate limiting first", "member": "orchestrator"}
    r = client.post(f"/teams/auth/bus/{conflict}/resolve", json=resolve, headers=root)
    assert r.status_code == 201, r.text
    r = client.post(f"/teams/auth/bus/{conflict}/resolve", json={"decision": "accept"}, headers=root)
    assert r.status_code == 403 and r.json()["reason"] == "already_resolved"
    v = post({"kind": "revision", "reply_to": p["id"], "text": "login v2"}, bearer(tokens["engineer"]))
    ok = post({"kind": "approval", "member": "qa", "reply_to": v["event"]["id"]})
    assert ok["conflict"] is None

    history = client.get("/teams/auth/bus", headers=root).json()["events"]
    assert_cycle_history(history)
    only = client.get("/teams/auth/bus", params={"kind": ["resolution", "conflict"]}, headers=root).json()
    assert [e["kind"] for e in only["events"]] == ["conflict", "resolution"]
    bad = client.get("/teams/auth/bus", params={"kind": "gossip"}, headers=root)
    assert bad.status_code == 400 and bad.json()["exit_code"] == 2

    r = client.post("/teams/auth/release", json={"score": "+", "notes": "shipped"}, headers=root)
    assert r.status_code == 200 and r.json()["status"] == "released" and len(r.json()["revoked"]) >= 3
    assert client.get("/teams/auth", headers=root).json()["members"][0]["session_status"] == "ended"
    gone = client.post("/teams/auth/bus", json={"kind": "output", "text": "late"}, headers=bearer(tokens["qa"]))
    assert gone.status_code == 401 and gone.json()["reason"] == "token_invalid"


# --- (d) a guest cannot read or post on the founder's team ------------------------------------------


def test_a_guest_cannot_use_the_founders_team(keys: dict[str, str], client: TestClient) -> None:
    r = client.post("/teams", json={"masques": MEMBERS, "intent": INTENT, "name": "auth"}, headers=bearer(keys["root"]))
    assert r.status_code == 201
    guest = bearer(keys["gina"])
    for response in (
        client.get("/teams/auth/bus", headers=guest),
        client.post("/teams/auth/bus", json={"kind": "proposal", "text": "mine now"}, headers=guest),
        client.post("/teams/auth/bus", json={"kind": "proposal", "member": "qa", "text": "x"}, headers=guest),
        client.get("/teams/auth/bus/stream?count=1", headers=guest),
    ):
        assert response.status_code == 403 and response.json()["reason"] == "not_team_actor", response.text
    assert client.get("/teams/auth", headers=guest).status_code == 404
    assert client.get("/teams", headers=guest).json() == {"teams": []}
    assert client.post("/teams/auth/release", headers=guest).status_code == 404
    assert client.get("/teams/auth/bus").status_code == 401

    async def main() -> None:
        async with connect(memory_server(rings.Selection(name="gina", key=keys["gina"]))) as mcp:
            for tool, args in (
                ("bus_read", {}),
                ("bus_post", {"kind": "proposal", "text": "mine now"}),
                ("bus_post", {"kind": "output", "member": "engineer", "text": "x"}),
            ):
                no = await refused(mcp, tool, team="auth", **args)
                assert (no["reason"], no["exit_code"]) == ("not_team_actor", 3)
            assert (await refused(mcp, "team_show", team="auth"))["exit_code"] == 4

    anyio.run(main)
    assert store_rows("SELECT count(*) FROM mask_events") == [(0,)]


def test_stream_refusals_are_problems_and_serve_runs_without_the_sdk(
    keys: dict[str, str], client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = bearer(keys["root"])
    assert client.post("/teams", json={"masques": MEMBERS, "intent": INTENT, "name": "auth"}, headers=root).status_code
    for query, status in (("kind=gossip", 400), ("since=yesterday", 400), ("member=nobody", 404)):
        r = client.get(f"/teams/auth/bus/stream?{query}", headers=root)
        assert r.status_code == status and r.headers["content-type"] == "application/problem+json", r.text
    assert client.get("/teams/nope/bus/stream", headers=root).status_code == 404

    from masque.serve.app import create_app
    from masque.serve.mcp_mount import mount_mcp

    monkeypatch.setitem(sys.modules, "mcp.server.mcpserver", None)  # as if `mcp` were not installed
    app = create_app()
    with caplog.at_level("WARNING", logger="masque.serve"):
        assert mount_mcp(app) is False
    assert "MCP endpoint /mcp not served" in caplog.text and "pip install 'masque[mcp]'" in caplog.text
    with TestClient(app) as bare:
        assert bare.post("/mcp", json={}, headers=root).status_code == 404
        assert bare.get("/teams/auth", headers=root).status_code == 200


# --- (c) `masque serve` as a real process: REST and MCP at /mcp under one bearer check -------------


@pytest.fixture
def served(keys: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    write_masques()  # `tool`, `open`... in ./personas, beside the example team on MASQUE_PATH
    for path in TEAM_DIR.glob("*.masque.yaml"):
        shutil.copy(path, Path.cwd() / "personas" / path.name)
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("MASQUE_PATH")
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "masque", "serve", "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def healthy() -> bool:
            assert proc.poll() is None, log_path.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_until(healthy, what="masque serve to answer /health")
            yield f"http://127.0.0.1:{port}", proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                assert proc.wait(timeout=60) == 0, log_path.read_text()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


@pytest.mark.slow
def test_serve_answers_rest_and_mcp_with_one_bearer(
    served: tuple[str, subprocess.Popen[bytes]], keys: dict[str, str]
) -> None:
    base, proc = served
    # Nothing presented: 401 on both, the same body shape the CLI's refusal has.
    assert httpx.get(f"{base}/teams").status_code == 401
    bare = httpx.post(f"{base}/mcp", json={}, headers={"Accept": "application/json, text/event-stream"})
    assert bare.status_code == 401 and bare.json()["reason"] == "unauthenticated"

    async def mcp_side() -> dict[str, Any]:
        async with http_client(f"{base}/mcp", keys["root"]) as client:
            names = {m["name"] for m in (await call(client, "list"))["masques"]}
            assert {"Tool", "Engineer", "QA"} <= names
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"team_spawn", "bus_post", "bus_read", "bus_resolve", "team_release"} <= tools
            worn = await call(client, "don", ref="tool", intent="implement the parser")
            ended = await call(client, "doff", score="+")
            assert ended["session_id"] == worn["session_id"] and ended["status"] == "ended"
            return worn

    worn = anyio.run(mcp_side)
    root = bearer(keys["root"])
    # The session worn over MCP is the one REST lists: one process, one store.
    listed = httpx.get(f"{base}/sessions/{worn['session_id']}", headers=root)
    assert listed.status_code == 200 and listed.json()["status"] == "ended"

    spawn = {"masques": MEMBERS, "intent": INTENT, "name": "auth", "arbiter": "orchestrator"}
    assert httpx.post(f"{base}/teams", json=spawn, headers=root, timeout=60).status_code == 201
    with httpx.Client(base_url=base, headers=root, timeout=60) as http:
        with http.stream("GET", "/teams/auth/bus/stream") as stream:
            lines = stream.iter_lines()
            assert next(lines) == ": tailing"  # listening from now on
            posted = http.post("/teams/auth/bus", json={"kind": "proposal", "member": "engineer", "text": "v1"})
            assert posted.status_code == 201
            block = []
            for line in lines:
                if not line and block:
                    break
                if line:
                    block.append(line)
            assert block[0] == f"id: {posted.json()['event']['id']}" and block[1] == "event: proposal"
        # The client went away; the server keeps serving.
        assert http.get("/teams/auth").json()["status"] == "active"
        assert http.post("/teams/auth/release", json={"score": "+"}).status_code == 200

    # A stream still open does not hold the server up: SIGTERM ends it and the server exits 0.
    lines: list[str] = []

    def tail() -> None:
        with (
            httpx.Client(base_url=base, headers=root, timeout=60) as http,
            http.stream("GET", "/teams/auth/bus/stream") as stream,
        ):
            for line in stream.iter_lines():
                lines.append(line)
        lines.append("<ended>")

    reader = threading.Thread(target=tail, daemon=True)
    reader.start()
    wait_until(lambda: ": tailing" in lines, what="the stream to start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    reader.join(30)
    assert lines[-1] == "<ended>"


# --- the shell demo ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("command", ["default", "python -m masque"])
def test_the_team_demo_runs(tmp_path: Path, command: str) -> None:
    """As the README runs it (the `masque` on PATH), and with MASQUE_CMD naming another command."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASQUE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    if command == "default":
        bin_dir = Path(sys.executable).parent
        if not (bin_dir / "masque").exists():
            pytest.skip("no `masque` console script beside this Python")
        env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    else:
        env["MASQUE_CMD"] = f"{sys.executable} -m masque"
    temp, here = tmp_path / "tmp", tmp_path / "here"
    temp.mkdir()
    here.mkdir()
    env["TMPDIR"] = str(temp)
    done = subprocess.run(
        ["bash", str(TEAM_DIR / "demo.sh")], capture_output=True, text=True, env=env, cwd=here, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout + done.stderr
    for expected in (
        "team    team_",
        "engineer.proposal",
        "qa.critique",
        "masque: warning: conflict bus_",
        "orchestrator.resolution",
        "decision=revise",
        "released team auth",
    ):
        assert expected in out, out
    # Everything lived in its own temporary MASQUE_HOME, removed at the end; the working directory is untouched.
    assert list(temp.iterdir()) == [] and list(here.iterdir()) == []
