"""Sync (seed 001 §2) and the feedback REST endpoints (§5).

In-process: the endpoints through TestClient over a real store. As processes: a second home (its own
MASQUE_HOME) writes while the server is down, then syncs through a real `masque serve` on a free
127.0.0.1 port that is SIGKILLed mid-push, restarted on the same store, and reached through a proxy
that loses a reply.
"""

from __future__ import annotations

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
from test_sessions_support import add_actor, init_store, write_masques

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
    obs = client.post(
        "/observations", json={"masque": "tool", "kind": "focus", "data": {"level": 5}}, headers=player
    )
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
