"""`masque team`: spawn (all members or nothing), list/show under the ring rule, release with one
outcome, and `masque exec --team` handing a member's session to its own process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_sessions_support import add_actor, events, init_store, key_file, store_rows, write_team_masques

Invoke = Callable[..., Any]
Run = Callable[..., subprocess.CompletedProcess[str]]

INTENT = "implement user authentication"


@pytest.fixture(autouse=True)
def _setup(invoke: Invoke) -> None:
    write_team_masques()
    init_store(invoke)


def _spawn(invoke: Invoke, *args: str) -> dict[str, Any]:
    result = invoke(["team", "spawn", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def _verify(invoke: Invoke, token: str) -> int:
    return int(invoke(["token", "verify", token]).exit_code)


def test_spawn_gives_each_member_its_own_session_token_and_role(invoke: Invoke) -> None:
    team = _spawn(
        invoke,
        *("--masque", "orchestrator", "--masque", "engineer:backend@1.0.0", "--masque", "engineer:frontend"),
        *("--masque", "reviewer", "--masque", "tool", "--intent", INTENT, "--role", "frontend=dps"),
        *("--name", "auth", "--arbiter", "orchestrator"),
    )
    assert team["id"].startswith("team_") and team["name"] == "auth" and team["arbiter"] == "orchestrator"
    members = {m["member"]: m for m in team["members"]}
    assert sorted(members) == ["backend", "frontend", "orchestrator", "reviewer", "tool"]
    # --role wins, else the masque's collaboration.role, else the masque key.
    roles = {name: m["role"] for name, m in members.items()}
    assert roles == {
        "backend": "engineer",
        "frontend": "dps",
        "orchestrator": "orchestrator",
        "reviewer": "healer",
        "tool": "tool",
    }
    sessions = {m["session_id"] for m in members.values()}
    tokens = {m["token"] for m in members.values()}
    assert len(sessions) == len(tokens) == 5
    assert all(_verify(invoke, t) == 0 for t in tokens)
    rows = store_rows("SELECT id, masque, parent_id, intent, json_extract_string(metadata, '$.team') FROM sessions")
    assert {r[0] for r in rows} == sessions
    # No member inherits another's masque: none is chained below another.
    assert all(r[2] is None and r[3] == INTENT and r[4] == team["id"] for r in rows)
    assert store_rows("SELECT count(*) FROM team_members WHERE team_id = ?", [team["id"]]) == [(5,)]
    assert events("team_spawned")[0]["payload"]["team_id"] == team["id"]


def test_duplicate_member_names_are_a_usage_error_naming_both(invoke: Invoke) -> None:
    result = invoke(["team", "spawn", "-m", "engineer@1.0.0", "-m", "engineer", "--intent", INTENT])
    assert result.exit_code == 2
    assert "engineer@1.0.0" in result.stderr and "--masque engineer " in result.stderr
    assert store_rows("SELECT count(*) FROM sessions") == [(0,)]


def test_one_refusal_records_no_session_and_names_every_failing_member(invoke: Invoke) -> None:
    result = invoke(
        ["team", "spawn", "-m", "engineer", "-m", "reviewer", "-m", "open:helper", "--intent", "deploy the service"]
    )
    assert result.exit_code == 3, result.output
    # engineer denies "deploy *", the reviewer and the open masque do not allow it: all three named.
    for member in ("engineer", "reviewer", "helper (open:helper)"):
        assert member in result.stderr
    assert "no session was recorded" in result.stderr
    for table in ("sessions", "credentials", "teams", "team_members"):
        assert store_rows(f"SELECT count(*) FROM {table}") == [(0,)], table
    # The refusals stay in the audit trail, as a lone `assume` records them.
    assert {e["masque"] for e in events("intent_denied")} == {"engineer", "reviewer", "open"}
    refused = events("team_refused")[0]["payload"]
    assert {f["member"] for f in refused["failed"]} == {"engineer", "reviewer", "helper"}


def test_a_single_unqualified_member_stops_the_whole_team(invoke: Invoke) -> None:
    result = invoke(["team", "spawn", "-m", "orchestrator", "-m", "reviewer", "--intent", "review the auth flow"])
    assert result.exit_code == 3
    assert "orchestrator" in result.stderr and "reviewer (reviewer)" not in result.stderr
    assert store_rows("SELECT count(*) FROM sessions") == [(0,)]


def test_a_guest_cannot_spawn_a_team_with_a_player_ring_masque(invoke: Invoke) -> None:
    guest = key_file("visitor", add_actor(invoke, "visitor", "guest"))
    as_guest = ["--as", "visitor", "--key-file", str(guest)]
    result = invoke(["team", "spawn", "-m", "reviewer", "-m", "engineer", "--intent", INTENT, *as_guest])
    assert result.exit_code == 3
    assert "engineer" in result.stderr and "ring" in result.stderr
    assert store_rows("SELECT count(*) FROM sessions") == [(0,)]
    assert events("ring_refused")[0]["actor"] == "visitor"
    # The guest ring's own masques are fine.
    ok = invoke(["team", "spawn", "-m", "reviewer", "-m", "peer", "--intent", "review the auth flow", *as_guest])
    assert ok.exit_code == 0, ok.output


def test_env_format_exports_the_team_and_each_member(invoke: Invoke) -> None:
    result = invoke(["team", "spawn", "-m", "engineer:backend", "-m", "reviewer", "--intent", INTENT, "-f", "env"])
    assert result.exit_code == 0, result.output
    exports = dict(line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines())
    assert exports["MASQUE_TEAM"].startswith("team_")
    assert exports["MASQUE_TEAM_MEMBERS"] == "'backend reviewer'"
    assert exports["MASQUE_TEAM_BACKEND_SESSION_ID"].startswith("ses_")
    assert exports["MASQUE_TEAM_REVIEWER_ROLE"] == "healer"
    assert _verify(invoke, exports["MASQUE_TEAM_BACKEND_TOKEN"]) == 0


def test_list_show_and_release_with_one_team_outcome(invoke: Invoke) -> None:
    team = _spawn(invoke, "-m", "orchestrator", "-m", "engineer", "-m", "reviewer", "--intent", INTENT)
    listed = json.loads(invoke(["team", "list", "--json"]).stdout)
    assert [t["id"] for t in listed] == [team["id"]]
    shown = json.loads(invoke(["team", "show", team["name"], "--json"]).stdout)
    assert {m["session_status"] for m in shown["members"]} == {"active"}

    done = invoke(["team", "release", team["id"], "--score", "+", "--notes", "auth shipped"])
    assert done.exit_code == 0, done.output
    assert "3 session(s) ended" in done.stderr
    ids = [m["session_id"] for m in team["members"]]
    marks = ", ".join("?" for _ in ids)
    assert set(store_rows(f"SELECT status, end_reason FROM sessions WHERE id IN ({marks})", ids)) == {
        ("ended", "team_released")
    }
    assert all(_verify(invoke, m["token"]) == 3 for m in team["members"])
    assert store_rows("SELECT status, score, notes FROM teams") == [("released", "+", "auth shipped")]
    assert events("team_released")[0]["payload"]["score"] == "+"

    again = invoke(["team", "release", team["id"]])
    assert again.exit_code == 0 and "already released" in again.stderr
    assert invoke(["team", "list", "--json"]).stdout.strip() == "[]"
    assert [t["status"] for t in json.loads(invoke(["team", "list", "--all", "--json"]).stdout)] == ["released"]
    text = invoke(["team", "show", team["id"]]).stdout
    assert "outcome  + auth shipped" in text and "ended" in text


def test_a_guest_cannot_see_or_release_the_founders_team(invoke: Invoke) -> None:
    team = _spawn(invoke, "-m", "engineer", "-m", "reviewer", "--intent", INTENT)
    guest = key_file("visitor", add_actor(invoke, "visitor", "guest"))
    as_guest = ["--as", "visitor", "--key-file", str(guest)]
    assert json.loads(invoke(["team", "list", "--json", *as_guest]).stdout) == []
    assert invoke(["team", "show", team["id"], *as_guest]).exit_code == 4
    # Like `masque release` of an admin's session: not found (exit 4), its actor unnamed, nothing ended.
    refused = invoke(["team", "release", team["id"], "--score", "-", *as_guest])
    assert refused.exit_code == 4 and "root" not in refused.stderr
    assert store_rows("SELECT status, score FROM teams") == [("active", None)]
    assert all(_verify(invoke, m["token"]) == 0 for m in team["members"])


def test_another_actor_of_the_same_ring_sees_but_cannot_release(invoke: Invoke) -> None:
    gia = key_file("gia", add_actor(invoke, "gia", "guest"))
    gus = key_file("gus", add_actor(invoke, "gus", "guest"))
    as_gia = ["--as", "gia", "--key-file", str(gia)]
    team = json.loads(invoke(["team", "spawn", "-m", "reviewer", "-i", "review it", "-f", "json", *as_gia]).stdout)
    as_gus = ["--as", "gus", "--key-file", str(gus)]
    assert [t["id"] for t in json.loads(invoke(["team", "list", "--json", *as_gus]).stdout)] == [team["id"]]
    refused = invoke(["team", "release", team["id"], *as_gus])
    assert refused.exit_code == 3 and "ring_refused" not in refused.stderr and "cannot release" in refused.stderr
    # Nor may gus run gia's members; the founder (admin) may release it.
    assert invoke(["exec", "--team", team["id"], *as_gus, "--", "true"]).exit_code == 3
    assert invoke(["team", "release", team["id"]]).exit_code == 0


def test_library_functions_take_a_selection(invoke: Invoke) -> None:
    from masque import teams
    from masque.trust.rings import Selection

    root = Selection()  # nothing presented: the founder
    spawned = teams.spawn(["engineer:backend", "reviewer"], INTENT, selection=root, name="lib")
    assert spawned.sessions["backend"].token and spawned.team.member("reviewer").role == "healer"
    assert [v.team.name for v in teams.list(selection=root)] == ["lib"]
    assert teams.show("lib", selection=root).sessions["backend"].status == "active"
    done = teams.release("lib", selection=root, score="multiplicative")
    assert done.team.score == "*" and len(done.ended) == 2


# --- exec --team (real processes) ---------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, os, subprocess, sys
    run = lambda *a: subprocess.run([sys.executable, "-m", "masque", *a], capture_output=True, text=True)
    info = {
        "env": {k: v for k, v in os.environ.items() if k.startswith("MASQUE_")},
        "verify": run("token", "verify").returncode,
        "whoami": json.loads(run("whoami", "--json").stdout),
        "prompt": open(os.environ["MASQUE_SYSTEM_PROMPT_FILE"]).read(),
    }
    json.dump(info, open(os.environ["MASQUE_MEMBER"] + ".json", "w"))
    sys.exit({"backend": 0, "orchestrator": 4, "reviewer": 5}[os.environ["MASQUE_MEMBER"]])
    """
)


@pytest.mark.slow
def test_exec_team_member_runs_with_its_session_and_a_token_revoked_after(invoke: Invoke, run_masque: Run) -> None:
    team = _spawn(invoke, "-m", "orchestrator", "-m", "engineer:backend", "-m", "reviewer", "--intent", INTENT)
    backend = next(m for m in team["members"] if m["member"] == "backend")
    result = run_masque("exec", "--team", team["name"], "--member", "backend", "--", sys.executable, "-c", CHILD)
    assert result.returncode == 0, result.stderr
    info = json.loads(Path("backend.json").read_text())
    env = info["env"]
    assert env["MASQUE_SESSION_ID"] == backend["session_id"]
    assert env["MASQUE_TEAM"] == team["id"] and env["MASQUE_MEMBER"] == "backend"
    assert env["MASQUE_TEAM_ROLE"] == "engineer"
    assert info["verify"] == 0  # valid while the child runs
    assert info["whoami"]["session"]["session_id"] == backend["session_id"]
    assert "Ship small tested increments." in info["prompt"]
    # A fresh credential, not the member's own; revoked when the child exited, the session stays open.
    assert env["MASQUE_TOKEN"] != backend["token"]
    assert _verify(invoke, env["MASQUE_TOKEN"]) == 3
    assert _verify(invoke, backend["token"]) == 0
    assert not list((Path(os.environ["MASQUE_HOME"]) / "run").glob("*.prompt"))  # prompt files removed


@pytest.mark.slow
def test_exec_team_runs_every_member_and_exits_with_the_first_failure(invoke: Invoke, run_masque: Run) -> None:
    team = _spawn(invoke, "-m", "orchestrator", "-m", "engineer:backend", "-m", "reviewer", "--intent", INTENT)
    result = run_masque("exec", "--team", team["id"], "--", sys.executable, "-c", CHILD)
    # Members run concurrently; the status is the first non-zero one in member order (orchestrator: 4).
    assert result.returncode == 4, result.stderr
    seen = {m: json.loads(Path(f"{m}.json").read_text()) for m in ("backend", "orchestrator", "reviewer")}
    assert {m: s["env"]["MASQUE_SESSION_ID"] for m, s in seen.items()} == {
        m["member"]: m["session_id"] for m in team["members"]
    }
    assert all(s["verify"] == 0 for s in seen.values())
    assert len({s["env"]["MASQUE_TOKEN"] for s in seen.values()}) == 3


# Prints "ready", then exits 40 + the signal number on SIGINT/SIGTERM (0 if never signalled).
TRAPPER = textwrap.dedent(
    """
    import os, signal, sys, time
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _: sys.exit(40 + signum))
    os.write(1, b"ready\\n")  # one write: the members share the pipe
    for _ in range(600):
        time.sleep(0.1)
    """
)


@pytest.mark.slow
def test_exec_team_forwards_ctrl_c_to_every_member(invoke: Invoke) -> None:
    team = _spawn(invoke, "-m", "engineer:backend", "-m", "engineer:frontend", "--intent", INTENT)
    argv = [sys.executable, "-m", "masque", "exec", "--team", team["id"], "--", sys.executable, "-c", TRAPPER]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        assert [proc.stdout.readline().strip() for _ in range(2)] == ["ready", "ready"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 40 + signal.SIGINT, proc.stderr.read() if proc.stderr else ""
    # Both credentials minted for the children are revoked; the members stay open.
    revoked = store_rows("SELECT count(*) FROM credentials WHERE revoke_reason = 'exited'")
    assert revoked == [(2,)]
    assert store_rows("SELECT DISTINCT status FROM sessions") == [("active",)]


def test_the_example_team_spawns_as_the_docs_show(invoke: Invoke) -> None:
    examples = Path(__file__).resolve().parent.parent / "examples" / "team"
    assert invoke(["validate", str(examples)]).exit_code == 0
    env = {"MASQUE_PATH": str(examples)}
    args = ["team", "spawn", "-m", "orchestrator", "-m", "engineer:backend", "-m", "engineer:frontend", "-m", "qa"]
    # ./personas holds other files claiming orchestrator@1.0.0 and engineer@1.0.0: no trusted definition.
    clash = invoke([*args, "--intent", INTENT, "-f", "json"], env=env)
    assert clash.exit_code == 3 and "3 of 4 member(s) failed" in clash.stderr
    assert {e["masque"] for e in events("assume_refused")} == {"orchestrator", "engineer"}
    assert store_rows("SELECT count(*) FROM sessions") == [(0,)]
    for name in ("orchestrator", "engineer"):
        (Path("personas") / f"{name}.masque.yaml").unlink()
    result = invoke([*args, "--intent", INTENT, "--name", "auth", "-f", "json"], env=env)
    assert result.exit_code == 0, result.output
    spawned = json.loads(result.stdout)
    roles = {m["member"]: m["role"] for m in spawned["members"]}
    assert roles == {"backend": "engineer", "frontend": "engineer", "orchestrator": "orchestrator", "qa": "reviewer"}
    # Spawning wires each member's `collaboration.subscribes` on the bus, in the same transaction.
    wired = {(w["member"], w["pattern"]) for w in spawned["subscriptions"] if w["wired"]}
    assert {("backend", "orchestrator.proposal"), ("orchestrator", "*.output")} <= wired
    assert set(store_rows("SELECT member, pattern FROM bus_subscriptions")) == wired
    assert invoke(["team", "release", "auth", "--score", "+"], env=env).exit_code == 0


@pytest.mark.slow
@pytest.mark.duckdb_only(reason="the probe times the file turn's flock; a PostgreSQL turn is an advisory lock")
def test_team_commands_import_nothing_while_holding_the_store_turn() -> None:
    """As for assume/release: a cold process loads its modules before taking the turn, not under it."""
    from test_concurrency import TURN_PROBE

    probe = Path("probe.py")
    probe.write_text(TURN_PROBE, encoding="utf-8")

    def turns(*args: str) -> list[list[str]]:
        done = subprocess.run([sys.executable, str(probe), *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        taken = [json.loads(line[5:]) for line in done.stderr.splitlines() if line.startswith("TURN ")]
        assert taken, args  # the command took the turn
        return [t["imported"] for t in taken if t["imported"]]

    assert turns("team", "spawn", "-m", "engineer", "-m", "reviewer", "-i", INTENT, "--name", "t", "-f", "json") == []
    assert turns("team", "show", "t") == turns("team", "list") == []
    assert turns("exec", "--team", "t", "--", sys.executable, "-c", "pass") == []
    assert turns("team", "release", "t", "--score", "+") == []


@pytest.mark.slow
def test_releasing_the_team_stops_its_running_members(invoke: Invoke) -> None:
    team = _spawn(invoke, "-m", "engineer:backend", "-m", "reviewer", "--intent", INTENT)
    argv = [sys.executable, "-m", "masque", "exec", "--team", team["id"], "--", sys.executable, "-c", TRAPPER]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        assert [proc.stdout.readline().strip() for _ in range(2)] == ["ready", "ready"]
        assert invoke(["team", "release", team["id"], "--score", "/"]).exit_code == 0
        # Each member's process is told to wind down (SIGTERM) once its session has ended.
        assert proc.wait(timeout=60) == 40 + signal.SIGTERM
