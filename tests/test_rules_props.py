"""The rule engine's operators, condition groups and templates, as properties (hypothesis)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from masque.feedback.rules import MISSING, OPERATORS, Facts, apply_op, evaluate, holds, render
from masque.masques.loader import load_text
from masque.masques.mapper_file import check_mapper_document

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4))
names = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)


@given(values)
def test_exists_and_not_exists_are_opposites(value: Any) -> None:
    assert apply_op("exists", value) is not apply_op("not_exists", value)


@given(st.sampled_from(OPERATORS), values)
def test_an_absent_field_satisfies_only_not_exists(op: str, wanted: Any) -> None:
    assert apply_op(op, MISSING, wanted) is (op == "not_exists")


@given(values, values)
def test_equals_and_not_equals_are_opposites_for_present_values(seen: Any, wanted: Any) -> None:
    if seen is None:
        return
    assert apply_op("equals", seen, wanted) is not apply_op("not_equals", seen, wanted)


@given(st.one_of(st.integers(), st.floats(allow_nan=False)), st.one_of(st.integers(), st.floats(allow_nan=False)))
def test_greater_and_less_order_numbers_strictly(a: float, b: float) -> None:
    assert apply_op("greater", a, b) is (a > b)
    assert apply_op("less", a, b) is (a < b)
    assert not (apply_op("greater", a, b) and apply_op("less", a, b))


@given(st.integers(), st.text(max_size=5))
def test_mixed_types_never_compare(n: int, s: str) -> None:
    for op in ("greater", "less", "equals"):
        assert not apply_op(op, n, s)
        assert not apply_op(op, s, n)
    assert not apply_op("equals", True, 1)  # a bool is not a number here


@given(st.lists(st.integers(-5, 5), max_size=6), st.integers(-5, 5))
def test_in_and_contains_mirror_each_other(items: list[int], x: int) -> None:
    assert apply_op("in", x, items) is (x in items)
    assert apply_op("contains", items, x) is (x in items)


@given(st.text(max_size=20), st.text(max_size=4))
def test_contains_on_text_is_substring(text: str, part: str) -> None:
    assert apply_op("contains", text, part) is (part in text)


def test_matches_is_a_regex_search_and_a_runaway_pattern_matches_nothing() -> None:
    assert apply_op("matches", "review the parser", r"^review\b")
    assert not apply_op("matches", "please review", r"^review")
    assert not apply_op("matches", "a" * 40 + "!", r"^(a+)+$")  # catastrophic backtracking: timed out, no match
    assert not apply_op("matches", 42, r"4")  # numbers are not text


leaves = st.builds(
    lambda name, op, v: {"field": f"context.{name}", "op": op, "value": v},
    names,
    st.sampled_from(["equals", "not_equals", "exists", "not_exists", "greater", "less"]),
    st.integers(0, 3),
)
groups = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(inner, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=3)),
    ),
    max_leaves=8,
)


def _truth(group: dict[str, Any], facts: Facts) -> bool:
    """A second, obviously-correct reading of all/any."""
    if "field" in group:
        return apply_op(group["op"], facts.lookup(group["field"]), group.get("value"))
    if "all" in group:
        return all(_truth(g, facts) for g in group["all"])
    return any(_truth(g, facts) for g in group["any"])


@settings(max_examples=200)
@given(groups, st.dictionaries(names, st.integers(0, 3), max_size=4))
def test_nested_groups_follow_boolean_logic(group: dict[str, Any], context: dict[str, int]) -> None:
    facts = Facts(context=context)
    wrapped = group if "field" not in group else {"all": [group]}
    matched: list[tuple[str, str, Any]] = []
    assert holds(wrapped, facts, matched) is _truth(wrapped, facts)
    if not _truth(wrapped, facts):
        assert matched == []  # a failed group reports no reasons


@settings(max_examples=100)
@given(groups)
def test_generated_conditions_are_accepted_by_the_schema(group: dict[str, Any]) -> None:
    import json

    wrapped = group if "field" not in group else {"all": [group]}
    doc = {
        "metadata": {"id": "gen", "version": "1.0.0"},
        "rules": [
            {
                "id": "r",
                "conditions": wrapped,
                "actions": [{"generate_suggestion": {"type": "t", "template": "x"}}],
                "weight": 1,
            }
        ],
    }
    diags = check_mapper_document(load_text("gen.mapper.yaml", json.dumps(doc)))
    assert [d for d in diags if d.severity.value == "error"] == []


@given(st.text(alphabet=st.characters(blacklist_characters="${}"), max_size=20), st.integers(0, 23))
def test_templates_fill_known_placeholders_and_keep_the_rest(text: str, hour: int) -> None:
    facts = Facts(traits={"x": "X"}, now=dt.datetime(2026, 12, 1, hour, tzinfo=dt.timezone.utc))
    assert render(text, facts) == text
    assert render(f"{text}${{time.hour}}", facts) == f"{text}{hour}"
    assert render("${traits.x} ${traits.nope} $${traits.x}", facts) == "X ${traits.nope} ${traits.x}"


def test_templates_cannot_reach_attributes_or_call_anything() -> None:
    facts = Facts(traits={"x": "v"})
    assert (
        render("{traits.x.__class__} ${traits.x.__class__} {0}", facts)
        == "{traits.x.__class__} ${traits.x.__class__} {0}"
    )


@given(st.lists(st.floats(0.01, 10), min_size=1, max_size=6))
def test_suggestions_come_highest_weight_first_and_zero_weight_rules_are_off(weights: list[float]) -> None:
    rules = [
        {
            "id": f"r{i}",
            "conditions": {"all": []},
            "weight": w,
            "actions": [{"generate_suggestion": {"type": "t", "template": f"s{i}"}}],
        }
        for i, w in enumerate([*weights, 0.0])
    ]
    found = evaluate({"rules": rules}, Facts())
    assert [m.weight for m in found] == sorted(weights, reverse=True)
    assert f"s{len(weights)}" not in {m.text for m in found}
