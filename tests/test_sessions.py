"""Don and doff by CLI: assume formats, refusals as events, release, chaining, local scope, revoke."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_sessions_support import add_actor, assume_json, events, init_store, store_rows, write_masques

Invoke = Callable[..., Any]
REQUIRED = {
    "session_id",
    "masque",
    "version",
    "actor",
    "intent",
    "started_at",
    "expires_at",
    "token",
    "role",
    "accessor",
    "knowledge",
    "system_prompt",
}


@pytest.fixture(autouse=True)
def _setup(invoke: Invoke) -> None:
    write_masques()
    init_store(invoke)


def test_assume_json_has_the_documented_keys_and_prompt(invoke: Invoke) -> None:
    Path("masque.toml").write_text('[knowledge]\nrepo = "http://localhost:9000"\n')
    s = assume_json(invoke, "tool@1.0.0", "--intent", "implement the parser")
    assert set(s) >= REQUIRED
    assert (s["masque"], s["version"], s["actor"], s["role"]) == ("tool", "1.0.0", "root", "tool-ci")
    assert s["knowledge"] == [{"uri": "mcp://repo/source", "endpoint": "http://localhost:9000/source"}]
    prompt = s["system_prompt"]
    assert "implement the parser" in prompt and "Be methodical" in prompt and "small team" in prompt
    (row,) = store_rows("SELECT masque, version, content_hash, intent, status FROM sessions")
    assert row[:2] == ("tool", "1.0.0") and len(row[2]) == 64 and row[3:] == ("implement the parser", "active")
    assert [e["type"] for e in events() if e["session_id"] == s["session_id"]] == [
        "mask_session_started",
        "credential_minted",
    ]
    assert store_rows("SELECT skill FROM masque_skills") == [("skill://programming/python",)]


def test_assume_env_output_evals_in_a_shell(invoke: Invoke) -> None:
    result = invoke(["assume", "tool", "--intent", "implement it; rm -rf / 'quoted'", "--format", "env"])
    assert result.exit_code == 0
    shell = subprocess.run(
        ["bash", "-c", result.stdout + 'printf "%s\\n%s\\n%s" "$MASQUE_SESSION_ID" "$MASQUE_TOKEN" "$MASQUE_INTENT"'],
        capture_output=True,
        text=True,
        check=True,
    )
    sid, token, intent = shell.stdout.split("\n")
    assert sid.startswith("ses_") and token.startswith("msq_")
    assert intent == "implement it; rm -rf / 'quoted'"


def test_assume_text_shows_a_panel_with_the_lens(invoke: Invoke) -> None:
    result = invoke(["assume", "tool", "--intent", "implement it", "--format", "text"])
    assert result.exit_code == 0
    assert "masque tool@1.0.0" in result.stdout and "Be methodical" in result.stdout
    assert "shown once" in result.stdout


def test_intent_refusal_exits_3_and_is_recorded(invoke: Invoke) -> None:
    result = invoke(["assume", "tool", "--intent", "rush the release", "--format", "json"])
    assert result.exit_code == 3 and "rush *" in result.stderr
    (event,) = events("intent_denied")
    assert (event["actor"], event["masque"], event["version"]) == ("root", "tool", "1.0.0")
    assert event["payload"]["intent"] == "rush the release" and event["payload"]["pattern"] == "rush *"
    assert store_rows("SELECT count(*) FROM sessions") == [(0,)]
    nothing = invoke(["assume", "tool", "--intent", "paint the fence"])
    assert nothing.exit_code == 3
    assert events("intent_denied")[-1]["payload"]["reason"] == "intent_not_allowed"
    empty = invoke(["assume", "tool", "--intent", "   "])
    assert empty.exit_code == 3


def test_unknown_masque_exits_4(invoke: Invoke) -> None:
    assert invoke(["assume", "nosuch", "--intent", "work on it"]).exit_code == 4


def test_strict_knowledge_refuses_unresolved_pointers(invoke: Invoke) -> None:
    result = invoke(["assume", "tool", "--intent", "implement it", "--strict-knowledge"])
    assert result.exit_code == 3 and "mcp://repo/source" in result.stderr
    assert events("assume_refused")[-1]["payload"]["reason"] == "knowledge_unresolved"


def test_release_defaults_to_the_env_session_and_is_idempotent(invoke: Invoke) -> None:
    s = assume_json(invoke, "tool", "--intent", "implement it")
    env = {"MASQUE_SESSION_ID": s["session_id"], "MASQUE_TOKEN": s["token"]}
    first = invoke(["release", "--score", "+", "--notes", "tidy work", "--format", "json"], env=env)
    data = json.loads(first.stdout)
    assert first.exit_code == 0 and data["status"] == "ended" and data["end_reason"] == "released"
    assert data["revoked"] == [s["accessor"]]
    assert store_rows("SELECT symbol, notes, scored_by FROM scores") == [("+", "tidy work", "root")]
    again = invoke(["release"], env=env)
    assert again.exit_code == 0 and "already ended" in again.stderr
    assert len(events("mask_session_ended")) == 1
    assert invoke(["release", "ses_01NOPE00000000000000000000"]).exit_code == 4
    assert invoke(["release"]).exit_code == 2  # nothing named, nothing in the environment
    unset = invoke(["release", "--format", "env"], env=env)
    assert unset.stdout.startswith("unset MASQUE_SESSION_ID MASQUE_TOKEN")
    # A shell holding a session the store does not know (a wiped home, say) is still cleared.
    gone = invoke(["release", "--format", "env"], env={**env, "MASQUE_SESSION_ID": "ses_01NOPE00000000000000000000"})
    assert gone.exit_code == 4 and "no session" in gone.stderr
    assert gone.stdout == unset.stdout
    # Every variable `assume --format env` exports is one `release --format env` unsets.
    exported = invoke(["assume", "tool", "--intent", "implement more", "--format", "env"]).stdout
    names = {
        line.split("=", 1)[0].removeprefix("export ") for line in exported.splitlines() if line.startswith("export ")
    }
    assert names == set(unset.stdout.split()[1:])


def test_chained_sessions_carry_the_originator_and_end_with_their_parent(invoke: Invoke) -> None:
    pkey = add_actor(invoke, "pat", "player")
    bkey = add_actor(invoke, "bob", "player")
    a = assume_json(invoke, "tool", "--intent", "implement it", env={"MASQUE_ACTOR": "pat", "MASQUE_ACTOR_KEY": pkey})
    inside_a = {"MASQUE_SESSION_ID": a["session_id"], "MASQUE_TOKEN": a["token"]}
    b = assume_json(
        invoke, "open", "--intent", "work on it", env={**inside_a, "MASQUE_ACTOR": "bob", "MASQUE_ACTOR_KEY": bkey}
    )
    c = assume_json(
        invoke, "open", "--intent", "work on it", env={"MASQUE_SESSION_ID": b["session_id"], "MASQUE_TOKEN": b["token"]}
    )
    assert (b["parent_id"], c["parent_id"]) == (a["session_id"], b["session_id"])
    assert (b["actor"], c["actor"]) == ("bob", "bob")  # the token's actor acts inside a session
    assert {b["originator"], c["originator"]} == {"pat"}
    length = dt.datetime.fromisoformat(c["expires_at"]) - dt.datetime.fromisoformat(c["started_at"])
    assert length == dt.timedelta(hours=1)  # chaining is capped
    ended = json.loads(invoke(["release", a["session_id"], "--format", "json"]).stdout)
    assert set(ended["ended"]) == {a["session_id"], b["session_id"], c["session_id"]}
    assert invoke(["token", "verify", c["token"]]).exit_code == 3
    chain_events = [e for e in events() if e["session_id"] in {b["session_id"], c["session_id"]}]
    assert chain_events and {e["originator"] for e in chain_events} == {"pat"}
    (reason,) = store_rows("SELECT end_reason FROM sessions WHERE id = ?", [c["session_id"]])[0]
    assert reason == "parent_ended"


def test_a_token_alone_cannot_become_the_founder(invoke: Invoke) -> None:
    gkey = add_actor(invoke, "gus", "guest")
    g = assume_json(invoke, "peer", "--intent", "review it", env={"MASQUE_ACTOR": "gus", "MASQUE_ACTOR_KEY": gkey})
    inside = {"MASQUE_SESSION_ID": g["session_id"], "MASQUE_TOKEN": g["token"]}
    me = json.loads(invoke(["whoami", "--json"], env=inside).stdout)
    assert (me["actor"], me["via"]) == ("gus", "session")
    assert invoke(["assume", "ops", "--intent", "deploy it"], env=inside).exit_code == 3
    assert invoke(["actor", "add", "mallory", "--ring", "admin"], env=inside).exit_code == 3
    invoke(["release", g["session_id"]])
    stale_token = invoke(["assume", "open", "--intent", "work on it"], env=inside)
    assert stale_token.exit_code == 3 and "MASQUE_TOKEN is not valid" in stale_token.stderr


def test_local_sessions_nest_and_only_narrow(invoke: Invoke) -> None:
    assert invoke(["assume", "open", "--intent", "work on it", "--local"]).exit_code == 2
    g = assume_json(invoke, "tool", "--intent", "implement it")
    inside = {"MASQUE_SESSION_ID": g["session_id"], "MASQUE_TOKEN": g["token"]}
    wider = invoke(["assume", "ops", "--intent", "deploy it", "--local"], env=inside)
    assert wider.exit_code == 3 and "only narrow" in wider.stderr
    local = assume_json(invoke, "open", "--intent", "work on it", "--local", env=inside)
    assert local["scope"] == "local" and local["parent_id"] == g["session_id"]
    assert local["expires_at"] <= g["expires_at"]
    invoke(["release", g["session_id"]])
    (status,) = store_rows("SELECT status FROM sessions WHERE id = ?", [local["session_id"]])[0]
    assert status == "ended"


def test_revoke_now_kills_credentials_down_the_chain(invoke: Invoke) -> None:
    a = assume_json(invoke, "tool", "--intent", "implement it")
    b = assume_json(
        invoke, "open", "--intent", "work on it", env={"MASQUE_SESSION_ID": a["session_id"], "MASQUE_TOKEN": a["token"]}
    )
    result = json.loads(invoke(["revoke", a["session_id"], "--now", "--json"]).stdout)
    assert result["status"] == "revoked" and set(result["revoked"]) == {a["accessor"], b["accessor"]}
    assert invoke(["token", "verify", b["token"]]).exit_code == 3
    again = invoke(["revoke", a["session_id"]])
    assert again.exit_code == 0 and "already ended" in again.stderr


def test_graceful_revoke_without_an_exec_holder_waits_out_the_grace(invoke: Invoke) -> None:
    a = assume_json(invoke, "tool", "--intent", "implement it")
    result = json.loads(invoke(["revoke", a["session_id"], "--grace", "0.2s", "--json"]).stdout)
    assert result["graceful"] and result["status"] == "revoked"
    assert [e["type"] for e in events() if e["session_id"] == a["session_id"]][-3:] == [
        "mask_session_revoking",
        "credential_revoked",
        "mask_session_ended",
    ]


def test_sessions_list_show_and_active(invoke: Invoke) -> None:
    a = assume_json(invoke, "tool", "--intent", "implement it")
    b = assume_json(invoke, "open", "--intent", "work on it")
    invoke(["release", a["session_id"]])
    listed = json.loads(invoke(["sessions", "--json"]).stdout)
    assert [s["session_id"] for s in listed] == [b["session_id"], a["session_id"]]  # newest first
    assert listed[1]["accessor"] == a["accessor"] and "token" not in listed[1]
    active = json.loads(invoke(["sessions", "--active", "--json"]).stdout)
    assert [s["session_id"] for s in active] == [b["session_id"]]
    table = invoke(["sessions"]).stdout
    assert a["session_id"] in table and "implement it" in table
    shown = json.loads(invoke(["sessions", "show", a["session_id"], "--json"]).stdout)
    assert next(e["type"] for e in shown["events"]) == "mask_session_started"
    assert shown["credentials"][0]["accessor"] == a["accessor"] and "token_hash" not in shown["credentials"][0]
    assert invoke(["sessions", "show", "ses_nope"]).exit_code == 4


def test_sessions_are_visible_to_their_ring_and_above(invoke: Invoke) -> None:
    gkey = add_actor(invoke, "gus", "guest")
    assume_json(invoke, "tool", "--intent", "implement it")  # the founder's (admin) session
    mine = assume_json(invoke, "peer", "--intent", "review it", env={"MASQUE_ACTOR": "gus", "MASQUE_ACTOR_KEY": gkey})
    seen = json.loads(invoke(["sessions", "--json"], env={"MASQUE_ACTOR": "gus", "MASQUE_ACTOR_KEY": gkey}).stdout)
    assert [s["session_id"] for s in seen] == [mine["session_id"]]


def test_stale_sweep_releases_dead_holders_and_expired_sessions(invoke: Invoke) -> None:
    from masque import store
    from masque.sessions import lifecycle as sessions

    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = sessions.assume("tool", "implement it", holder_pid=dead.pid)
    live = sessions.assume("open", "work on it")  # held by this (living) test process
    late = sessions.assume("open", "work on it")
    with store.transaction() as conn:
        conn.execute("UPDATE sessions SET expires_at = now() - INTERVAL '1 minute' WHERE id = ?", [late.session_id])
    swept = json.loads(invoke(["sessions", "--stale", "--json"]).stdout)
    assert {(s["session_id"], s["stale_reason"], s["status"]) for s in swept} == {
        (orphan.session_id, "abandoned", "abandoned"),
        (late.session_id, "expired", "ended"),
    }
    assert json.loads(invoke(["sessions", "--active", "--json"]).stdout)[0]["session_id"] == live.session_id
    assert invoke(["token", "verify", orphan.token]).exit_code == 3
