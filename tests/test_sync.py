"""Sync (seed 001 §2) and the feedback REST endpoints (§5).

In-process: the endpoints through TestClient over a real store. As processes: a second home (its own
MASQUE_HOME) writes while the server is down, then syncs through a real `masque serve` on a free
127.0.0.1 port that is SIGKILLed mid-push, restarted on the same store, and reached through a proxy
that loses a reply.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from net_support import free_port
from test_sessions_support import add_actor, init_store, store_rows, write_masques

from masque.serve.app import create_app

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "mappers" / "focus.mapper.yaml"
MORNING = "2026-12-01T09:00:00+00:00"
Invoke = Callable[..., Any]
Run = Callable[..., subprocess.CompletedProcess[str]]


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def problem(response: httpx.Response, status: int, reason: str, exit_code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = dict(response.json())
    assert (body["reason"], body["exit_code"]) == (reason, exit_code), body
    return body


@pytest.fixture
def keys(invoke: Invoke) -> dict[str, str]:
    write_masques()
    return {
        "root": init_store(invoke),
        "player": add_actor(invoke, "pat", "player"),
        "guest": add_actor(invoke, "visitor", "guest"),
    }


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app()) as c:
        yield c


def example_doc() -> dict[str, Any]:
    return dict(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))


# --- the REST endpoints ------------------------------------------------------------------------


def test_mappers_over_http_versions_and_a_stale_put_is_409_exit_6(keys: dict[str, str], client: TestClient) -> None:
    root = bearer(keys["root"])
    created = client.post("/mappers", json={"doc": example_doc()}, headers=root)
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1 and created.headers["etag"] == '"1"'
    assert [m["id"] for m in client.get("/mappers", headers=bearer(keys["guest"])).json()] == ["focus"]

    read = client.get("/mappers/focus", headers=root)
    doc = read.json()["doc"]
    doc["rules"][0]["weight"] = 3.5
    updated = client.put("/mappers/focus", json={"doc": doc}, headers={**root, "If-Match": read.headers["etag"]})
    assert updated.status_code == 200, updated.text
    assert updated.json()["version"] == 2 and updated.json()["weights"][doc["rules"][0]["id"]] == 3.5

    # Another writer read version 1 too: its PUT is refused, nothing written.
    doc["rules"][0]["weight"] = 1.0
    stale = client.put("/mappers/focus", json={"doc": doc, "expect_version": 1}, headers=root)
    body = problem(stale, 409, "conflict", 6)
    assert (body["expected"], body["current"]) == (1, 2) and "re-read" in body["hint"]
    problem(client.put("/mappers/focus", json={"doc": doc}, headers=root), 400, "usage", 2)  # no version stated
    versions = client.get("/mappers/focus/versions", headers=root).json()
    assert [v["version"] for v in versions] == [1, 2]
    assert client.get("/mappers/focus", params={"version": 1}, headers=root).json()["version"] == 1
    problem(client.post("/mappers", json={"doc": doc}, headers=bearer(keys["guest"])), 403, "ring_refused", 3)
    broken = {**doc, "rules": [{"id": "x"}]}
    problem(client.post("/mappers", json={"doc": broken}, headers=root), 422, "validation_failed", 1)


def test_observe_map_and_feedback_over_http_follow_the_ring_rule(keys: dict[str, str], client: TestClient) -> None:
    root, player = bearer(keys["root"]), bearer(keys["player"])
    assert client.post("/mappers", json={"doc": example_doc()}, headers=root).status_code == 201
    obs = client.post("/observations", json={"masque": "tool", "kind": "focus", "data": {"level": 5}}, headers=player)
    assert obs.status_code == 201, obs.text
    assert obs.json()["recorded_by"] == "pat"
    refused = client.post(
        "/observations", json={"masque": "tool", "kind": "focus", "data": {"level": 1}}, headers=bearer(keys["guest"])
    )
    problem(refused, 403, "ring_refused", 3)

    mapped = client.get(
        "/map-persona",
        params={"mapperId": "focus", "personaId": "tool", "detailLevel": "basic", "at": MORNING},
        headers=player,
    )
    assert mapped.status_code == 200, mapped.text
    suggestions = mapped.json()["suggestions"]
    assert suggestions and set(suggestions[0]) == {"id", "text"}
    problem(
        client.get("/map-persona", params={"mapperId": "focus", "personaId": "tool", "detailLevel": "x"}, headers=root),
        400,
        "usage",
        2,
    )

    # Only the actor a suggestion was made for may judge it.
    sid = suggestions[0]["id"]
    problem(client.post("/feedback", json={"target": sid, "score": "+"}, headers=root), 403, "not_your_suggestion", 3)
    judged = client.post("/feedback", json={"target": sid, "score": "+", "notes": "good"}, headers=player)
    assert judged.status_code == 201, judged.text
    assert judged.json()["actor"] == "pat" and judged.json()["learned"][0]["mapper"] == "focus"
    kinds = [o["kind"] for o in client.get("/observations", params={"masque": "tool"}, headers=player).json()]
    assert kinds == ["focus", "feedback"]
    assert client.get("/profiles/tool", headers=player).json()["masque"] == "tool"
    problem(client.get("/mappers"), 401, "unauthenticated", 3)


# --- a real server and a second home -------------------------------------------------------------


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Server:
    """`masque serve` on its own home and a fixed free port; killable and restartable on the same store."""

    home: Path
    port: int
    proc: subprocess.Popen[str] | None = None
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "MASQUE_HOME": str(self.home)}

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "masque", "serve", "--port", str(self.port), "--log-level", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        proc = self.proc

        def answering() -> bool:
            assert proc.poll() is None, f"masque serve exited early: {proc.stderr.read() if proc.stderr else ''}"
            try:
                return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for("masque serve to answer", answering)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.communicate(timeout=30)
            self.proc = None

    def get(self, path: str, **params: Any) -> Any:
        r = httpx.get(f"{self.url}{path}", params=params, headers=bearer(self.keys["boss"]), timeout=10)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def server(tmp_path: Path, run_masque: Run) -> Iterator[Server]:
    """A server home (founder boss, player laptop, guest visitor) with the test masques; not started."""
    write_masques()
    srv = Server(tmp_path / "server-home", free_port())
    env = {"MASQUE_HOME": str(srv.home)}
    made = run_masque("init", "--founder", "boss", "--json", env=env)
    assert made.returncode == 0, made.stderr
    srv.keys["boss"] = json.loads(made.stdout)["key"]
    for name, ring in (("laptop", "player"), ("visitor", "guest")):
        added = run_masque("actor", "add", name, "--ring", ring, "--json", env=env)
        assert added.returncode == 0, added.stderr
        srv.keys[name] = json.loads(added.stdout)["key"]
    yield srv
    srv.stop()


def key_file(tmp_path: Path, name: str, key: str) -> Path:
    path = tmp_path / f"{name}.key"
    path.write_text(key + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def add_remote(invoke: Invoke, name: str, url: str, key: Path) -> None:
    result = invoke(["remote", "add", name, url, "--key-file", key])
    assert result.exit_code == 0, result.output


def status(invoke: Invoke, *args: str) -> dict[str, Any]:
    result = invoke(["sync", "status", "--json", *args])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def observe(invoke: Invoke, level: int) -> None:
    result = invoke(["observe", "tool", "--kind", "focus", "--data", json.dumps({"level": level})])
    assert result.exit_code == 0, result.output


def push(invoke: Invoke, *args: str) -> tuple[int, dict[str, Any] | None, str]:
    result = invoke(["sync", "push", "--json", *args])
    try:
        body = json.loads(result.stdout)
    except ValueError:
        body = None
    return result.exit_code, body, result.output


@pytest.mark.slow
def test_offline_writes_wait_then_push_once_pull_and_identity(invoke: Invoke, server: Server, tmp_path: Path) -> None:
    # This home (the client) writes while the server is not running.
    init_store(invoke)
    add_remote(invoke, "origin", server.url, key_file(tmp_path, "laptop", server.keys["laptop"]))
    observe(invoke, 4)
    observe(invoke, 5)
    assert invoke(["mapper", "put", EXAMPLE]).exit_code == 0
    mapped = invoke(["map", "--mapper", "focus", "--masque", "tool", "--at", MORNING, "--json"])
    sug = json.loads(mapped.stdout)["suggestions"][0]["id"]
    assert invoke(["feedback", sug, "+", "--notes", "offline"]).exit_code == 0
    session = json.loads(invoke(["assume", "tool", "--intent", "implement it", "--format", "json"]).stdout)
    assert invoke(["release", session["session_id"], "--score", "+"]).exit_code == 0

    before = status(invoke)
    assert before["reachable"] is False and before["pending"] == {
        "observation": 2,
        "feedback": 1,
        "session": 1,
        "score": 1,
    }
    offline = invoke(["sync", "push"])
    assert offline.exit_code == 5 and server.url in offline.output
    assert status(invoke)["pending_total"] == 5  # nothing lost

    server.start()
    created = httpx.post(f"{server.url}/mappers", json={"doc": example_doc()}, headers=bearer(server.keys["boss"]))
    assert created.status_code == 201, created.text
    code, body, out = push(invoke)
    assert code == 0, out
    assert body is not None and body["applied"] == {"observation": 2, "feedback": 1, "session": 1, "score": 1}
    after = status(invoke)
    assert after["reachable"] is True and after["pending_total"] == 0 and after["last_push_at"]

    # On the server: each exactly once, attributed to the pushing actor (the key's), never to `root`.
    seen = server.get("/observations", masque="tool")
    assert [(o["kind"], o["recorded_by"]) for o in seen] == [
        ("focus", "laptop"),
        ("focus", "laptop"),
        ("feedback", "laptop"),
    ]
    sessions = server.get("/sessions")
    pushed = [s for s in sessions if s["session_id"] == session["session_id"]]
    assert len(pushed) == 1 and pushed[0]["actor"] == "laptop" and pushed[0]["status"] != "active"

    # Again: nothing new anywhere.
    code, body, out = push(invoke)
    assert code == 0 and body is not None and body["records"] == 0, out
    assert len(server.get("/observations", masque="tool")) == 3

    # Pull: a mapper version put on the server arrives; pulling again skips it.
    doc = server.get("/mappers/focus")["doc"]
    doc["rules"][0]["weight"] = 4.25
    put = httpx.put(
        f"{server.url}/mappers/focus", json={"doc": doc}, headers={**bearer(server.keys["boss"]), "If-Match": '"1"'}
    )
    assert put.status_code == 200, put.text
    assert server.get("/profiles/tool")["masque"] == "tool"  # built on the server from what was pushed
    pulled = invoke(["sync", "pull", "--json"])
    assert pulled.exit_code == 0, pulled.output
    assert json.loads(pulled.stdout)["mappers_added"] == ["focus v2"]
    cached = store_rows("SELECT remote, masque, json_extract(body, '$.kinds') FROM sync_remote_profiles")
    assert [(r[0], r[1]) for r in cached] == [("origin", "tool")] and json.loads(cached[0][2])["focus"] == 2
    shown = json.loads(invoke(["mapper", "show", "focus", "--json"]).stdout)
    assert shown["version"] == 2 and shown["weights"][doc["rules"][0]["id"]] == 4.25
    again = json.loads(invoke(["sync", "pull", "--json"]).stdout)
    assert again["mappers_added"] == [] and status(invoke)["pull_watermark"] == again["watermark"]

    # Both sides write a version 3: the local one is kept and reported, never overwritten (exit 6).
    local = tmp_path / "focus.mapper.yaml"
    mine = {**doc, "rules": [{**doc["rules"][0], "weight": 0.5}, *doc["rules"][1:]]}
    local.write_text(yaml.safe_dump(mine), encoding="utf-8")
    assert invoke(["mapper", "put", local]).exit_code == 0
    doc["rules"][0]["weight"] = 7.0
    theirs = httpx.put(
        f"{server.url}/mappers/focus", json={"doc": doc}, headers={**bearer(server.keys["boss"]), "If-Match": '"2"'}
    )
    assert theirs.status_code == 200, theirs.text
    diverged = invoke(["sync", "pull"])
    assert diverged.exit_code == 6 and "conflict: mapper focus v3" in diverged.output
    kept = json.loads(invoke(["mapper", "show", "focus", "--json"]).stdout)
    assert kept["version"] == 3 and kept["weights"][doc["rules"][0]["id"]] == 0.5

    # A key file others can read is refused before anything is stored.
    loose = key_file(tmp_path, "loose", server.keys["laptop"])
    loose.chmod(0o644)
    refused_add = invoke(["remote", "add", "loose", server.url, "--key-file", loose])
    assert refused_add.exit_code == 2 and "chmod 600" in refused_add.output

    # A bad key is exit 3 with the server's reason.
    add_remote(invoke, "bad", server.url, key_file(tmp_path, "bad", "msqk_" + "x" * 40))
    refused = invoke(["sync", "push", "--remote", "bad"])
    assert refused.exit_code == 3 and "actor_key_invalid" in refused.output + str(refused.exception or "")


@pytest.mark.slow
def test_a_guest_pushing_never_makes_a_more_trusted_row(invoke: Invoke, server: Server, tmp_path: Path) -> None:
    init_store(invoke)  # locally the founder `root` (admin) wrote everything
    observe(invoke, 3)
    session = json.loads(invoke(["assume", "ops", "--intent", "deploy the logs", "--format", "json"]).stdout)
    assert invoke(["release", session["session_id"]]).exit_code == 0
    server.start()
    add_remote(invoke, "origin", server.url, key_file(tmp_path, "visitor", server.keys["visitor"]))
    code, body, out = push(invoke)
    assert code == 1 and body is not None, out  # the observation of a player-ring masque is rejected, listed
    assert [(r["kind"], r["reason"]) for r in body["rejected"]] == [("observation", "ring_refused")]
    assert body["applied"]["session"] == 1
    assert server.get("/observations", masque="tool") == []
    row = server.get(f"/sessions/{session['session_id']}")
    assert (row["actor"], row["actor_ring"], row["masque_ring"]) == ("visitor", "guest", "guest")
    assert status(invoke)["pending_total"] == 0  # a rejection is the server's final answer, not a stuck outbox


def observe_many(count: int) -> None:
    from masque.feedback import observations

    for level in range(count):
        observations.observe("tool", "focus", {"level": level})


def levels_on(server: Server) -> list[int]:
    return sorted(int(o["data"]["level"]) for o in server.get("/observations", masque="tool"))


@pytest.mark.slow
def test_a_server_killed_mid_push_loses_and_duplicates_nothing(invoke: Invoke, server: Server, tmp_path: Path) -> None:
    init_store(invoke)
    observe_many(60)
    server.start()
    add_remote(invoke, "origin", server.url, key_file(tmp_path, "laptop", server.keys["laptop"]))
    client = subprocess.Popen(
        [sys.executable, "-m", "masque", "sync", "push", "--batch-size", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    assert client.stdout is not None
    confirmed = 0
    while confirmed < 3:  # the client prints a line per batch the server confirmed
        line = client.stdout.readline()
        assert line, f"the push ended early: {client.communicate(timeout=30)}"
        confirmed += line.startswith("confirmed batch")
    server.kill()
    out, err = client.communicate(timeout=60)
    assert client.returncode == 5, (out, err)
    assert server.url in err and "Traceback" not in err
    left = status(invoke)["pending"]["observation"]
    assert 0 < left <= 57  # what was confirmed left the outbox, the rest waits

    server.start()  # the same store
    code, _, out = push(invoke)
    assert code == 0, out
    assert levels_on(server) == list(range(60))  # nothing lost, nothing twice
    assert status(invoke)["pending_total"] == 0


class DroppingProxy:
    """Forwards HTTP to the server on 127.0.0.1; the first request's reply is read and thrown away."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.dropped: list[bytes] = []
        self.drop_next = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_message(sock: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body

    def _handle(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream))
        if self.drop_next:
            self.drop_next = False
            upstream.sendall(self._read_message(client))
            self.dropped.append(self._read_message(upstream))  # the server answered; the client never hears it
            client.close()
            upstream.close()
            return

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            try:
                while chunk := src.recv(65536):
                    dst.sendall(chunk)
            except OSError:
                pass
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
        back.start()
        pipe(client, upstream)
        back.join(30)
        client.close()
        upstream.close()

    def close(self) -> None:
        self.listener.close()


@pytest.mark.slow
def test_a_lost_reply_then_a_retry_creates_nothing_twice(invoke: Invoke, server: Server, tmp_path: Path) -> None:
    init_store(invoke)
    observe_many(3)
    server.start()
    proxy = DroppingProxy(server.port)
    try:
        add_remote(invoke, "origin", f"http://127.0.0.1:{proxy.port}", key_file(tmp_path, "lap", server.keys["laptop"]))
        lost = invoke(["sync", "push"])
        assert lost.exit_code == 5, lost.output
        assert len(proxy.dropped) == 1 and b" 200 " in proxy.dropped[0].split(b"\r\n")[0]
        assert levels_on(server) == [0, 1, 2]  # the server applied the batch; the client does not know
        assert status(invoke)["pending"]["observation"] == 3  # so nothing left the outbox

        code, body, out = push(invoke)
        assert code == 0 and body is not None, out
        assert body["replayed_batches"] == 1 and body["applied"]["observation"] == 0
        assert levels_on(server) == [0, 1, 2]
        assert status(invoke)["pending_total"] == 0
    finally:
        proxy.close()


# --- in process: the batch endpoint and the client's refusals ----------------------------------


def obs_record(rid: str, level: int, **extra: Any) -> dict[str, Any]:
    return {"kind": "observation", "id": rid, "masque": "tool", "obs_kind": "focus", "data": {"level": level}, **extra}


def batch(*records: dict[str, Any]) -> dict[str, Any]:
    from masque.sync.outbox import batch_id

    return {"id": batch_id(list(records)), "records": list(records), "origin": {"machine": "laptop"}}


def test_a_pushed_batch_applies_once_as_the_pusher(keys: dict[str, str], client: TestClient) -> None:
    player = bearer(keys["player"])
    first = batch(obs_record("obs_A", 1, recorded_by="root"), obs_record("obs_B", 2))
    answer = client.post("/sync/batches", json=first, headers=player)
    assert answer.status_code == 200, answer.text
    assert answer.json()["applied"]["observation"] == 2 and answer.json()["replayed"] is False
    again = client.post("/sync/batches", json=first, headers=player).json()
    assert again["replayed"] is True
    overlapping = client.post(
        "/sync/batches", json=batch(obs_record("obs_B", 2), obs_record("obs_C", 3)), headers=player
    )
    assert overlapping.json()["duplicates"] == 1 and overlapping.json()["applied"]["observation"] == 1
    seen = client.get("/observations", params={"masque": "tool"}, headers=player).json()
    assert [(o["data"]["level"], o["recorded_by"]) for o in seen] == [(1, "pat"), (2, "pat"), (3, "pat")]

    tampered = {**first, "records": [obs_record("obs_A", 9)]}
    problem(client.post("/sync/batches", json=tampered, headers=player), 400, "usage", 2)
    problem(client.post("/sync/batches", json=first), 401, "unauthenticated", 3)
    live = {
        "kind": "session", "id": "ses_01TESTSESSION0000000000000", "masque": "ops", "version": "2.0.0",
        "masque_ring": "admin", "actor": "root", "actor_ring": "admin", "intent": "deploy it", "status": "active",
        "started_at": "2026-11-30T10:00:00+00:00",
    }  # fmt: skip
    guest = client.post("/sync/batches", json=batch(live), headers=bearer(keys["guest"])).json()
    assert guest["applied"]["session"] == 1
    row = client.get(f"/sessions/{live['id']}", headers=bearer(keys["root"])).json()
    assert (row["actor"], row["actor_ring"], row["masque_ring"], row["status"]) == (
        "visitor",
        "guest",
        "guest",
        "ended",
    )


def test_remotes_and_an_unreachable_server(invoke: Invoke, tmp_path: Path) -> None:
    write_masques()
    init_store(invoke)
    guest_key = add_actor(invoke, "visitor", "guest")
    key = key_file(tmp_path, "k", "msqk_" + "a" * 40)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    loose = tmp_path / "loose.key"
    loose.write_text("msqk_x\n", encoding="utf-8")
    loose.chmod(0o640)
    bad = invoke(["remote", "add", "origin", url, "--key-file", loose])
    assert bad.exit_code == 2 and "chmod 600" in bad.output
    guest = invoke(["remote", "add", "origin", url, "--key-file", key],
                   env={"MASQUE_ACTOR": "visitor", "MASQUE_ACTOR_KEY": guest_key})  # fmt: skip
    assert guest.exit_code == 3
    add_remote(invoke, "origin", url, key)
    listed = json.loads(invoke(["remote", "list", "--json"]).stdout)
    assert listed == [{"name": "origin", "url": url, "key_file": str(key)}]
    assert key.read_text(encoding="utf-8").strip() not in invoke(["remote", "list"]).output

    observe(invoke, 2)
    info = status(invoke)
    assert info["reachable"] is False and info["pending"]["observation"] == 1  # status: not an error
    pushed = invoke(["sync", "push"])
    assert pushed.exit_code == 5 and url in pushed.output
    assert status(invoke)["pending"]["observation"] == 1
    assert invoke(["sync", "pull"]).exit_code == 5
    assert invoke(["sync", "status", "--remote", "nope"]).exit_code == 4
    assert invoke(["remote", "remove", "origin"]).exit_code == 0
    assert invoke(["sync", "status"]).exit_code == 4
