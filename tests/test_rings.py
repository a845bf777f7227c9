"""Trust rings: init, actors, who acts, qualification, promotion without ring skipping, approvals."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from test_sessions_support import add_actor, assume_json, events, init_store, store_rows, write_masques

from masque.model import Ring
from masque.trust import rings

Invoke = Callable[..., Any]


@pytest.fixture(autouse=True)
def _masques() -> None:
    write_masques()


def as_actor(name: str, key: str) -> dict[str, str]:
    return {"MASQUE_ACTOR": name, "MASQUE_ACTOR_KEY": key}


def test_init_creates_founder_admin_and_prints_key_once(invoke: Invoke) -> None:
    first = invoke(["init", "--founder", "root"])
    assert first.exit_code == 0
    key = first.stdout.strip()
    assert key.startswith("msqk_") and len(key) > 40
    again = invoke(["init", "--founder", "root"])
    assert again.exit_code == 0
    assert again.stdout == "" and "already initialised" in again.stderr
    ((key_hash, ring, founder),) = store_rows("SELECT key_hash, ring, is_founder FROM actors")
    assert ring == "admin" and founder and key not in key_hash  # only a hash is stored


def test_first_assume_makes_the_local_user_founder_and_init_issues_the_key_later(invoke: Invoke) -> None:
    import getpass

    result = invoke(["assume", "tool", "--intent", "work on it", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["actor"] == getpass.getuser()
    ((key_hash, ring, founder),) = store_rows("SELECT key_hash, ring, is_founder FROM actors")
    assert (key_hash, ring, founder) == (None, "admin", True)
    issued = invoke(["init"])
    assert issued.exit_code == 0 and issued.stdout.strip().startswith("msqk_")
    assert "issued the key" in issued.stderr
    again = invoke(["init"])
    assert again.stdout == "" and "already initialised" in again.stderr


def test_actor_add_defaults_to_outsider_and_json_shows_key(invoke: Invoke) -> None:
    init_store(invoke)
    result = invoke(["actor", "add", "alice", "--json"])
    data = json.loads(result.stdout)
    assert set(data) == {"name", "ring", "key"} and data["ring"] == "outsider"
    listed = json.loads(invoke(["actor", "list", "--json"]).stdout)
    assert [a["name"] for a in listed["actors"]] == ["root", "alice"]


def test_only_a_more_trusted_ring_adds(invoke: Invoke) -> None:
    init_store(invoke)
    key = add_actor(invoke, "pat", "player")
    refused = invoke(["actor", "add", "bob", "--ring", "player"], env=as_actor("pat", key))
    assert refused.exit_code == 3 and "cannot add" in refused.stderr
    assert invoke(["actor", "add", "bob", "--ring", "guest"], env=as_actor("pat", key)).exit_code == 0


def test_wrong_or_half_given_key_is_refused_never_falls_back_to_founder(invoke: Invoke) -> None:
    init_store(invoke)
    add_actor(invoke, "alice", "guest")
    wrong = invoke(["whoami", "--json"], env=as_actor("alice", "msqk_wrong"))
    assert wrong.exit_code == 3 and "not valid" in wrong.stderr
    half = invoke(["whoami"], env={"MASQUE_ACTOR": "alice"})
    assert half.exit_code == 3


def test_key_file_selects_the_actor(invoke: Invoke, tmp_path: Any) -> None:
    init_store(invoke)
    key = add_actor(invoke, "gus", "guest")
    key_file = tmp_path / "gus.key"
    key_file.write_text(key + "\n")
    me = json.loads(
        invoke(
            [
                "whoami",
                "--json",
            ]
        ).stdout
    )
    assert me["actor"] == "root" and me["via"] == "founder"
    result = invoke(
        ["assume", "peer", "--intent", "review the diff", "--as", "gus", "--key-file", key_file, "--format", "json"]
    )
    assert json.loads(result.stdout)["actor"] == "gus"


def test_an_actor_sees_its_ring_and_below(invoke: Invoke) -> None:
    init_store(invoke)
    key = add_actor(invoke, "gina", "guest")
    add_actor(invoke, "pete", "player")
    add_actor(invoke, "otto", "outsider")
    seen = json.loads(invoke(["actor", "list", "--json"], env=as_actor("gina", key)).stdout)
    assert [a["name"] for a in seen["actors"]] == ["gina", "otto"]
    hidden = invoke(["actor", "demote", "pete"], env=as_actor("gina", key))
    assert hidden.exit_code == 4  # a more trusted actor is invisible, not "forbidden"


def test_promotion_is_one_ring_at_a_time_and_needs_a_more_trusted_ring(invoke: Invoke) -> None:
    init_store(invoke)
    pkey = add_actor(invoke, "pat", "player")
    add_actor(invoke, "olga")
    steps = [json.loads(invoke(["actor", "promote", "olga", "--json"]).stdout)["to"] for _ in range(3)]
    assert steps == ["guest", "player", "admin"]  # no skipping: outsider -> guest -> player -> admin
    add_actor(invoke, "otis")
    assert invoke(["actor", "promote", "otis"], env=as_actor("pat", pkey)).exit_code == 0  # to guest
    refused = invoke(["actor", "promote", "otis"], env=as_actor("pat", pkey))  # to player: not above it
    assert refused.exit_code == 3 and "cannot promote" in refused.stderr
    edge = invoke(["actor", "promote", "olga"])
    assert edge.exit_code == 2 and "already at the centre" in edge.stderr


def test_founder_cannot_be_moved_and_nobody_moves_themselves(invoke: Invoke) -> None:
    init_store(invoke)
    akey = add_actor(invoke, "ada", "admin")
    assert invoke(["actor", "demote", "root"], env=as_actor("ada", akey)).exit_code == 3
    assert invoke(["actor", "demote", "ada"], env=as_actor("ada", akey)).exit_code == 3


@pytest.mark.parametrize(
    ("actor_ring", "allowed"),
    [
        ("admin", {"ops", "tool", "peer", "open"}),
        ("player", {"tool", "peer", "open"}),
        ("guest", {"peer", "open"}),
        ("outsider", {"open"}),
    ],
)
def test_qualification_per_ring(invoke: Invoke, actor_ring: str, allowed: set[str]) -> None:
    init_store(invoke)
    key = add_actor(invoke, "who", actor_ring)
    env = as_actor("who", key)
    for masque in ("ops", "tool", "peer", "open"):
        result = invoke(["assume", masque, "--intent", "work on it", "--format", "json"], env=env)
        assert (result.exit_code == 0) == (masque in allowed), (masque, result.stderr)
        if result.exit_code:
            assert result.exit_code == 3 and f"ring {actor_ring}" in result.stderr
    refused = events("ring_refused")
    assert len(refused) == 4 - len(allowed)
    assert all(e["actor"] == "who" and e["payload"]["reason"] == "ring_refused" for e in refused)


def test_guest_sessions_are_capped_at_one_hour(invoke: Invoke) -> None:
    init_store(invoke)
    key = add_actor(invoke, "gwen", "guest")
    env = as_actor("gwen", key)
    too_long = invoke(["assume", "open", "--intent", "work on it", "--ttl", "2h"], env=env)
    assert too_long.exit_code == 3 and "guest session cap" in too_long.stderr
    s = assume_json(invoke, "open", "--intent", "work on it", env=env)
    started = s["started_at"]
    import datetime as dt

    length = dt.datetime.fromisoformat(s["expires_at"]) - dt.datetime.fromisoformat(started)
    assert length == dt.timedelta(hours=1)


def test_demotion_ends_live_sessions_and_their_credentials(invoke: Invoke) -> None:
    init_store(invoke)
    key = add_actor(invoke, "pia", "player")
    s = assume_json(invoke, "tool", "--intent", "work on it", env=as_actor("pia", key))
    assert invoke(["token", "verify", s["token"]]).exit_code == 0
    assert invoke(["actor", "demote", "pia"]).exit_code == 0
    verify = invoke(["token", "verify", s["token"], "--json"])
    assert verify.exit_code == 3 and json.loads(verify.stdout)["reason"] == "revoked"
    ((status, reason),) = store_rows("SELECT status, end_reason FROM sessions WHERE id = ?", [s["session_id"]])
    assert (status, reason) == ("revoked", "demoted")


def test_disapproval_suspends_until_approved(invoke: Invoke) -> None:
    init_store(invoke)
    key = add_actor(invoke, "dan", "player")
    env = as_actor("dan", key)
    s = assume_json(invoke, "tool", "--intent", "work on it", env=env)
    assert invoke(["actor", "disapprove", "dan", "--reason", "pushed to main"]).exit_code == 0
    assert invoke(["token", "verify", s["token"]]).exit_code == 3
    refused = invoke(["assume", "open", "--intent", "work on it"], env=env)
    assert refused.exit_code == 3 and "pushed to main" in refused.stderr
    listed = json.loads(invoke(["actor", "list", "--json"]).stdout)["actors"]
    assert next(a for a in listed if a["name"] == "dan")["disapproved"] is True
    approved = json.loads(invoke(["actor", "approve", "dan", "--json"]).stdout)
    assert approved["lifted"] == 1 and approved["disapproved"] is False
    assert invoke(["assume", "open", "--intent", "work on it", "--format", "json"], env=env).exit_code == 0


def test_a_lower_ring_cannot_lift_a_higher_rings_disapproval(invoke: Invoke) -> None:
    init_store(invoke)
    pkey = add_actor(invoke, "pam", "player")
    add_actor(invoke, "gil", "guest")
    assert invoke(["actor", "disapprove", "gil", "--reason", "spam"]).exit_code == 0  # by the admin
    result = json.loads(invoke(["actor", "approve", "gil", "--json"], env=as_actor("pam", pkey)).stdout)
    assert result["lifted"] == 0 and result["disapproved"] is True


def test_qualifies_matrix_matches_the_issue() -> None:
    order = [Ring.ADMIN, Ring.PLAYER, Ring.GUEST, Ring.OUTSIDER]
    for i, actor in enumerate(order):
        for j, masque in enumerate(order):
            assert rings.qualifies(actor, masque) == (i <= j)


def test_a_bad_key_at_assume_is_refused_and_recorded(invoke: Invoke) -> None:
    init_store(invoke)
    add_actor(invoke, "alice", "player")
    result = invoke(["assume", "open", "--intent", "work on it"], env=as_actor("alice", "msqk_guess"))
    assert result.exit_code == 3
    (event,) = events("assume_refused")
    assert event["actor"] == "alice" and event["payload"]["reason"] == "actor_key_invalid"
    assert event["payload"]["actor_verified"] is False
    assert store_rows("SELECT count(*) FROM sessions") == [(0,)]


def test_a_bearer_is_an_actor_key_or_a_token_and_nothing_is_refused(invoke: Invoke) -> None:
    """Served surfaces (MCP over HTTP, `masque serve`) have no founder fallback."""
    from masque.errors import Refused

    init_store(invoke)
    key = add_actor(invoke, "gina", "guest")
    sel = rings.bearer_selection(f"Bearer {key}")
    assert (sel.name, sel.key) == ("gina", key)
    assert rings.acting(sel).actor.name == "gina"
    for bad in (None, "", "Bearer ", "msqk_not-a-key-of-anyone", "msq_" + "x" * 40):
        with pytest.raises(Refused) as refused:
            rings.acting(rings.bearer_selection(bad))
        assert refused.value.reason in {"unauthenticated", "actor_key_invalid", "token_invalid"}
