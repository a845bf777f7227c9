"""Memory on object storage: `[memory] uri = "s3://..."` against a local S3 server (moto, a real process).

Every verb must behave as on local disk: add, search, list, forget (which must truly erase: the old
data objects leave the bucket), export/import, stats; two masques stay apart; the ring rule holds;
a wrong endpoint is a clear error naming the URI and the setting to fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import s3_support
from tests.memory_support import memory_masques  # noqa: F401 (the fixture)
from tests.s3_support import Bucket, free_port, write_s3_config

s3_endpoint = s3_support.s3_endpoint  # the fixtures
s3_memory = s3_support.s3_memory

pytestmark = [pytest.mark.usefixtures("memory_masques"), pytest.mark.slow]

Invoke = Callable[..., Any]


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if result.stdout.strip().startswith("{") else result.stdout


def _texts(invoke: Invoke, masque: str, *who: str) -> list[str]:
    return sorted(m["text"] for m in _ok(invoke(["memory", "list", masque, "--json", *who]))["memories"])


def test_add_search_list_and_stats_live_in_the_bucket(invoke: Invoke, s3_memory: Bucket, isolated_env: Path) -> None:
    _ok(invoke(["memory", "add", "codesmith", "the parser must keep line and column numbers", "--tags", "parser"]))
    _ok(invoke(["memory", "add", "codesmith", "deploys need two approvals"]))

    hits = _ok(invoke(["memory", "search", "codesmith", "line numbers", "-k", "1", "--json"]))["results"]
    stats = _ok(invoke(["memory", "stats", "codesmith", "--json"]))["shards"][0]

    assert [h["text"] for h in hits] == ["the parser must keep line and column numbers"]
    assert _texts(invoke, "codesmith") == ["deploys need two approvals", "the parser must keep line and column numbers"]
    assert stats["rows"] == 2 and stats["size_bytes"] > 0
    assert any(k.startswith("team/mask_memory_codesmith.lance/data/") for k in s3_memory.keys("team/"))
    assert not (isolated_env / "memory" / "mask_memory_codesmith.lance").exists()  # nothing went to local disk


def test_forget_removes_the_words_from_every_object_in_the_bucket(invoke: Invoke, s3_memory: Bucket) -> None:
    secret = "the staging password is hunter2-zebra"
    mid = _ok(invoke(["memory", "add", "codesmith", secret, "--json"]))["ids"][0]
    _ok(invoke(["memory", "add", "codesmith", "tests live in tests/"]))
    prefix = "team/mask_memory_codesmith.lance/"
    held = {k for k in s3_memory.keys(prefix) if "/data/" in k and b"hunter2-zebra" in s3_memory.read(k)}
    assert held

    _ok(invoke(["memory", "forget", "codesmith", mid]))

    after = s3_memory.keys(prefix)
    assert not held & set(after)  # the fragments that held it are deleted objects now
    assert [k for k in after if b"hunter2-zebra" in s3_memory.read(k)] == []  # data, indices, manifests, txns
    assert len([k for k in after if "/_versions/" in k]) == 1  # no older version to travel back to
    assert _texts(invoke, "codesmith") == ["tests live in tests/"]
    found = _ok(invoke(["memory", "search", "codesmith", "staging password hunter2", "--json"]))["results"]
    assert mid not in {h["id"] for h in found}


def test_two_masques_keep_separate_shards_on_one_bucket(invoke: Invoke, s3_memory: Bucket) -> None:
    _ok(invoke(["memory", "add", "codesmith", "codesmith keeps the parser notes"]))
    _ok(invoke(["memory", "add", "scratch", "scratch keeps the shopping list"]))

    found = _ok(invoke(["memory", "search", "scratch", "keeps the parser notes", "--json"]))["results"]

    assert _texts(invoke, "codesmith") == ["codesmith keeps the parser notes"]
    assert [h["text"] for h in found] == ["scratch keeps the shopping list"]  # never the other shard's
    tables = {k.split("/")[1] for k in s3_memory.keys("team/")}
    assert tables == {"mask_memory_codesmith.lance", "mask_memory_scratch.lance"}
    assert {s["masque"] for s in _ok(invoke(["memory", "stats", "--json"]))["shards"]} == {"codesmith", "scratch"}


def test_export_then_import_round_trips_through_the_bucket(invoke: Invoke, s3_memory: Bucket, tmp_path: Path) -> None:
    for text in ("first note", "second note", "third note"):
        _ok(invoke(["memory", "add", "codesmith", text]))
    dump = tmp_path / "codesmith.jsonl"
    _ok(invoke(["memory", "export", "codesmith", "-o", dump]))
    _ok(invoke(["memory", "forget", "codesmith", "--tag", "none-such"]))  # a no-op forget keeps all
    ids = [json.loads(line)["id"] for line in dump.read_text(encoding="utf-8").splitlines()]
    _ok(invoke(["memory", "forget", "codesmith", *ids]))
    assert _texts(invoke, "codesmith") == []

    imported = _ok(invoke(["memory", "import", dump, "--json"]))

    assert imported["imported"] == 3
    assert _texts(invoke, "codesmith") == ["first note", "second note", "third note"]


def test_the_ring_rule_guards_shards_on_s3_too(invoke: Invoke, s3_memory: Bucket, tmp_path: Path) -> None:
    from masque.model import Ring
    from masque.trust import rings

    rings.init("root")
    who: dict[str, list[str]] = {}
    for name, ring in (("pat", Ring.PLAYER), ("gus", Ring.GUEST)):
        key = tmp_path / f"{name}.key"
        key.write_text(rings.add_actor(name, ring, rings.Selection()).key, encoding="utf-8")
        who[name] = ["--as", name, "--key-file", str(key)]
    _ok(invoke(["memory", "add", "vault", "the root password is in the safe"]))
    _ok(invoke(["memory", "add", "scratch", "pat was here", *who["pat"]]))

    for verb in (["search", "vault", "password"], ["list", "vault"], ["add", "vault", "planted"], ["export", "vault"]):
        result = invoke(["memory", *verb, *who["gus"]])
        assert result.exit_code == 3 and "ring admin" in result.stderr, (verb, result.output)
    assert invoke(["memory", "list", "scratch", *who["gus"]]).exit_code == 3  # guest < player
    assert _texts(invoke, "scratch", *who["pat"]) == ["pat was here"]
    assert _texts(invoke, "vault") == ["the root password is in the safe"]
    assert "vault" not in {s["masque"] for s in _ok(invoke(["memory", "stats", "--json", *who["gus"]]))["shards"]}


def test_an_unreachable_endpoint_names_the_uri_and_the_setting(
    run_masque: Callable[..., Any], s3_endpoint: str, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    config = write_s3_config(tmp_path / "dead.toml", "s3://nowhere/team", dead)
    env = {"MASQUE_CONFIG": str(config), "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "do-not-print-me"}

    result = run_masque("memory", "add", "codesmith", "a note", env=env)

    assert result.returncode == 5, result.stderr
    assert "s3://nowhere/team" in result.stderr and dead in result.stderr
    assert "[memory.s3] endpoint" in result.stderr and "Connection refused" in result.stderr
    assert "Traceback" not in result.stderr and "do-not-print-me" not in result.stderr + result.stdout


def test_a_plain_http_endpoint_must_be_allowed_explicitly(invoke: Invoke, s3_endpoint: str, tmp_path: Path) -> None:
    config = write_s3_config(tmp_path / "nohttp.toml", "s3://b/team", s3_endpoint, allow_http=False)

    result = invoke(["memory", "add", "codesmith", "a note"], env={"MASQUE_CONFIG": str(config)})

    assert result.exit_code == 2
    assert "allow_http = true" in result.stderr and s3_endpoint in result.stderr


def test_a_missing_bucket_is_a_store_error_naming_it(invoke: Invoke, s3_memory: Bucket, tmp_path: Path) -> None:
    config = write_s3_config(tmp_path / "nobucket.toml", "s3://no-such-bucket-here/team", s3_memory.endpoint)

    result = invoke(["memory", "add", "codesmith", "a note"], env={"MASQUE_CONFIG": str(config)})

    assert result.exit_code == 5, result.output
    assert "s3://no-such-bucket-here/team" in result.stderr and "NoSuchBucket" in result.stderr
    assert "bucket exists" in result.stderr


def test_refused_credentials_exit_5_naming_the_cause(invoke: Invoke, tmp_path: Path) -> None:
    with s3_support.moto_server(INITIAL_NO_AUTH_ACTION_COUNT="0") as endpoint:  # this one checks keys
        config = write_s3_config(tmp_path / "auth.toml", "s3://any-bucket/team", endpoint)
        env = {"MASQUE_CONFIG": str(config), "AWS_ACCESS_KEY_ID": "AKIAWRONG", "AWS_SECRET_ACCESS_KEY": "hush-hush"}

        result = invoke(["memory", "search", "codesmith", "anything"], env=env)

    assert result.exit_code == 5, result.output
    assert "InvalidAccessKeyId" in result.stderr and "AWS credentials" in result.stderr
    assert "hush-hush" not in result.output


def test_concurrent_writers_lose_nothing_on_the_bucket(s3_memory: Bucket, tmp_path: Path, invoke: Invoke) -> None:
    """LanceDB commits with conditional PUTs (If-None-Match); the server answers 412 to the loser, who retries."""
    import os
    import subprocess
    import sys

    files = []
    for writer in range(3):
        dump = tmp_path / f"writer{writer}.jsonl"
        lines = (json.dumps({"masque": "codesmith", "text": f"writer {writer} note {i}"}) for i in range(20))
        dump.write_text("\n".join(lines) + "\n", encoding="utf-8")
        files.append(dump)
    _ok(invoke(["memory", "add", "codesmith", "the shard exists before the race"]))

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "masque", "memory", "import", str(f)],
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in files
    ]
    outcomes = [(p.communicate(timeout=300)[1], p.returncode) for p in procs]

    assert all(code == 0 for _, code in outcomes), outcomes
    listed = _ok(invoke(["memory", "list", "codesmith", "--limit", "1000", "--json"]))["memories"]
    assert len({m["text"] for m in listed}) == 61


def test_masque_path_shows_the_memory_uri_and_endpoint(invoke: Invoke, s3_memory: Bucket) -> None:
    places = _ok(invoke(["path", "--json"]))

    assert places["memory"] == f"s3://{s3_memory.name}/team (endpoint {s3_memory.endpoint})"
    assert "testing-secret-value" not in json.dumps(places)


def test_snapshot_index_and_reembed_work_on_the_bucket(invoke: Invoke, s3_memory: Bucket, tmp_path: Path) -> None:
    for text in ("the parser keeps line numbers", "deploys need two approvals", "tests live in tests/"):
        _ok(invoke(["memory", "add", "codesmith", text]))

    summary = _ok(invoke(["memory", "snapshot", "codesmith", "--json"]))["summaries"][0]
    indexed = _ok(invoke(["memory", "index", "codesmith", "--json"]))
    config = tmp_path / "masque.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("[memory]\n", "[memory]\nhash_dim = 128\n", 1))
    refused = invoke(["memory", "search", "codesmith", "parser"])
    _ok(invoke(["memory", "reembed", "codesmith"]))
    hits = _ok(invoke(["memory", "search", "codesmith", "parser line numbers", "-k", "1", "--json"]))["results"]

    assert summary["source_rows"] == 3 and "parser" in summary["summary"]
    assert indexed["rows"] == 3
    assert refused.exit_code == 2 and "reembed" in refused.stderr  # the embedder changed under the shard
    assert [h["text"] for h in hits] == ["the parser keeps line numbers"]
    assert _ok(invoke(["memory", "stats", "codesmith", "--json"]))["shards"][0]["embedder"] == "hash-v1-128"


def test_release_archives_the_session_diff_of_a_shard_on_s3(invoke: Invoke, s3_memory: Bucket) -> None:
    session = _ok(invoke(["assume", "codesmith", "--intent", "implement the parser", "--format", "json"]))
    env = {"MASQUE_SESSION_ID": session["session_id"], "MASQUE_TOKEN": session["token"]}
    _ok(invoke(["memory", "add", "the parser is a Pratt loop"], env=env))  # MASQUE from the session
    dropped = _ok(invoke(["memory", "add", "a note to drop", "--json"], env=env))["ids"][0]
    _ok(invoke(["memory", "forget", dropped], env=env))

    _ok(invoke(["release", session["session_id"]]))

    memory = _ok(invoke(["sessions", "show", session["session_id"], "--json"]))["memory"]
    assert memory["shards"] == {"codesmith": {"added": 2, "forgotten": 1}}
    assert _texts(invoke, "codesmith") == ["the parser is a Pratt loop"]


def test_a_shard_the_store_knows_but_the_bucket_lacks_is_missing(
    invoke: Invoke, s3_memory: Bucket, tmp_path: Path
) -> None:
    _ok(invoke(["memory", "add", "codesmith", "written to the first bucket"]))
    other = Bucket(s3_memory.endpoint)  # the config now points at an empty bucket
    config = write_s3_config(tmp_path / "other.toml", f"s3://{other.name}/team", s3_memory.endpoint)

    result = invoke(["memory", "list", "codesmith"], env={"MASQUE_CONFIG": str(config)})

    assert result.exit_code == 5, result.output
    assert f"is missing (s3://{other.name}/team/mask_memory_codesmith.lance)" in result.stderr
    assert "memory import" in result.stderr
