"""Memory and identity (issue 10): the caller is proven, the ring rule guards every shard, bad input exits cleanly.

Actors: the founder `root` (admin), `pat` (player), `gus` (guest). Masques (tests/memory_support.py):
`vault` (admin), `codesmith`/`scratch` (player), `critic`/`reviewer` (guest), `lobby` (outsider).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.memory_support import memory_masques  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("memory_masques")

Invoke = Callable[..., Any]


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, list[str]]:
    """The store with root, pat and gus; returns each non-founder's `--as NAME --key-file F` options."""
    from masque.model import Ring
    from masque.trust import rings

    rings.init("root")
    out: dict[str, list[str]] = {}
    for name, ring in (("pat", Ring.PLAYER), ("gus", Ring.GUEST)):
        key = tmp_path / f"{name}.key"
        key.write_text(rings.add_actor(name, ring, rings.Selection()).key, encoding="utf-8")
        out[name] = ["--as", name, "--key-file", str(key)]
    return out


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if result.stdout.strip().startswith("{") else result.stdout


def _assume(invoke: Invoke, ref: str, who: list[str]) -> dict[str, str]:
    worn = _ok(invoke(["assume", ref, "--intent", "implement the notes", "--format", "json", *who]))
    return {"MASQUE_SESSION_ID": worn["session_id"], "MASQUE_TOKEN": worn["token"]}


def _texts(invoke: Invoke, masque: str) -> list[str]:
    return [m["text"] for m in _ok(invoke(["memory", "list", masque, "--json"]))["memories"]]


def test_a_guest_key_or_token_cannot_touch_an_admin_masques_shard(
    invoke: Invoke, keys: dict[str, list[str]], tmp_path: Path
) -> None:
    mid = _ok(invoke(["memory", "add", "vault", "the root password is in the safe", "--json"]))["ids"][0]
    dump = tmp_path / "into-vault.jsonl"
    dump.write_text(json.dumps({"masque": "vault", "text": "planted by a guest"}) + "\n", encoding="utf-8")
    token = _assume(invoke, "critic", keys["gus"])
    verbs = [
        ["search", "vault", "password"], ["list", "vault"], ["get", "vault", mid], ["history", "vault", mid],
        ["add", "vault", "planted by a guest"], ["forget", "vault", mid], ["mode", "vault", "global_snapshot"],
        ["share", "vault", "--with", "critic"], ["opt-out", "vault"], ["export", "vault"],
        ["import", str(dump)], ["stats", "vault"], ["log", "vault"], ["snapshot", "vault"], ["prune", "vault"],
    ]  # fmt: skip

    for verb in verbs:
        for how in ({"args": keys["gus"]}, {"env": token}):
            result = invoke(["memory", *verb, *how.get("args", [])], env=how.get("env"))
            assert result.exit_code == 3, (verb, how, result.output)
            assert "ring admin" in result.stderr and "vault" in result.stderr

    assert _texts(invoke, "vault") == ["the root password is in the safe"]  # the founder still reads it
    stats = _ok(invoke(["memory", "stats", "vault", "--json"]))["shards"][0]
    assert (stats["mode"], stats["readers"]) == ("isolated", [])
    # Commands without MASQUE simply do not cover a more trusted shard.
    assert "vault" not in {s["masque"] for s in _ok(invoke(["memory", "stats", "--json", *keys["gus"]]))["shards"]}
    assert _ok(invoke(["memory", "export", *keys["gus"]])) == ""
    denied = _ok(invoke(["memory", "log", "vault", "--json"]))["entries"]
    assert {e["access"] for e in denied if e["actor"] == "gus"} == {"denied"}


def test_sharing_never_lifts_a_shard_above_the_readers_ring(invoke: Invoke, keys: dict[str, list[str]]) -> None:
    _ok(invoke(["memory", "add", "vault", "admin eyes only"]))
    _ok(invoke(["memory", "mode", "vault", "scoped_share"]))
    _ok(invoke(["memory", "share", "vault", "--with", "critic"]))  # the founder whitelists a guest masque
    guest = _assume(invoke, "critic", keys["gus"])

    result = invoke(["memory", "search", "vault", "admin eyes"], env=guest)

    assert result.exit_code == 3 and "ring admin" in result.stderr


def test_a_player_reaches_its_own_ring_and_below_but_not_above(invoke: Invoke, keys: dict[str, list[str]]) -> None:
    for masque in ("scratch", "reviewer", "lobby"):
        _ok(invoke(["memory", "add", masque, f"pat was here in {masque}", *keys["pat"]]))
        assert _texts(invoke, masque) == [f"pat was here in {masque}"]
    assert invoke(["memory", "add", "vault", "no", *keys["pat"]]).exit_code == 3
    assert invoke(["memory", "list", "scratch", *keys["gus"]]).exit_code == 3  # guest < player


def test_log_and_history_show_a_guest_only_its_ring_and_below(invoke: Invoke, keys: dict[str, list[str]]) -> None:
    by_root = _ok(invoke(["memory", "add", "lobby", "the founder was here", "--json"]))["ids"][0]
    by_gus = _ok(invoke(["memory", "add", "lobby", "a guest was here", "--json", *keys["gus"]]))["ids"][0]
    _ok(invoke(["memory", "list", "lobby", *keys["pat"]]))

    log = _ok(invoke(["memory", "log", "lobby", "--json", *keys["gus"]]))["entries"]
    assert {e["actor"] for e in log} == {"gus"}
    assert {e["actor"] for e in _ok(invoke(["memory", "log", "lobby", "--json"]))["entries"]} == {"root", "pat", "gus"}
    assert invoke(["memory", "history", "lobby", by_root, *keys["gus"]]).exit_code == 4
    assert [
        h["actor"] for h in _ok(invoke(["memory", "history", "lobby", by_gus, "--json", *keys["gus"]]))["history"]
    ] == ["gus"]


def test_a_session_id_without_its_token_proves_nothing(invoke: Invoke, keys: dict[str, list[str]]) -> None:
    admin = _assume(invoke, "vault", [])
    guest = _assume(invoke, "critic", keys["gus"])

    bare = invoke(
        ["memory", "add", "a note in the admin's session"], env={"MASQUE_SESSION_ID": admin["MASQUE_SESSION_ID"]}
    )
    mixed = invoke(["memory", "list"], env={**guest, "MASQUE_SESSION_ID": admin["MASQUE_SESSION_ID"]})
    tagged = invoke(
        ["memory", "add", "critic", "tagged with the admin", "--session", admin["MASQUE_SESSION_ID"]], env=guest
    )
    own = _ok(invoke(["memory", "add", "my own note", "--json"], env=guest))

    for refused in (bare, mixed, tagged):
        assert refused.exit_code == 3, refused.output
        assert "proves" in refused.stderr
    # A key-proven actor acts as itself: the admin's session id in its environment grants nothing.
    keyed = invoke(["memory", "list", "vault", *keys["gus"]], env={"MASQUE_SESSION_ID": admin["MASQUE_SESSION_ID"]})
    assert keyed.exit_code == 3 and "ring admin" in keyed.stderr
    row = _ok(invoke(["memory", "get", "critic", own["ids"][0], "--json"]))
    assert (row["session_id"], row["actor"]) == (guest["MASQUE_SESSION_ID"], "gus")


def test_import_writes_only_as_the_proven_actor_unless_admin(
    invoke: Invoke, keys: dict[str, list[str]], tmp_path: Path
) -> None:
    forged = tmp_path / "forged.jsonl"
    forged.write_text(
        json.dumps({"masque": "critic", "text": "honest line"}) + "\n"
        + json.dumps({"masque": "critic", "text": "said by root, really", "actor": "root"}) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    mine = tmp_path / "mine.jsonl"
    mine.write_text(json.dumps({"masque": "critic", "text": "unlabelled line"}) + "\n", encoding="utf-8")

    refused = invoke(["memory", "import", str(forged), *keys["gus"]])
    assert refused.exit_code == 3
    assert f"{forged}:2" in refused.stderr and "'root'" in refused.stderr
    assert _texts(invoke, "critic") == []  # refused at line 2, before anything was written
    _ok(invoke(["memory", "import", str(mine), *keys["gus"]]))
    _ok(invoke(["memory", "import", str(forged)]))  # the founder (admin) restores labels as they are

    by_text = {m["text"]: m["actor"] for m in _ok(invoke(["memory", "list", "critic", "--json"]))["memories"]}
    assert by_text == {"unlabelled line": "gus", "honest line": None, "said by root, really": "root"}

    admin = _assume(invoke, "vault", [])["MASQUE_SESSION_ID"]
    own = _assume(invoke, "critic", keys["gus"])["MASQUE_SESSION_ID"]
    tagged = tmp_path / "tagged.jsonl"
    tagged.write_text(
        json.dumps({"masque": "critic", "text": "in my session", "session_id": own}) + "\n", encoding="utf-8"
    )
    _ok(invoke(["memory", "import", str(tagged), *keys["gus"]]))
    tagged.write_text(
        json.dumps({"masque": "critic", "text": "in root's", "session_id": admin}) + "\n", encoding="utf-8"
    )
    claimed = invoke(["memory", "import", str(tagged), *keys["gus"]])
    assert claimed.exit_code == 3 and admin in claimed.stderr


def test_only_the_actor_itself_or_an_admin_changes_its_opt_out(invoke: Invoke, keys: dict[str, list[str]]) -> None:
    other = invoke(["memory", "opt-out", "lobby", "--actor", "pat", *keys["gus"]])
    assert other.exit_code == 3
    assert "may not change the memory opt-out of actor 'pat'" in other.stderr

    assert _ok(invoke(["memory", "opt-out", "lobby", "--json", *keys["pat"]]))["actor"] == "pat"
    assert invoke(["memory", "opt-in", "lobby", "--actor", "pat", *keys["gus"]]).exit_code == 3
    assert _ok(invoke(["memory", "opt-in", "lobby", "--actor", "pat", "--json"]))["changed"] is True  # root: admin
    assert invoke(["memory", "opt-out", "lobby", "--actor", "nobody"]).exit_code == 4


def test_memory_verbs_on_an_unknown_masque_exit_4_with_a_hint(invoke: Invoke) -> None:
    from masque import config

    for verb in (
        ["add", "codesmth", "x"],
        ["list", "codesmth"],
        ["search", "codesmth", "x"],
        ["mode", "codesmth", "isolated"],
    ):
        result = invoke(["memory", *verb])
        assert result.exit_code == 4, result.output
        assert "no masque named 'codesmth'" in result.stderr and "did you mean `codesmith`" in result.stderr
    shared = invoke(["memory", "share", "codesmith", "--with", "reviewr"])
    assert shared.exit_code == 4 and "`reviewer`" in shared.stderr
    assert not (config.memory_dir() / "mask_memory_codesmth.lance").exists()


@pytest.mark.parametrize("verb", [["list", "codesmith"], ["log"], ["summaries"]])
@pytest.mark.parametrize("value", ["0", "-3"])
def test_a_limit_below_one_is_a_usage_error(invoke: Invoke, verb: list[str], value: str) -> None:
    result = invoke(["memory", *verb, "--limit", value])
    assert result.exit_code == 2
    assert f"--limit must be at least 1, got {value}" in result.stderr and "hint: e.g. --limit" in result.stderr
