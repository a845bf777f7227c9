"""Properties: JSONL export lines parse back to the same memory; filter values are quoted safely."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.memory_support import memory_masques, write_masque  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("memory_masques")

_text = st.text(min_size=1, max_size=60).filter(lambda t: t.strip() != "")
_shards = itertools.count()
_name = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)


@settings(max_examples=80, deadline=None)
@given(
    text=_text,
    tags=st.lists(_name, max_size=3),
    branch=st.none() | _name,
    metadata=st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=3),
    ttl=st.none() | st.integers(min_value=1, max_value=10**6),
)
def test_export_lines_parse_back_to_the_same_memory(
    text: str, tags: list[str], branch: str | None, metadata: dict[str, object], ttl: int | None
) -> None:
    from masque.memory.shards import Memory, content_hash
    from masque.memory.transfer import parse_jsonl

    now = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc)
    original = Memory(
        id="mem_01M80BBDG7WPQE8PFE9SVC11WY",
        text=text,
        masque="codesmith",
        version="1.2.3",
        session_id="ses_1",
        branch=branch,
        tags=tuple(tags),
        actor="pat",
        created_at=now,
        expires_at=now + dt.timedelta(seconds=ttl) if ttl else None,
        content_hash=content_hash(text),
        metadata=metadata,
    )
    line = json.dumps(original.to_json(), ensure_ascii=False)

    (parsed,) = parse_jsonl([line], "dump.jsonl", None)

    assert parsed == original


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(branch=_name)
@pytest.mark.slow
def test_any_branch_name_filters_exactly(branch: str, tmp_path: Path) -> None:
    from masque import memory

    shard = f"props{next(_shards)}"  # examples share the test's home; each gets its own shard
    write_masque(tmp_path / "memory-masques", shard, "outsider")
    added = memory.add([f"memory on {branch!r}"], shard, branch=branch).ids
    memory.add(["memory on another branch"], shard, branch=branch + "x")

    listed = memory.list_memories(shard, filters=memory.Filters(branch=branch), limit=None)
    removed = memory.forget(shard, memory.Filters(branch=branch)).removed

    assert [m.id for m in listed] == list(added)
    assert removed == added
