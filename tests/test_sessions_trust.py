"""Identity on the session paths (issue 10, items 3, 5, 6, 7): import/export, mask rollouts, exec
parents, whoami, token lookup and the stale sweep all go through the one identity check."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_sessions_support import add_actor, assume_json, events, init_store, store_rows, write_masques

Invoke = Callable[..., Any]
FIXTURE = Path(__file__).parent / "cases" / "reflection" / "sessions.jsonl"


@pytest.fixture(autouse=True)
def _masques() -> None:
    write_masques()


def as_actor(name: str, key: str) -> dict[str, str]:
    return {"MASQUE_ACTOR": name, "MASQUE_ACTOR_KEY": key}


def _live(session_id: str) -> tuple[str, str | None]:
    ((status, reason),) = store_rows("SELECT status, end_reason FROM sessions WHERE id = ?", [session_id])
    return status, reason


# --- item 3: sessions import / export ------------------------------------------------------------


def test_import_is_an_admin_verb_refused_and_recorded_for_others(invoke: Invoke) -> None:
    init_store(invoke)
    for ring in ("player", "guest", "outsider"):
        key = add_actor(invoke, f"x{ring}", ring)
        refused = invoke(["sessions", "import", str(FIXTURE)], env=as_actor(f"x{ring}", key))
        assert refused.exit_code == 3, refused.output
        assert "admin" in refused.stderr and "Traceback" not in refused.output
    assert store_rows("SELECT count(*) FROM sessions") == [(0,)]
    recorded = events("import_refused")
    assert [e["actor"] for e in recorded] == ["xplayer", "xguest", "xoutsider"]
    assert all(e["payload"]["reason"] == "ring_refused" for e in recorded)
    bad_key = invoke(["sessions", "import", str(FIXTURE)], env=as_actor("xguest", "msqk_wrong"))
    assert bad_key.exit_code == 3
    assert events("import_refused")[-1]["payload"]["reason"] == "actor_key_invalid"
    assert store_rows("SELECT count(*) FROM sessions") == [(0,)]
    done = invoke(["sessions", "import", str(FIXTURE), "--json"])  # the founder (admin) may
    assert done.exit_code == 0 and json.loads(done.stdout)["sessions_added"] == 10
    (imported,) = events("sessions_imported")
    assert imported["actor"] == "root" and imported["payload"]["sessions_added"] == 10


def test_import_never_changes_a_live_session_of_this_store(invoke: Invoke, tmp_path: Path) -> None:
    init_store(invoke)
    live = assume_json(invoke, "ops", "--intent", "deploy the stack")
    sid = live["session_id"]
    forged = [
        {  # the founder's live session, "ended elsewhere", with a score and an ending event
            "kind": "session",
            "id": sid,
            "masque": "ops",
            "version": "2.0.0",
            "actor": "root",
            "actor_ring": "admin",
            "masque_ring": "admin",
            "intent": "deploy the stack",
            "status": "ended",
            "started_at": "2026-01-01T00:00:00Z",
            "ended_at": "2026-01-01T01:00:00Z",
            "end_reason": "released",
            "scores": [{"id": "scr_forged", "symbol": "-", "scored_by": "root", "created_at": "2026-01-01T01:00:00Z"}],
            "events": [{"id": "evt_forged", "ts": "2026-01-01T01:00:00Z", "type": "mask_session_ended"}],
        },
        {  # a brand-new session claiming to be live, with a credential-less "active" status
            "kind": "session",
            "id": "ses_FORGED",
            "parent_id": sid,  # and chained under the founder's session
            "masque": "ops",
            "version": "2.0.0",
            "actor": "root",
            "actor_ring": "admin",
            "masque_ring": "admin",
            "intent": "deploy the stack",
            "status": "active",
            "started_at": "2026-01-01T00:00:00Z",
            "scores": [{"id": "scr_new", "symbol": "+", "scored_by": "root", "created_at": "2026-01-01T01:00:00Z"}],
        },
        {  # a sessionless event naming the live session
            "kind": "event",
            "id": None,
            "events": [
                {"id": "evt_orphan", "ts": "2026-01-01T01:00:00Z", "type": "credential_revoked", "session_id": sid}
            ],
        },
    ]
    path = tmp_path / "forged.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in forged), encoding="utf-8")
    result = invoke(["sessions", "import", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert _live(sid) == ("active", None)
    assert invoke(["token", "verify", live["token"]]).exit_code == 0
    assert store_rows("SELECT count(*) FROM scores WHERE session_id = ?", [sid]) == [(0,)]
    report = json.loads(result.stdout)
    assert (report["sessions_added"], report["sessions_skipped"]) == (1, 1)
    assert store_rows("SELECT count(*) FROM events WHERE session_id = ? AND id LIKE '%forged%'", [sid]) == [(0,)]
    assert store_rows("SELECT count(*) FROM events WHERE id = 'evt_orphan'") == [(0,)]
    # imported sessions are history, never live credentials
    assert _live("ses_FORGED") == ("ended", "imported_live")
    assert store_rows("SELECT parent_id FROM sessions WHERE id = 'ses_FORGED'") == [(None,)]
    assert json.loads(invoke(["sessions", "show", sid, "--json"]).stdout)["children"] == []
    active = json.loads(invoke(["sessions", "--active", "--json"]).stdout)
    assert [s["session_id"] for s in active] == [sid]
    by = store_rows("SELECT json_extract_string(metadata, '$.imported.by') FROM sessions WHERE id = 'ses_FORGED'")
    assert by == [("root",)]


def test_export_follows_the_ring_rule(invoke: Invoke, tmp_path: Path) -> None:
    init_store(invoke)
    assert invoke(["sessions", "import", str(FIXTURE)]).exit_code == 0  # ann (player), bob (admin)
    gkey = add_actor(invoke, "gia", "guest")
    pkey = add_actor(invoke, "pia", "player")
    mine = assume_json(invoke, "peer", "--intent", "review the diff", env=as_actor("gia", gkey))
    assume_json(invoke, "ops", "--intent", "deploy the stack")  # the founder's own

    def exported(name: str, env: dict[str, str] | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        out = tmp_path / f"{name}.jsonl"
        result = invoke(["sessions", "export", str(out), "--json"], env=env)
        assert result.exit_code == 0, result.output
        lines = out.read_text(encoding="utf-8").splitlines()
        return json.loads(result.stdout), [json.loads(line) for line in lines]

    counts, records = exported("guest", as_actor("gia", gkey))
    assert [r["id"] for r in records] == [mine["session_id"]] and counts["sessions"] == 1
    counts, records = exported("player", as_actor("pia", pkey))
    assert {r["actor_ring"] for r in records if r["kind"] == "session"} == {"player", "guest"}
    assert counts["sessions"] == 6 + 1
    # sessionless events travel only when their actor is one the caller sees (ann is not an actor here)
    assert [r for r in records if r["kind"] == "event"] == []
    counts, records = exported("founder", None)
    assert counts["sessions"] == 12
    assert {"intent_denied", "ring_refused"} <= {
        e["type"] for r in records if r["kind"] == "event" for e in r["events"]
    }


# --- item 5: mythatron promote / retire ----------------------------------------------------------


def test_promote_and_retire_need_a_qualified_proven_actor(masks: Path, invoke: Invoke, mt: Invoke) -> None:
    from masque.masques.catalog import lookup

    init_store(invoke)
    doc = json.loads((masks / "critic.mask.json").read_text(encoding="utf-8"))  # ring player (default)
    doc.update(version="1.1.0", stage="draft")
    doc["changelog"].insert(0, {"version": "1.1.0", "changes": "next"})
    (masks / "critic-1.1.0.mask.json").write_text(json.dumps(doc), encoding="utf-8")
    guest = add_actor(invoke, "gus", "guest")
    player = add_actor(invoke, "pia", "player")
    refused = mt(["mask", "promote", "critic@1.1.0", "--to", "beta"], env=as_actor("gus", guest))
    assert refused.exit_code == 3 and "ring guest" in refused.stderr
    assert mt(["mask", "retire", "critic@1.0.0"], env=as_actor("gus", guest)).exit_code == 3
    unproven = mt(["mask", "promote", "critic@1.1.0", "--to", "beta"], env={"MASQUE_ACTOR": "pia"})
    assert unproven.exit_code == 3  # a name without its key proves nothing
    assert mt(["mask", "promote", "critic@1.1.0", "--to", "beta"], env=as_actor("pia", "msqk_nope")).exit_code == 3
    assert lookup("critic@1.1.0").stage.value == "draft"
    assert [e["actor"] for e in events("mask_stage_refused")] == ["gus", "gus", "pia", "pia"]
    key_file = Path("pia.key")
    key_file.write_text(player + "\n", encoding="utf-8")
    ok = mt(["mask", "promote", "critic@1.1.0", "--to", "beta", "--as", "pia", "--key-file", key_file])
    assert ok.exit_code == 0, ok.output
    assert mt(["mask", "retire", "critic@1.1.0"]).exit_code == 0  # the founder (admin)
    assert store_rows("SELECT actor, to_stage FROM mask_stages ORDER BY id") == [("pia", "beta"), ("root", "retired")]
    assert [e["actor"] for e in events("mask_stage_changed")] == ["pia", "root"]


# --- item 6: MASQUE_PARENT_SESSION_ID counts only with the parent's token -------------------------


def test_a_parent_session_id_without_its_token_is_refused_and_recorded(invoke: Invoke) -> None:
    init_store(invoke)
    admin = assume_json(invoke, "ops", "--intent", "deploy the stack")
    other = assume_json(invoke, "open", "--intent", "answer questions")
    key = add_actor(invoke, "gwen", "guest")
    claims = [
        {**as_actor("gwen", key), "MASQUE_PARENT_SESSION_ID": admin["session_id"]},
        {"MASQUE_PARENT_SESSION_ID": admin["session_id"]},
        {"MASQUE_PARENT_SESSION_ID": admin["session_id"], "MASQUE_CREDENTIAL": other["token"]},
        {**as_actor("gwen", key), "MASQUE_PARENT_SESSION_ID": admin["session_id"], "MASQUE_CREDENTIAL": "msq_x"},
    ]
    for env in claims:
        result = invoke(["assume", "open", "--intent", "answer questions", "--format", "json"], env=env)
        assert result.exit_code == 3, result.output
        assert "MASQUE_PARENT_SESSION_ID" in result.stderr
    assert store_rows("SELECT count(*) FROM sessions WHERE parent_id IS NOT NULL") == [(0,)]
    refused = events("assume_refused")
    assert [e["payload"]["reason"] for e in refused] == ["parent_unproven"] * 4
    assert invoke(["whoami"], env=claims[1]).exit_code == 3  # every verb, not only assume
    # with the parent's own credential the chain is recorded, as `masque exec` sets it up
    proven = {"MASQUE_PARENT_SESSION_ID": admin["session_id"], "MASQUE_CREDENTIAL": admin["token"]}
    child = assume_json(invoke, "open", "--intent", "answer questions", env=proven)
    assert child["parent_id"] == admin["session_id"] and child["actor"] == "root"


# --- item 7: whoami, token lookup and the stale sweep see only what the ring rule allows ---------


def test_whoami_and_token_lookup_hide_more_trusted_sessions(invoke: Invoke) -> None:
    init_store(invoke)
    admin = assume_json(invoke, "ops", "--intent", "deploy the stack")
    key = add_actor(invoke, "gwen", "guest")
    guest_env = as_actor("gwen", key)
    who = invoke(["whoami", "--json"], env={**guest_env, "MASQUE_SESSION_ID": admin["session_id"]})
    assert who.exit_code == 4 and admin["intent"] not in who.output
    lookup = invoke(["token", "lookup", admin["accessor"], "--json"], env=guest_env)
    assert lookup.exit_code == 4 and "root" not in lookup.stdout
    mine = assume_json(invoke, "peer", "--intent", "review the diff", env=guest_env)
    assert invoke(["token", "lookup", mine["accessor"]], env=guest_env).exit_code == 0
    assert invoke(["token", "lookup", admin["accessor"]]).exit_code == 0  # the founder sees it
    assert invoke(["whoami"], env={"MASQUE_SESSION_ID": admin["session_id"]}).exit_code == 0


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_stale_sweep_ends_only_sessions_the_caller_may_end(invoke: Invoke) -> None:
    from masque.sessions import lifecycle as sessions
    from masque.trust import rings

    init_store(invoke)
    key = add_actor(invoke, "gwen", "guest")
    founders = sessions.assume("ops", "deploy the stack", holder_pid=_dead_pid())
    guests = sessions.assume(
        "peer", "review the diff", holder_pid=_dead_pid(), selection=rings.Selection(name="gwen", key=key)
    )
    swept = invoke(["sessions", "--stale", "--json"], env=as_actor("gwen", key))
    assert swept.exit_code == 0, swept.output
    assert [s["session_id"] for s in json.loads(swept.stdout)] == [guests.session_id]
    assert _live(founders.session_id) == ("active", None)
    assert _live(guests.session_id) == ("abandoned", "abandoned")
    assert [s["session_id"] for s in json.loads(invoke(["sessions", "--stale", "--json"]).stdout)] == [
        founders.session_id
    ]


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_sessions_limit_must_be_positive(invoke: Invoke, limit: str) -> None:
    for flag in ("-n", "--limit"):
        result = invoke(["sessions", flag, limit])
        assert result.exit_code == 2
        assert "Traceback" not in result.output and "at least 1" in result.output
