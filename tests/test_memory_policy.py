"""Memory inside sessions: defaults, cross-shard reads (isolated / scoped_share / admin), opt-out, snapshot."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.memory_support import memory_masques  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("memory_masques")

Invoke = Callable[..., Any]


@pytest.fixture
def actors(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An initialised store with the founder `root` (admin) and a player `pat`; returns pat's key."""
    from masque.model import Ring
    from masque.trust import rings

    rings.init("root")
    pat = rings.add_actor("pat", Ring.PLAYER, rings.Selection())
    return {"pat": pat.key}


_TOKENS: dict[str, str] = {}


def _don(ref: str, intent: str, actor: str | None = None, key: str | None = None) -> str:
    from masque.sessions import lifecycle as sessions
    from masque.trust import rings

    selection = rings.Selection(name=actor, key=key) if actor else rings.Selection()
    worn = sessions.assume(ref, intent, selection=selection)
    assert worn.token is not None
    _TOKENS[worn.session_id] = worn.token
    return worn.session_id


def _enter(monkeypatch: pytest.MonkeyPatch, sid: str) -> None:
    """What `eval "$(masque assume ...)"` exports: the session id and the token that proves it."""
    monkeypatch.setenv("MASQUE_SESSION_ID", sid)
    monkeypatch.setenv("MASQUE_TOKEN", _TOKENS[sid])


def _leave(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MASQUE_SESSION_ID")
    monkeypatch.delenv("MASQUE_TOKEN")


def _json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_inside_a_session_add_and_search_default_to_its_masque(
    invoke: Invoke, actors: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = _don("codesmith", "implement the tokenizer", "pat", actors["pat"])
    _enter(monkeypatch, sid)

    added = _json(invoke(["memory", "add", "tokens carry their source span", "--json"]))
    found = _json(invoke(["memory", "search", "source span", "--json"]))

    assert added["masque"] == "codesmith"
    top = found["results"][0]
    assert (top["masque"], top["version"], top["session_id"], top["actor"]) == ("codesmith", "0.1.0", sid, "pat")


def test_session_diff_counts_what_a_session_added_and_forgot(
    actors: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from masque import memory

    sid = _don("codesmith", "implement the cache", "pat", actors["pat"])
    _enter(monkeypatch, sid)
    kept, dropped = memory.add(["cache keys include the file hash", "scratch note"]).ids
    memory.forget(None, memory.Filters(ids=(dropped,)))

    diff = memory.session_diff(sid)

    assert diff["added"] == 2 and diff["forgotten"] == 1
    assert sorted(diff["added_ids"]) == sorted([kept, dropped]) and diff["forgotten_ids"] == [dropped]
    assert diff["shards"] == {"codesmith": {"added": 2, "forgotten": 1}}


def test_reading_another_masques_shard_is_refused_and_logged(
    invoke: Invoke, actors: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke(["memory", "add", "reviewer", "review notes are private"])
    sid = _don("codesmith", "implement the parser", "pat", actors["pat"])
    _enter(monkeypatch, sid)

    result = invoke(["memory", "search", "reviewer", "notes"])

    assert result.exit_code == 3
    assert "may not read the memory of 'reviewer'" in result.stderr
    assert "masque memory share reviewer --with codesmith" in result.stderr
    _leave(monkeypatch)
    denied = _json(invoke(["memory", "log", "reviewer", "--action", "search", "--json"]))["entries"]
    assert [(e["access"], e["reader_masque"], e["session_id"]) for e in denied] == [("denied", "codesmith", sid)]


def test_scoped_share_lets_whitelisted_masques_read_but_never_write(
    invoke: Invoke, actors: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke(["memory", "add", "reviewer", "style: prefer early returns"])
    invoke(["memory", "share", "reviewer", "--with", "codesmith"])
    sid = _don("codesmith", "implement the parser", "pat", actors["pat"])
    _enter(monkeypatch, sid)

    still_isolated = invoke(["memory", "search", "reviewer", "early returns"])
    assert still_isolated.exit_code == 3  # the whitelist counts only in scoped_share mode

    _leave(monkeypatch)
    assert invoke(["memory", "mode", "reviewer", "scoped_share"]).exit_code == 0
    _enter(monkeypatch, sid)
    found = _json(invoke(["memory", "search", "reviewer", "early returns", "--json"]))
    assert found["access"] == "shared"
    assert found["results"][0]["text"] == "style: prefer early returns"
    assert invoke(["memory", "add", "reviewer", "sneaky write"]).exit_code == 3

    _leave(monkeypatch)
    invoke(["memory", "unshare", "reviewer", "--with", "codesmith"])
    _enter(monkeypatch, sid)
    assert invoke(["memory", "search", "reviewer", "early returns"]).exit_code == 3


def test_an_admin_session_reads_any_shard(
    invoke: Invoke, actors: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke(["memory", "add", "reviewer", "audit trail lives in duckdb"])
    sid = _don("codesmith", "implement the audit view")  # the founder: admin ring
    _enter(monkeypatch, sid)

    found = _json(invoke(["memory", "search", "reviewer", "audit trail", "--json"]))

    assert found["access"] == "admin"
    assert found["results"][0]["text"] == "audit trail lives in duckdb"


def test_an_ended_session_cannot_use_memory(
    invoke: Invoke, actors: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from masque.sessions import lifecycle as sessions

    sid = _don("codesmith", "implement the lexer", "pat", actors["pat"])
    sessions.release(sid)
    _enter(monkeypatch, sid)

    result = invoke(["memory", "add", "too late"])

    assert result.exit_code == 3
    assert "MASQUE_TOKEN is not valid: revoked" in result.stderr  # the one identity check refuses it


def test_opt_out_stores_nothing_and_reads_return_nothing(invoke: Invoke) -> None:
    invoke(["memory", "add", "codesmith", "stored before opting out"])
    assert invoke(["memory", "opt-out", "codesmith"]).exit_code == 0

    added = _json(invoke(["memory", "add", "codesmith", "must not be stored", "--json"]))
    found = _json(invoke(["memory", "search", "codesmith", "stored", "--json"]))
    assert added["stored"] is False and "opted out" in added["reason"]
    assert found["results"] == []

    assert invoke(["memory", "opt-in", "codesmith"]).exit_code == 0
    texts = [m["text"] for m in _json(invoke(["memory", "list", "codesmith", "--json"]))["memories"]]
    assert texts == ["stored before opting out"]
    log = _json(invoke(["memory", "log", "codesmith", "--json"]))["entries"]
    assert {"opted_out"} <= {e["access"] for e in log}


def test_snapshot_condenses_global_snapshot_shards_into_duckdb(invoke: Invoke) -> None:
    from masque import store

    for text in ["parsers keep spans", "parsers report line numbers", "deploys need approval", "coffee"]:
        invoke(["memory", "add", "codesmith", text])
    invoke(["memory", "add", "reviewer", "isolated shards are not condensed by default"])
    invoke(["memory", "mode", "codesmith", "global_snapshot"])

    out = _json(invoke(["memory", "snapshot", "--json"]))["summaries"]

    assert [s["masque"] for s in out] == ["codesmith"]
    assert out[0]["method"] == "extractive" and out[0]["source_rows"] == 4
    assert "parsers" in out[0]["summary"]
    with store.connect(read_only=True) as conn:
        rows = conn.execute("SELECT masque, summary FROM ai_memory_summary").fetchall()
    assert rows == [("codesmith", out[0]["summary"])]


def test_shard_wide_commands_in_a_session_stay_on_its_own_shard(
    invoke: Invoke, actors: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke(["memory", "add", "reviewer", "reviewer's own note"])
    sid = _don("codesmith", "implement the exporter", "pat", actors["pat"])
    _enter(monkeypatch, sid)
    invoke(["memory", "add", "exporter writes JSONL"])

    exported = invoke(["memory", "export"])
    pruned = invoke(["memory", "prune", "--json"])
    mode = invoke(["memory", "mode", "reviewer", "global_snapshot"])

    assert [json.loads(line)["text"] for line in exported.stdout.splitlines()] == ["exporter writes JSONL"]
    assert json.loads(pruned.stdout)["shards"] == {"codesmith": 0}
    assert mode.exit_code == 3 and "may not change the mode" in mode.stderr


def test_session_diff_works_inside_the_callers_transaction(
    actors: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from masque import memory, store

    sid = _don("codesmith", "implement the release hook", "pat", actors["pat"])
    _enter(monkeypatch, sid)
    memory.add(["release stores the diff"])

    with store.transaction() as conn:  # as `masque release` would call it
        diff = memory.session_diff(sid, conn)

    assert diff["added"] == 1 and diff["shards"] == {"codesmith": {"added": 1, "forgotten": 0}}


def test_the_python_api_covers_share_snapshot_opt_out_and_log() -> None:
    from masque import memory

    memory.add(["critic notes: pacing drags in act two"], "critic")
    memory.set_mode("critic", memory.Mode.GLOBAL_SNAPSHOT)
    shared = memory.share("critic", "professor")
    summaries = memory.summarize()
    memory.opt_out("critic")
    hidden = memory.find("pacing", "critic").hits
    memory.opt_in("critic")

    assert shared.readers == ("professor",) and shared.mode is memory.Mode.GLOBAL_SNAPSHOT
    assert [s.masque for s in summaries] == ["critic"] and "pacing" in summaries[0].summary
    assert hidden == ()
    assert [e.action for e in memory.log_entries("critic")] == [
        "opt_in", "search", "opt_out", "snapshot", "share", "mode", "add",
    ]  # fmt: skip


def test_summaries_travel_by_mode_and_whitelist(
    invoke: Invoke, actors: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke(["memory", "add", "reviewer", "reviews flag missing tests"])
    invoke(["memory", "add", "scratch", "the nas runs out of space monthly"])
    invoke(["memory", "add", "generalist", "users ask about pricing"])
    invoke(["memory", "mode", "reviewer", "global_snapshot"])
    invoke(["memory", "mode", "scratch", "scoped_share"])
    invoke(["memory", "snapshot", "reviewer", "scratch", "generalist"])
    sid = _don("codesmith", "implement the summary view", "pat", actors["pat"])
    _enter(monkeypatch, sid)

    visible = _json(invoke(["memory", "summaries", "--json"]))["summaries"]
    assert [s["masque"] for s in visible] == ["reviewer"]  # global_snapshot travels; the others do not
    assert invoke(["memory", "summaries", "generalist"]).exit_code == 3

    _leave(monkeypatch)
    invoke(["memory", "share", "scratch", "--with", "codesmith"])
    _enter(monkeypatch, sid)
    visible = _json(invoke(["memory", "summaries", "--json"]))["summaries"]
    assert [s["masque"] for s in visible] == ["reviewer", "scratch"]
    assert "space" in visible[1]["summary"]
