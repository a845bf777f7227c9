"""The fast validator and the full validator always agree, and the schema ships where users need it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from masque.masques import schema
from masque.masques.loader import load_file

BASE = load_file(Path(__file__).parent.parent / "personas" / "codesmith.masque.yaml").data

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from(["", "x", "1.0.0", "player", "mcp://a/b", "skill://a/b", "PT1H", "2026-01-15T10:30:00Z", "+"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["uri", "level", "a"]), children),
    max_leaves=6,
)
paths = st.sampled_from(
    [
        ("name",),
        ("index",),
        ("version",),
        ("ring",),
        ("stage",),
        ("intent", "allowed"),
        ("intent", "denied"),
        ("intent",),
        ("knowledge",),
        ("skills",),
        ("access", "ttl"),
        ("access", "vault_role"),
        ("performance", "score"),
        ("performance", "history"),
        ("lens",),
        ("extends",),
        ("unknown",),
    ]
)


def full_errors(data: Any) -> list[Any]:
    return list(schema.full_validator("masque").iter_errors(data))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(paths, json_values | st.just("<delete>")), min_size=1, max_size=3))
def test_fast_and_full_validators_agree(edits: list[tuple[tuple[str, ...], Any]]) -> None:
    data = copy.deepcopy(BASE)
    for path, value in edits:
        target = data
        for key in path[:-1]:
            target = target.setdefault(key, {}) if isinstance(target, dict) else {}
        if not isinstance(target, dict):
            continue
        if value == "<delete>":
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value
    assert schema.is_valid(data) == (full_errors(data) == [])


def test_shipped_schema_is_valid_draft_2020_12() -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema.load_schema("masque"))


def test_compiled_validator_is_cached_on_disk(isolated_env: Path, tmp_path: Path) -> None:
    schema.fast_validator.cache_clear()
    assert schema.is_valid(BASE)
    cached = list((tmp_path / "xdg-cache" / "masque").glob("validator-masque-*.bin"))
    assert len(cached) == 1
    good = cached[0].read_bytes()
    cached[0].write_bytes(b"this is not marshal data")  # a damaged cache is rebuilt, not fatal
    schema.fast_validator.cache_clear()
    assert schema.is_valid(BASE)
    assert not schema.is_valid({**BASE, "ring": "god"})
    assert cached[0].read_bytes() == good
