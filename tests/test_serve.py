"""`masque serve`: the REST API in-process (TestClient over a real DuckDB store) and as a real process.

Generation goes to a small OpenAI-compatible server on 127.0.0.1 (the one test_mythatron_openai.py
uses), so the session's masque frames a real `openai` client call and the answer streams back as SSE.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from net_support import free_port
from test_mythatron_openai import FakeOpenAI, running_fake_openai
from test_sessions_support import add_actor, init_store, store_rows, write_masques

from masque.serve.app import create_app

Invoke = Callable[..., Any]


@pytest.fixture
def keys(invoke: Invoke) -> dict[str, str]:
    """Test masques in ./personas, founder `root` (admin) and a guest `visitor`; their keys."""
    write_masques()
    root = init_store(invoke)
    return {"root": root, "visitor": add_actor(invoke, "visitor", "guest")}


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app()) as c:
        yield c


@pytest.fixture
def llm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with running_fake_openai(tmp_path, monkeypatch, 'timeout = 5\nmax_retries = 0\nmodel = "fake-model"\n') as state:
        yield state


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def sse(text: str) -> list[tuple[str, Any]]:
    """(event, data) pairs of a text/event-stream body."""
    found = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((fields["event"], json.loads(fields["data"])))
    return found


def assert_problem(response: httpx.Response, status: int, reason: str, exit_code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["reason"] == reason and body["exit_code"] == exit_code
    assert body["type"] == f"urn:masque:problem:{reason}" and body["title"] and body["detail"]
    return dict(body)


def test_activate_generate_deactivate(keys: dict[str, str], client: TestClient, llm: FakeOpenAI) -> None:
    r = client.post(
        "/masks/activate",
        json={"masque": "tool", "intent": "implement the parser", "ttl": "1h"},
        headers=bearer(keys["root"]),
    )
    assert r.status_code == 200, r.text
    activated = r.json()
    assert activated["token"].startswith("msq_") and activated["session_id"].startswith("ses_")
    assert activated["actor"] == "root" and activated["expires_at"]
    prompt = activated["system_prompt"]
    assert "Be methodical" in prompt and "A small team writing Python" in prompt and "mcp://repo/source" in prompt

    token = activated["token"]
    r = client.post("/masks/generate", json={"prompt": "Plan the parser"}, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse(r.text)
    assert "".join(d["text"] for e, d in events if e == "token") == "".join(llm.pieces)
    (done,) = [d for e, d in events if e == "done"]
    assert done["session_id"] == activated["session_id"] and done["provider"] == "openai"
    assert (done["prompt_tokens"], done["completion_tokens"]) == (42, 7)
    (request,) = llm.requests
    assert (
        "Be methodical" in request["messages"][0]["content"] and request["messages"][-1]["content"] == "Plan the parser"
    )
    assert store_rows("SELECT session_id, status FROM generations") == [(activated["session_id"], "ok")]

    r = client.post("/memory/tool", json={"text": "the parser lives in parse.py"}, headers=bearer(token))
    assert r.status_code == 201, r.text
    r = client.post("/masks/deactivate", json={"score": "+", "notes": "tidy"}, headers=bearer(token))
    assert r.status_code == 200, r.text
    ended = r.json()
    assert ended["session"]["status"] == "ended" and ended["already_ended"] is False
    assert ended["memory"]["added"] == 1 and ended["memory"]["shards"]["tool"]["added"] == 1
    assert store_rows("SELECT symbol, notes FROM scores") == [("+", "tidy")]
    # The token died with the session: generating under it again is refused as an invalid credential.
    r = client.post("/masks/generate", json={"prompt": "again"}, headers=bearer(token))
    assert_problem(r, 401, "token_invalid", 3)


def test_a_refused_intent_is_a_problem_with_reason_and_exit_code_3(keys: dict[str, str], client: TestClient) -> None:
    r = client.post(
        "/masks/activate", json={"masque": "tool", "intent": "rush the release"}, headers=bearer(keys["root"])
    )
    body = assert_problem(r, 403, "intent_denied", 3)
    assert "rush" in body["detail"]
    assert store_rows("SELECT count(*) FROM sessions") == [(0,)]
    # /check decides the same without recording anything.
    r = client.post("/check", json={"masque": "tool", "intent": "rush the release"}, headers=bearer(keys["visitor"]))
    assert r.status_code == 200 and r.json()["allowed"] is False and r.json()["refusal_reason"] == "intent_denied"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "unauthenticated"),
        ({"Authorization": "Bearer "}, "unauthenticated"),
        (bearer("msqk_not-a-real-key"), "actor_key_invalid"),
        (bearer("msq_not-a-real-token"), "token_invalid"),
    ],
)
def test_missing_or_bad_bearer_is_401(
    keys: dict[str, str], client: TestClient, headers: dict[str, str], reason: str
) -> None:
    for method, path in (("get", "/sessions"), ("get", "/masques"), ("post", "/check")):
        kwargs: dict[str, Any] = {"json": {"masque": "tool", "intent": "test it"}} if method == "post" else {}
        r = getattr(client, method)(path, headers=headers, **kwargs)
        assert_problem(r, 401, reason, 3)
        assert r.headers["www-authenticate"].startswith("Bearer")
    # Health and the API description answer anyone.
    assert client.get("/health").json()["status"] == "ok"
    assert "/masks/activate" in client.get("/openapi.json").json()["paths"]


def test_a_guest_key_cannot_see_an_admins_sessions(keys: dict[str, str], client: TestClient) -> None:
    admin = client.post("/masks/activate", json={"masque": "ops", "intent": "deploy it"}, headers=bearer(keys["root"]))
    assert admin.status_code == 200, admin.text
    guest = client.post(
        "/masks/activate", json={"masque": "peer", "intent": "review it"}, headers=bearer(keys["visitor"])
    )
    assert guest.status_code == 200, guest.text
    seen = client.get("/sessions", headers=bearer(keys["visitor"])).json()
    assert [s["session_id"] for s in seen] == [guest.json()["session_id"]]
    everything = client.get("/sessions", params={"active": True}, headers=bearer(keys["root"])).json()
    assert {s["session_id"] for s in everything} == {admin.json()["session_id"], guest.json()["session_id"]}
    # The admin's session is "not found" for the guest, and the guest cannot end it.
    admin_id = admin.json()["session_id"]
    assert_problem(client.get(f"/sessions/{admin_id}", headers=bearer(keys["visitor"])), 404, "not_found", 4)
    r = client.post("/masks/deactivate", json={"session_id": admin_id}, headers=bearer(keys["visitor"]))
    assert_problem(r, 404, "not_found", 4)
    # Nor generate under it with its own key.
    r = client.post("/masks/generate", json={"prompt": "hi", "session_id": admin_id}, headers=bearer(keys["visitor"]))
    assert_problem(r, 404, "not_found", 4)


def test_registry_stats_and_memory_answer_like_the_cli(
    keys: dict[str, str], client: TestClient, invoke: Invoke
) -> None:
    listed = client.get("/masques", headers=bearer(keys["visitor"])).json()
    assert {m["name"] for m in listed["masques"]} >= {"Tool", "Open", "Ops", "Peer"}
    shown = client.get("/masques/tool", headers=bearer(keys["visitor"])).json()
    assert shown["ref"] == "tool@1.0.0"
    assert_problem(client.get("/masques/nosuch", headers=bearer(keys["visitor"])), 404, "not_found", 4)

    r = client.post("/masks/activate", json={"masque": "tool", "intent": "test it"}, headers=bearer(keys["root"]))
    sid = r.json()["session_id"]
    r = client.post("/masks/deactivate", json={"session_id": sid, "score": "*"}, headers=bearer(keys["root"]))
    assert r.status_code == 200, r.text
    served = client.get("/stats/masque", params={"subject": "tool"}, headers=bearer(keys["root"])).json()
    cli = json.loads(invoke(["stats", "tool", "--json"]).stdout)
    assert served == cli and served["sessions"]["total"] == 1
    assert_problem(client.get("/stats/masque", headers=bearer(keys["root"])), 400, "usage", 2)
    assert_problem(client.get("/stats/galaxy", headers=bearer(keys["root"])), 422, "usage", 2)

    r = client.post(
        "/memory/open",
        json={"text": "lighthouses use fresnel lenses", "tags": ["optics"]},
        headers=bearer(keys["root"]),
    )
    assert r.status_code == 201 and r.json()["stored"] is True, r.text
    found = client.get("/memory/open/search", params={"q": "fresnel", "k": 3}, headers=bearer(keys["root"])).json()
    assert found["results"][0]["text"] == "lighthouses use fresnel lenses"


def _wait_until_answering(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"masque serve exited early:\n{proc.stderr.read() if proc.stderr else ''}"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"masque serve did not answer {url} within {timeout}s")


@pytest.mark.slow
def test_the_served_process_answers_beside_the_cli_and_stops_cleanly(
    keys: dict[str, str], run_masque: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "masque", "serve", "--port", str(port), "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Started from a shell that wears a session: that id is no claim for what the server serves.
        env={**os.environ, "MASQUE_SESSION_ID": "ses_of_the_starting_shell"},
    )
    try:
        _wait_until_answering(f"{base}/health", proc)
        r = httpx.post(
            f"{base}/masks/activate",
            json={"masque": "open", "intent": "answer questions"},
            headers=bearer(keys["root"]),
        )
        assert r.status_code == 200, r.text
        sid = r.json()["session_id"]
        added = httpx.post(f"{base}/memory/open", json={"text": "served memory"}, headers=bearer(r.json()["token"]))
        assert added.status_code == 201, added.text
        # The server holds nothing open: the CLI lists (and ends) the session while it runs.
        listed = run_masque("sessions", "--json", "--active")
        assert listed.returncode == 0, listed.stderr
        assert [s["session_id"] for s in json.loads(listed.stdout)] == [sid]
        released = run_masque("release", sid)
        assert released.returncode == 0, released.stderr
        seen = httpx.get(f"{base}/sessions", headers=bearer(keys["root"])).json()
        assert seen[0]["session_id"] == sid and seen[0]["status"] == "ended"
        assert httpx.get(f"{base}/sessions").status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_every_masque_error_maps_to_its_documented_status() -> None:
    from masque.errors import (
        Conflict,
        MasqueError,
        NotFound,
        Refused,
        StoreBusy,
        StoreError,
        UsageError,
        ValidationFailed,
    )
    from masque.serve import problems

    cases: list[tuple[MasqueError, int, str, int]] = [
        (UsageError("u"), 400, "usage", 2),
        (ValidationFailed("v"), 422, "validation_failed", 1),
        (Refused("r", reason="unauthenticated"), 401, "unauthenticated", 3),
        (Refused("r", reason="ring_refused"), 403, "ring_refused", 3),
        (NotFound("n"), 404, "not_found", 4),
        (StoreBusy("b", hint="retry"), 503, "store_busy", 5),
        (StoreError("s"), 500, "store_error", 5),
        (MasqueError("m"), 500, "failed", 1),
        (Conflict("c", expected=1, current=2), 409, "conflict", 6),
    ]
    for exc, status, reason, exit_code in cases:
        response = problems.error_response(exc)
        body = json.loads(bytes(response.body))
        assert (response.status_code, body["reason"], body["exit_code"]) == (status, reason, exit_code)
        assert response.media_type == "application/problem+json" and body["detail"] == exc.message
    assert problems.error_response(StoreBusy("b")).headers["retry-after"] == "1"


def test_a_failing_provider_is_a_problem_and_is_logged(
    keys: dict[str, str], client: TestClient, llm: FakeOpenAI
) -> None:
    r = client.post("/masks/activate", json={"masque": "tool", "intent": "implement it"}, headers=bearer(keys["root"]))
    token = r.json()["token"]
    llm.fail_status = 500
    r = client.post("/masks/generate", json={"prompt": "Plan the parser"}, headers=bearer(token))
    body = assert_problem(r, 500, "failed", 1)
    assert "127.0.0.1" in body["detail"] and body["hint"]
    assert store_rows("SELECT status FROM generations") == [("error",)]
    # An actor key names no session: generate says which to send.
    r = client.post("/masks/generate", json={"prompt": "x"}, headers=bearer(keys["root"]))
    assert "session" in assert_problem(r, 400, "usage", 2)["detail"]


def test_serve_without_the_extra_says_what_to_install(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if `masque[serve]` were not installed
    result = invoke(["serve"])
    assert result.exit_code == 2
    assert "pip install 'masque[serve]'" in result.stderr and "uvicorn" in result.stderr


def test_extra_asgi_apps_mount_beside_the_api(keys: dict[str, str]) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("mounted")

    with TestClient(create_app(mounts={"/mcp": Starlette(routes=[Route("/", hello)])})) as c:
        assert c.get("/mcp/").text == "mounted"  # the mounted app does its own authentication
        assert c.get("/sessions", headers=bearer(keys["root"])).status_code == 200
        assert_problem(c.get("/nowhere", headers=bearer(keys["root"])), 404, "not_found", 4)
