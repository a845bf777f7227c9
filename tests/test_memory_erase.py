"""Forget erases (issue 10, item 8): the words leave the store's files, and LanceDB time travel cannot restore them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.memory_support import memory_masques  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("memory_masques")

Invoke = Callable[..., Any]
ALONE = "zanzibarquokka"  # stored in a commit of its own: its words sit uncompressed in a data file
AMONG = "xylophonequartz"  # stored among other rows, in a fragment compaction has rewritten


def _files_holding(root: Path, word: str) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and word.encode() in p.read_bytes()]


def _open_table() -> Any:
    from masque.memory import shards

    shard = shards.open_shard("codesmith")
    assert shard is not None
    return shard


def test_forget_leaves_no_trace_in_the_files_or_old_versions(invoke: Invoke) -> None:
    from masque import config, memory

    filler = [f"note {i} about the parser and widget {i % 7}" for i in range(600)]
    memory.add([*filler[:300], f"the vault phrase is {AMONG} tangerine", *filler[300:]], "codesmith")
    memory.index("codesmith")  # compact into one fragment, as a busy shard is
    alone = memory.add([f"the door code is {ALONE} 7781"], "codesmith").ids[0]
    among = next(m.id for m in memory.list_memories("codesmith", limit=1000) if AMONG in m.text)
    root = config.memory_dir() / "mask_memory_codesmith.lance"
    assert _files_holding(root, ALONE), "the test's premise: an uncompressed data file holds the text"
    before = [v["version"] for v in _open_table().table.list_versions()]

    forgot = invoke(["memory", "forget", "codesmith", alone, among, "--json"])
    assert forgot.exit_code == 0, forgot.output
    out = json.loads(forgot.stdout)

    assert out["removed"] == 2
    assert _files_holding(root, ALONE) == [] and _files_holding(root, AMONG) == []
    shard = _open_table()
    # No deleted row is left inside a data file (compressed pages included): the files hold exactly the live rows.
    assert shard.materialized() and shard.count() == 600
    versions = [v["version"] for v in shard.table.list_versions()]
    assert len(versions) == 1 and versions[0] > max(before)
    for old in before:  # time travel to any version that held the text fails
        with pytest.raises(ValueError, match="no longer exists"):
            shard.table.checkout(old)
    assert shard.table.search(AMONG, query_type="fts").limit(5).to_list() == []
    assert memory.find("door code vault phrase", "codesmith").hits  # the shard still answers
    assert memory.stats("codesmith")[0].vector_index == "IvfSq"  # rebuilt without the forgotten vectors


def test_prune_erases_expired_rows_too(invoke: Invoke) -> None:
    import datetime as dt

    from masque import config, memory

    memory.add([f"the temporary code is {ALONE}"], "codesmith", ttl=dt.timedelta(hours=1))
    memory.add(["a lasting note"], "codesmith")
    root = config.memory_dir() / "mask_memory_codesmith.lance"
    assert _files_holding(root, ALONE)

    memory.prune(now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2))

    assert _files_holding(root, ALONE) == []
    assert len(_open_table().table.list_versions()) == 1


def test_writes_do_not_pile_up_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    from masque import memory
    from masque.memory import search

    monkeypatch.setattr(search, "KEEP_VERSIONS", dt.timedelta(0), raising=False)  # "ten minutes later"
    monkeypatch.setattr(search, "COMPACT_FRAGMENTS", 8)
    for i in range(40):
        memory.add([f"single note {i}"], "codesmith")

    versions = len(_open_table().table.list_versions())

    assert versions <= 12, versions  # each add is a version; the periodic optimize drops the old ones
