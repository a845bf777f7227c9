"""Observations (immutable, hash-chained), feedback that teaches rule weights, and the stale profile."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_mythatron_openai import FakeOpenAI, running_fake_openai
from test_sessions_support import add_actor, assume_json, init_store, store_rows, write_masques

from masque.errors import ExitCode

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "mappers" / "focus.mapper.yaml"
MORNING = "2026-12-01T09:00:00+00:00"
Invoke = Callable[..., Any]


@pytest.fixture
def store(invoke: Invoke) -> str:
    write_masques()
    return init_store(invoke)


@pytest.fixture
def mapper(invoke: Invoke, store: str) -> None:
    assert invoke(["mapper", "put", EXAMPLE]).exit_code == 0
    assert invoke(["observe", "tool", "--kind", "focus", "--data", '{"level": 4}']).exit_code == 0


def as_actor(name: str, key: str) -> dict[str, str]:
    return {"MASQUE_ACTOR": name, "MASQUE_ACTOR_KEY": key}


def observe(invoke: Invoke, masque: str, kind: str, data: str, env: Any = None) -> dict[str, Any]:
    result = invoke(["observe", masque, "--kind", kind, "--data", data, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def first_suggestion(invoke: Invoke, env: Any = None) -> str:
    result = invoke(["map", "--mapper", "focus", "--masque", "tool", "--at", MORNING, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["suggestions"][0]["id"])


def feedback(invoke: Invoke, target: str, score: str, env: Any = None) -> dict[str, Any]:
    result = invoke(["feedback", target, score, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


# --- observations ---------------------------------------------------------------------------------------


def test_observations_are_listed_oldest_first_with_who_recorded_them(invoke: Invoke, store: str) -> None:
    key = add_actor(invoke, "pat", "player")
    observe(invoke, "tool", "focus", '{"level": 3}')
    observe(invoke, "Tool", "mood", '{"calm": true}', env=as_actor("pat", key))
    result = invoke(["observations", "tool", "--json"])
    found = json.loads(result.stdout)
    assert [(o["seq"], o["kind"], o["recorded_by"], o["data"]) for o in found] == [
        (1, "focus", "root", {"level": 3}),
        (2, "mood", "pat", {"calm": True}),
    ]
    assert found[1]["masque"] == "tool"
    text = invoke(["observations", "tool", "--kind", "mood"]).stdout
    assert "mood by pat" in text and "focus" not in text


def test_observe_checks_its_input_and_its_subject(invoke: Invoke, store: str) -> None:
    bad_json = invoke(["observe", "tool", "--kind", "focus", "--data", "{level: 3}"])
    assert bad_json.exit_code == ExitCode.USAGE and "not valid JSON" in bad_json.output
    not_object = invoke(["observe", "tool", "--kind", "focus", "--data", "[3]"])
    assert not_object.exit_code == ExitCode.USAGE
    reserved = invoke(["observe", "tool", "--kind", "feedback", "--data", "{}"])
    assert reserved.exit_code == ExitCode.USAGE and "masque feedback" in reserved.output
    nobody = invoke(["observe", "tool", "--kind", "focus", "--data", "{}", "--actor-subject", "ghost"])
    assert nobody.exit_code == ExitCode.NOT_FOUND
    add_actor(invoke, "pat", "player")
    assert observe(invoke, "tool", "focus", '{"level": 2}')["actor_subject"] is None
    subject = invoke(["observe", "tool", "--kind", "focus", "--data", "{}", "--actor-subject", "pat", "--json"])
    assert json.loads(subject.stdout)["actor_subject"] == "pat"


def test_observing_a_masque_needs_its_ring(invoke: Invoke, store: str) -> None:
    key = add_actor(invoke, "gus", "guest")
    refused = invoke(["observe", "tool", "--kind", "focus", "--data", "{}"], env=as_actor("gus", key))
    assert refused.exit_code == ExitCode.REFUSED and "ring player" in refused.output
    observe(invoke, "tool", "focus", '{"level": 1}')
    hidden = invoke(["observations", "tool"], env=as_actor("gus", key))
    assert hidden.exit_code == ExitCode.REFUSED
    assert observe(invoke, "peer", "focus", '{"level": 1}', env=as_actor("gus", key))["recorded_by"] == "gus"


def test_no_code_path_changes_or_removes_an_observation() -> None:
    """DuckDB has no triggers: the one writer only INSERTs, and nothing else writes the table."""
    writes = re.compile(r"\b(UPDATE|DELETE\s+FROM|INSERT\s+INTO|TRUNCATE|DROP\s+TABLE)\s+observations\b", re.I)
    found = {}
    for path in sorted((REPO / "masque").rglob("*.py")) + sorted((REPO / "masque").rglob("*.sql")):
        hits = {m[1].split()[0].upper() for m in writes.finditer(path.read_text(encoding="utf-8"))}
        if hits:
            found[str(path.relative_to(REPO))] = hits
    assert found == {"masque/feedback/observations.py": {"INSERT"}}


def _tamper(sql: str, params: list[Any]) -> None:
    from masque import store

    with store.connect() as conn:
        conn.execute(sql, params)


def test_verify_detects_an_edited_observation(invoke: Invoke, store: str) -> None:
    for level in (1, 2, 3):
        observe(invoke, "tool", "focus", json.dumps({"level": level}))
    ok = invoke(["observations", "verify", "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["checked"] == 3
    _tamper("UPDATE observations SET data = ? WHERE seq = 2", ['{"level": 9}'])
    result = invoke(["observations", "verify", "tool"])
    assert result.exit_code == 1
    assert "#2" in result.stdout and "was changed" in result.stdout


def test_verify_detects_removed_observations_in_the_middle_and_at_the_end(invoke: Invoke, store: str) -> None:
    ids = [observe(invoke, "tool", "focus", json.dumps({"level": n}))["id"] for n in range(4)]
    _tamper("DELETE FROM observations WHERE id = ?", [ids[1]])
    _tamper("DELETE FROM observations WHERE id = ?", [ids[3]])
    report = json.loads(invoke(["observations", "verify", "tool", "--json"]).stdout)
    messages = " | ".join(p["message"] for p in report["problems"])
    assert not report["ok"]
    assert "removed" in messages and "chain is broken" in messages
    assert ids[3] in {p["observation"] for p in report["problems"]}  # the tail, caught by the event log


# --- feedback -------------------------------------------------------------------------------------------


def test_feedback_waits_for_min_count_then_moves_the_weight_as_a_new_version(invoke: Invoke, mapper: None) -> None:
    sug = first_suggestion(invoke)
    first = feedback(invoke, sug, "+")
    assert first["learned"][0]["changes"] == []
    assert first["learned"][0]["pending"] == {"deep-work-morning": {"count": 1, "needed": 2}}
    second = feedback(invoke, sug, "0.5")
    change = second["learned"][0]
    assert (change["version_before"], change["version_after"]) == (1, 2)
    assert change["changes"] == [{"rule": "deep-work-morning", "before": 2.0, "after": 2.375, "feedback": 2}]
    history = json.loads(invoke(["mapper", "versions", "focus", "--json"]).stdout)
    assert [(v["version"], v["reason"], v["weights"]["deep-work-morning"]) for v in history] == [
        (1, "put", 2.0),
        (2, "feedback", 2.375),
    ]
    rows = store_rows("SELECT rule_id, score, actor, applied_in FROM feedback ORDER BY id")
    assert rows == [("deep-work-morning", 1.0, "root", 2), ("deep-work-morning", 0.5, "root", 2)]


def test_weights_stay_within_the_mapper_bounds(invoke: Invoke, mapper: None) -> None:
    sug = first_suggestion(invoke)
    for _ in range(12):
        feedback(invoke, sug, "-")
    weights = json.loads(invoke(["mapper", "show", "focus", "--json"]).stdout)["weights"]
    assert weights["deep-work-morning"] == 0.0  # min_weight; a rule at 0 makes no suggestions
    result = invoke(["map", "--mapper", "focus", "--masque", "tool", "--at", MORNING, "--json"])
    assert "deep-work-morning" not in {s["rule"] for s in json.loads(result.stdout)["suggestions"]}


def test_text_feedback_says_what_moved_and_negative_scores_need_no_dashes(invoke: Invoke, mapper: None) -> None:
    sug = first_suggestion(invoke)
    first = invoke(["feedback", sug, "-0.5", "--notes", "too early"])
    assert first.exit_code == 0, first.output
    assert "1 of 2 feedback needed" in first.stdout
    second = invoke(["feedback", sug, "-"])
    assert "deep-work-morning weight 2 -> 1.625" in second.stdout
    assert store_rows("SELECT notes FROM feedback ORDER BY id")[0] == ("too early",)
    bad = invoke(["feedback", sug, "2"])
    assert bad.exit_code == ExitCode.USAGE and "from -1 to 1" in bad.output


def test_feedback_is_recorded_as_an_observation_that_feeds_mapped_traits(invoke: Invoke, mapper: None) -> None:
    sug = first_suggestion(invoke)
    feedback(invoke, sug, "+")
    feedback(invoke, sug, "0")
    prof = json.loads(invoke(["profile", "tool", "--json"]).stdout)
    assert prof["traits"]["feedback.focus.level"] == 0.5  # focus_block suggestions inform focus.level
    assert prof["traits"]["feedback.focus.level.count"] == 2
    kinds = [o["kind"] for o in json.loads(invoke(["observations", "tool", "--json"]).stdout)]
    assert kinds == ["focus", "feedback", "feedback"]


def test_only_the_actor_a_suggestion_was_made_for_may_judge_it(invoke: Invoke, mapper: None) -> None:
    sug = first_suggestion(invoke)
    key = add_actor(invoke, "pat", "player")
    refused = invoke(["feedback", sug, "+"], env=as_actor("pat", key))
    assert refused.exit_code == ExitCode.REFUSED and "made for actor 'root'" in refused.output
    unknown = invoke(["feedback", "sug_nothing", "+"])
    assert unknown.exit_code == ExitCode.NOT_FOUND


def test_feedback_on_a_session_judges_every_suggestion_made_in_it(invoke: Invoke, mapper: None) -> None:
    session = assume_json(invoke, "tool", "--intent", "work on focus")
    env = {"MASQUE_TOKEN": session["token"], "MASQUE_SESSION_ID": session["session_id"]}
    out = invoke(["map", "--mapper", "focus", "--masque", "tool", "--at", MORNING, "--json"], env=env)
    made = {s["id"] for s in json.loads(out.stdout)["suggestions"]}
    assert made
    result = feedback(invoke, session["session_id"], "+", env=env)
    assert set(result["suggestions"]) == made
    rows = store_rows("SELECT target, actor FROM feedback")
    assert {r for r in rows} == {(session["session_id"], "root")}


def test_learning_twice_never_counts_feedback_twice(invoke: Invoke, mapper: None) -> None:
    from masque.feedback import learning

    sug = first_suggestion(invoke)
    feedback(invoke, sug, "+")
    feedback(invoke, sug, "+")
    again = learning.learn("focus", actor="root")
    assert again.changes == () and again.version_after == again.version_before == 2


def test_learning_retries_when_another_writer_got_there_first(
    invoke: Invoke, mapper: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A competing version lands between learn's read and its write: learn re-reads and re-applies."""
    from masque import store as raw
    from masque.feedback import learning, mappers
    from masque.store import turns

    sug = first_suggestion(invoke)
    feedback(invoke, sug, "+")  # 1 of 2 pending
    with raw.connect() as conn:  # a second pending item, not learned yet
        conn.execute(
            "INSERT INTO feedback (id, suggestion_id, target, mapper_id, rule_id, score, actor, ts)"
            " SELECT 'fbk_manual', suggestion_id, target, mapper_id, rule_id, 1.0, actor, ts FROM feedback LIMIT 1"
        )
    real_adjust = learning.adjust
    competed: list[int] = []

    def adjust_after_a_competing_write(*args: Any) -> Any:
        if not competed:  # another writer (say, `masque mapper put`) commits a new version right now
            with turns.transaction() as conn:
                seen = mappers.current(conn, "focus")
                competed.append(mappers.write_version(conn, "focus", seen.version, seen.doc, "put", "root").version)
        return real_adjust(*args)

    monkeypatch.setattr(learning, "adjust", adjust_after_a_competing_write)
    result = learning.learn("focus", actor="root")
    assert competed == [2]
    assert result.conflicts == 1
    assert (result.version_before, result.version_after) == (2, 3)  # re-read version 2, learned on top of it
    assert result.changes[0].after == 2.5
    history = json.loads(invoke(["mapper", "versions", "focus", "--json"]).stdout)
    assert [v["reason"] for v in history] == ["put", "put", "feedback"]


# --- the profile ----------------------------------------------------------------------------------------


def test_a_new_observation_makes_the_profile_stale_until_refreshed(invoke: Invoke, store: str) -> None:
    observe(invoke, "tool", "focus", '{"level": 2}')
    built = json.loads(invoke(["profile", "tool", "--json"]).stdout)
    assert (built["version"], built["stale"], built["traits"]["focus.level"]) == (1, False, 2)
    observe(invoke, "tool", "focus", '{"level": 5}')
    stale = invoke(["profile", "tool", "--json"])
    body = json.loads(stale.stdout)
    assert (body["version"], body["stale"], body["traits"]["focus.level"]) == (1, True, 2)
    text = invoke(["profile", "tool"])
    assert "stale" in text.output and "--refresh" in text.output
    fresh = json.loads(invoke(["profile", "tool", "--refresh", "--json"]).stdout)
    assert (fresh["version"], fresh["stale"], fresh["traits"]["focus.level"]) == (2, False, 5)
    assert store_rows("SELECT stale FROM profiles") == [(False,)]


def test_profile_rebuilds_conflict_on_a_stale_version(invoke: Invoke, store: str) -> None:
    from masque.errors import Conflict
    from masque.feedback import profiles
    from masque.store import turns

    observe(invoke, "tool", "focus", '{"level": 2}')
    invoke(["profile", "tool"])
    with turns.transaction() as conn:
        profiles.write_profile(conn, "tool", 1, {"summary": "x"}, 1, "local", "root")
    with pytest.raises(Conflict) as caught, turns.transaction() as conn:
        profiles.write_profile(conn, "tool", 1, {"summary": "y"}, 1, "local", "root")
    assert caught.value.current == 2


@pytest.fixture
def llm_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with running_fake_openai(tmp_path, monkeypatch, 'model = "fake-model"\ntimeout = 5\nmax_retries = 0\n') as state:
        state.pieces = ["Tool is a focused ", "morning worker."]
        yield state


def test_profile_summary_by_the_llm_through_the_real_openai_client(
    invoke: Invoke, store: str, llm_server: FakeOpenAI
) -> None:
    observe(invoke, "tool", "focus", '{"level": 4}')
    result = invoke(["profile", "tool", "--refresh", "--llm", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["source"], body["summary"]) == ("llm", "Tool is a focused morning worker.")
    prompt = llm_server.requests[0]["messages"][-1]["content"]
    assert '"focus.level": 4' in prompt and llm_server.requests[0]["model"] == "fake-model"
    llm_server.fail_status = 500
    failed = invoke(["profile", "tool", "--refresh", "--llm"])
    assert failed.exit_code == ExitCode.FAILED and "127.0.0.1" in failed.output
    kept = json.loads(invoke(["profile", "tool", "--json"]).stdout)
    assert kept["summary"] == "Tool is a focused morning worker."  # a failed rebuild leaves the last one


@pytest.mark.slow
def test_concurrent_feedback_processes_lose_no_update(invoke: Invoke, store: str, tmp_path: Path) -> None:
    """Four `masque feedback` processes at once: every feedback is applied exactly once."""
    import os
    import subprocess
    import sys

    eager = tmp_path / "eager.mapper.yaml"
    eager.write_text(EXAMPLE.read_text().replace("min_feedback_count: 2", "min_feedback_count: 1"))
    assert invoke(["mapper", "put", eager]).exit_code == 0
    observe(invoke, "tool", "focus", '{"level": 4}')
    sug = first_suggestion(invoke)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "masque", "feedback", sug, "+", "--json"],
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in outs]
    weights = json.loads(invoke(["mapper", "show", "focus", "--json"]).stdout)["weights"]
    assert weights["deep-work-morning"] == 3.0  # 2.0 + 4 x 0.25: no update lost, none counted twice
    applied = store_rows("SELECT count(*), count(applied_in) FROM feedback")
    assert applied == [(4, 4)]
