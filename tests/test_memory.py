"""`masque memory`: storing, searching, listing, forgetting, retention, export/import, history, log."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.memory_support import memory_masques  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("memory_masques")

Invoke = Callable[..., Any]
LATER = dt.timedelta(days=3)


def _json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _add(invoke: Invoke, *args: str) -> str:
    out = _json(invoke(["memory", "add", *args, "--json"]))
    assert out["stored"] is True
    return str(out["ids"][0])


def test_search_returns_best_match_first_with_provenance(invoke: Invoke) -> None:
    _add(invoke, "codesmith", "deploys happen on tuesdays after the standup")
    wanted = _add(invoke, "codesmith", "the parser must keep line and column numbers", "--tags", "parser,core")
    _add(invoke, "codesmith", "coffee beans are in the left cupboard")

    out = _json(invoke(["memory", "search", "codesmith", "parser line numbers", "-k", "2", "--json"]))

    results = out["results"]
    assert results[0]["id"] == wanted
    assert results[0]["text"] == "the parser must keep line and column numbers"
    assert results[0]["tags"] == ["parser", "core"]
    assert results[0]["masque"] == "codesmith"
    assert {"score", "session_id", "branch", "created_at", "expires_at", "content_hash", "actor"} <= set(results[0])
    assert len(results) <= 2
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)


def test_add_reads_file_and_stdin(invoke: Invoke, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("remember the staging database is read-only\n", encoding="utf-8")
    from_file = _add(invoke, "codesmith", "--file", str(note))
    from_stdin = _json(invoke(["memory", "add", "codesmith", "-", "--json"], input="piped memory about caching\n"))

    listed = _json(invoke(["memory", "list", "codesmith", "--json"]))["memories"]

    assert [m["id"] for m in listed] == [from_stdin["ids"][0], from_file]  # newest first
    assert listed[1]["text"].startswith("remember the staging database")


def test_outside_a_session_the_masque_is_required(invoke: Invoke) -> None:
    result = invoke(["memory", "add", "just some text"])
    assert result.exit_code == 2
    assert "which masque" in result.stderr


def test_get_shows_one_memory_and_unknown_ids_exit_4(invoke: Invoke) -> None:
    mid = _add(invoke, "codesmith", "the build uses hatchling", "--branch", "main")
    got = _json(invoke(["memory", "get", "codesmith", mid, "--json"]))
    assert got["text"] == "the build uses hatchling"
    assert got["branch"] == "main"

    missing = invoke(["memory", "get", "codesmith", "mem_00000000000000000000000000"])
    assert missing.exit_code == 4
    assert "mem_00000000000000000000000000" in missing.stderr


def test_forget_needs_a_filter_and_removes_only_what_matches(invoke: Invoke) -> None:
    keep = _add(invoke, "codesmith", "keep this one")
    drop = _add(invoke, "codesmith", "drop this one")

    refused = invoke(["memory", "forget", "codesmith"])
    assert refused.exit_code == 2
    assert "needs a filter" in refused.stderr

    out = _json(invoke(["memory", "forget", "codesmith", drop, "--json"]))
    assert out["ids"] == [drop]
    remaining = [m["id"] for m in _json(invoke(["memory", "list", "codesmith", "--json"]))["memories"]]
    assert remaining == [keep]


def _session_env(invoke: Invoke, ref: str = "codesmith") -> dict[str, str]:
    """The environment `eval "$(masque assume ...)"` leaves: the session id with the token proving it."""
    worn = _json(invoke(["assume", ref, "--intent", "implement the parser", "--format", "json"]))
    return {"MASQUE_SESSION_ID": worn["session_id"], "MASQUE_TOKEN": worn["token"]}


def test_forget_by_session_tag(invoke: Invoke) -> None:
    # Changed with issue 10: a session tag comes only from the session MASQUE_TOKEN proves.
    one, two = _session_env(invoke), _session_env(invoke)
    _add_in = [
        invoke(["memory", "add", "from session one"], env=one),
        invoke(["memory", "add", "from session two"], env=two),
    ]
    assert all(r.exit_code == 0 for r in _add_in), [r.output for r in _add_in]

    out = _json(invoke(["memory", "forget", "codesmith", "--session", one["MASQUE_SESSION_ID"], "--json"]))

    assert out["removed"] == 1
    texts = [m["text"] for m in _json(invoke(["memory", "list", "codesmith", "--json"]))["memories"]]
    assert texts == ["from session two"]


def test_ttl_hides_memories_at_once_and_prune_deletes_them(invoke: Invoke) -> None:
    from masque import memory

    short = _add(invoke, "codesmith", "temporary: the demo password is hunter2", "--ttl", "1h")
    lasting = _add(invoke, "codesmith", "the demo runs on port 8080")
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)

    found = memory.find("demo password", "codesmith", now=later)
    assert short not in [h.memory.id for h in found.hits]
    assert [m.id for m in memory.list_memories("codesmith", now=later)] == [lasting]

    pruned = memory.prune(now=later)
    assert pruned.removed == (short,)
    assert [h.event for h in memory.history("codesmith", short)] == ["added", "expired"]
    assert [m.id for m in memory.list_memories("codesmith", include_expired=True)] == [lasting]


def test_retention_from_the_masque_file_applies_to_existing_rows(invoke: Invoke, tmp_path: Path) -> None:
    from masque import memory

    personas = Path.cwd() / "personas"
    personas.mkdir()
    (personas / "scribe.masque.yaml").write_text(
        'name: Scribe\nindex: 9\nversion: "1.0.0"\nring: player\nattributes:\n  memory_retention: 1d\n'
        'intent:\n  allowed: ["write *"]\nlens: Write things down.\n',
        encoding="utf-8",
    )
    _add(invoke, "scribe", "an old note")
    assert memory.list_memories("scribe", now=dt.datetime.now(dt.timezone.utc) + LATER) == []
    stats = _json(invoke(["memory", "stats", "scribe", "--json"]))["shards"][0]
    assert stats["retention"] == "1d"


def test_retention_from_config(invoke: Invoke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from masque import memory

    cfg = tmp_path / "masque.toml"
    cfg.write_text('[memory]\nretention = "2d"\n[memory.masques.keeper]\nretention = "30d"\n', encoding="utf-8")
    monkeypatch.setenv("MASQUE_CONFIG", str(cfg))
    _add(invoke, "scratch", "short lived")
    _add(invoke, "keeper", "long lived")
    later = dt.datetime.now(dt.timezone.utc) + LATER
    assert memory.list_memories("scratch", now=later) == []
    assert [m.text for m in memory.list_memories("keeper", now=later)] == ["long lived"]


@pytest.mark.duckdb_only(reason="a fresh home on a shared PostgreSQL store is not a fresh store")
def test_export_then_import_into_a_fresh_home_round_trips(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _add(invoke, "codesmith", "alpha memory", "--tags", "a")
    _add(invoke, "reviewer", "beta memory")
    dump = tmp_path / "memories.jsonl"
    assert invoke(["memory", "export", "-o", str(dump)]).exit_code == 0
    lines = [json.loads(line) for line in dump.read_text(encoding="utf-8").splitlines()]
    assert {line["text"] for line in lines} == {"alpha memory", "beta memory"}

    monkeypatch.setenv("MASQUE_HOME", str(tmp_path / "fresh-home"))
    out = _json(invoke(["memory", "import", str(dump), "--json"]))
    assert out["imported"] == 2
    again = _json(invoke(["memory", "import", str(dump), "--json"]))
    assert again == {"imported": 0, "skipped": 2, "shards": {}}

    got = _json(invoke(["memory", "get", "codesmith", first, "--json"]))
    assert got["text"] == "alpha memory"
    assert got["tags"] == ["a"]
    top = _json(invoke(["memory", "search", "reviewer", "beta", "--json"]))["results"][0]
    assert top["text"] == "beta memory"


def test_import_reports_the_bad_line(invoke: Invoke, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"masque": "codesmith", "text": "fine"}\nnot json\n', encoding="utf-8")
    result = invoke(["memory", "import", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:2" in result.stderr


def test_history_and_log_never_hold_the_text(invoke: Invoke) -> None:
    secret = "the vault unseal phrase is correct horse battery staple"
    mid = _add(invoke, "codesmith", secret)
    invoke(["memory", "search", "codesmith", "unseal phrase"])
    invoke(["memory", "forget", "codesmith", mid])

    history = _json(invoke(["memory", "history", "codesmith", mid, "--json"]))["history"]
    log = _json(invoke(["memory", "log", "--json"]))["entries"]

    assert [h["event"] for h in history] == ["added", "forgotten"]
    assert [e["action"] for e in log] == ["history", "forget", "search", "add"]  # reads are logged too
    assert all(e["memory_ids"] == [mid] for e in log)
    dumped = json.dumps(history) + json.dumps(log)
    assert "unseal" not in dumped and "horse" not in dumped


def test_stats_lists_each_shard(invoke: Invoke) -> None:
    _add(invoke, "codesmith", "one")
    _add(invoke, "codesmith", "two")
    _add(invoke, "reviewer", "three")
    shards = _json(invoke(["memory", "stats", "--json"]))["shards"]
    by_name = {s["masque"]: s for s in shards}
    assert by_name["codesmith"]["live"] == 2
    assert by_name["codesmith"]["table"] == "mask_memory_codesmith"
    assert by_name["codesmith"]["embedder"] == "hash-v1-256"
    assert by_name["reviewer"]["mode"] == "isolated"


def test_changed_embedder_is_a_clear_error_until_reembed(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add(invoke, "codesmith", "vectors made with the default embedder")
    cfg = tmp_path / "masque.toml"
    cfg.write_text("[memory]\nhash_dim = 64\n", encoding="utf-8")
    monkeypatch.setenv("MASQUE_CONFIG", str(cfg))

    failed = invoke(["memory", "search", "codesmith", "vectors"])
    assert failed.exit_code == 2
    assert "hash-v1-256" in failed.stderr and "hash-v1-64" in failed.stderr
    assert "masque memory reembed codesmith" in failed.stderr

    out = _json(invoke(["memory", "reembed", "codesmith", "--json"]))
    assert (out["rows"], out["embedder"], out["dim"]) == (1, "hash-v1-64", 64)
    top = _json(invoke(["memory", "search", "codesmith", "default embedder", "--json"]))["results"][0]
    assert top["text"] == "vectors made with the default embedder"


def test_index_builds_a_vector_index_and_search_still_finds_exact_text(invoke: Invoke) -> None:
    from masque import memory

    texts = [f"note {i} about subsystem {i % 17} and widget {i * 7 % 101}" for i in range(300)]
    memory.add(texts, "codesmith")
    report = _json(invoke(["memory", "index", "codesmith", "--json"]))
    assert report["vector_index"] == "IvfSq"
    top = memory.find("note 123 about subsystem 4", "codesmith", k=3).hits
    assert top[0].memory.text == texts[123]


def test_memory_cli_module_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, masque.cli.app, masque.memory;"
        "print(sorted(m for m in ('lancedb','duckdb','pyarrow','numpy','openai') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_expired_best_matches_never_crowd_out_live_ones() -> None:
    from masque import memory

    memory.add([f"release checklist item {i}" for i in range(40)], "codesmith", ttl=dt.timedelta(hours=1))
    live = memory.add(["release checklist: tag", "release checklist: notes", "release list: announce"], "codesmith")
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)

    hits = memory.find("release checklist item", "codesmith", k=3, now=later).hits

    assert sorted(h.memory.id for h in hits) == sorted(live.ids)


def test_a_vector_index_is_built_automatically_past_the_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from masque import memory

    cfg = tmp_path / "masque.toml"
    cfg.write_text("[memory]\nindex_threshold = 300\n", encoding="utf-8")
    monkeypatch.setenv("MASQUE_CONFIG", str(cfg))
    memory.add([f"row {i} of the first batch" for i in range(299)], "codesmith")
    assert memory.stats("codesmith")[0].vector_index is None

    memory.add(["the row that crosses the threshold"], "codesmith")

    assert memory.stats("codesmith")[0].vector_index == "IvfSq"
    assert (
        memory.find("crosses the threshold", "codesmith", k=1).hits[0].memory.text
        == "the row that crosses the threshold"
    )


def test_an_oversized_memory_is_refused(invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "masque.toml"
    cfg.write_text("[limits]\nmax_file_bytes = 100\n", encoding="utf-8")
    monkeypatch.setenv("MASQUE_CONFIG", str(cfg))

    result = invoke(["memory", "add", "codesmith", "x" * 101])

    assert result.exit_code == 2
    assert "101 bytes is over the 100-byte limit" in result.stderr
