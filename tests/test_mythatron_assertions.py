"""Assertions: every operator, both spellings, negation, and properties that tie them to plain Python."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masque.errors import UsageError
from masque.mythatron import assertions as A

ANSWER = "### Theme Analysis\nThe strength of this chapter is its restraint."


@pytest.mark.parametrize(
    ("raw", "passed"),
    [
        ({"contains": "strength"}, True),
        ({"contains": "Strength"}, False),
        ({"notContains": "garbage"}, True),
        ({"notContains": "strength"}, False),
        ({"icontains": "STRENGTH"}, True),
        ({"notIcontains": "RESTRAINT"}, False),
        ({"regex": r"^### \w+"}, True),
        ({"regex": r"^Theme"}, False),
        ({"notRegex": r"garbage|trash"}, True),
        ({"startsWith": "### Theme"}, True),
        ({"startsWith": "Theme"}, False),
        ({"notStartsWith": "Theme"}, True),
        ({"equals": ANSWER + "\n  "}, True),  # surrounding whitespace is ignored
        ({"equals": "something else"}, False),
        ({"notEquals": "something else"}, True),
        ({"maxLength": len(ANSWER)}, True),
        ({"maxLength": len(ANSWER) - 1}, False),
        ({"notMaxLength": 10}, True),
        ({"isJson": True}, False),
        ({"isJson": False}, True),
        ({"notIsJson": True}, True),
        # long form, with `not` and with not- types
        ({"type": "contains", "value": "strength"}, True),
        ({"type": "contains", "value": "strength", "not": True}, False),
        ({"type": "not-contains", "value": "garbage"}, True),
        ({"type": "regex", "value": "^#", "not": True}, False),
        ({"type": "maxLength", "value": 5}, False),
        ({"type": "isJson"}, False),
        ({"type": "not-isJson"}, True),
        ({"type": "starts-with", "value": "###"}, True),
        # `not: true` on a not-operator negates twice
        ({"notContains": "strength", "not": True}, True),
    ],
)
def test_every_operator_and_its_negation(raw: dict[str, object], passed: bool) -> None:
    result = A.check(raw, ANSWER)
    assert result.passed is passed, result.reason
    assert result.reason  # every result says why


def test_is_json_accepts_json_answers() -> None:
    assert A.check({"isJson": True}, '{"cause": "late binding"}').passed
    assert not A.check({"isJson": True}, "{cause: late binding}").passed


def test_failure_reasons_say_what_was_found() -> None:
    assert "does not contain 'praise'" in A.check({"contains": "praise"}, ANSWER).reason
    assert "over the limit of 3" in A.check({"maxLength": 3}, ANSWER).reason
    assert A.check({"notContains": "strength"}, ANSWER).reason.startswith("negated:")
    assert A.parse({"notContains": "x"}).label() == "notContains 'x'"


@pytest.mark.parametrize(
    "raw",
    [
        {"contains": "a", "regex": "b"},  # two operators
        {"not": True},  # none
        {"sparkles": "x"},  # unknown
        {"maxLength": "ten"},
        {"maxLength": -1},
        {"contains": 3},
        {"type": "similar", "value": "x"},
    ],
)
def test_malformed_assertions_are_usage_errors(raw: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        A.parse(raw)


def test_a_regex_that_does_not_compile_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="does not compile"):
        A.check({"regex": "(unclosed"}, ANSWER)


text = st.text(max_size=40)


@settings(max_examples=200, deadline=None)
@given(output=text, needle=text)
def test_contains_matches_python_in_and_negation_flips(output: str, needle: str) -> None:
    assert A.check({"contains": needle}, output).passed is (needle in output)
    assert A.check({"notContains": needle}, output).passed is (needle not in output)
    assert A.check({"type": "contains", "value": needle, "not": True}, output).passed is (needle not in output)
    assert A.check({"icontains": needle}, output).passed is (needle.casefold() in output.casefold())


@settings(max_examples=200, deadline=None)
@given(output=text, limit=st.integers(min_value=0, max_value=60))
def test_max_length_and_its_negation_partition_answers(output: str, limit: int) -> None:
    short = A.check({"maxLength": limit}, output).passed
    assert short is (len(output) <= limit)
    assert A.check({"notMaxLength": limit}, output).passed is not short


@settings(max_examples=100, deadline=None)
@given(value=st.recursive(st.none() | st.booleans() | st.integers() | text, lambda c: st.lists(c, max_size=3)))
def test_is_json_accepts_every_json_document(value: object) -> None:
    assert A.check({"isJson": True}, json.dumps(value)).passed


@settings(max_examples=100, deadline=None)
@given(op=st.sampled_from(["contains", "icontains", "startsWith", "equals"]), value=text, negate=st.booleans())
def test_short_and_long_spellings_parse_to_the_same_assertion(op: str, value: str, negate: bool) -> None:
    short_key = ("not" + op[0].upper() + op[1:]) if negate else op
    long_form = {"type": op, "value": value, "not": negate}
    assert A.parse({short_key: value}) == A.parse(long_form)


@pytest.mark.parametrize("raw", [{"regex": "^(a|aa)+$"}, {"notRegex": "^(a|aa)+$"}])
def test_a_catastrophic_regex_fails_with_a_reason_instead_of_hanging(raw: dict[str, object]) -> None:
    result = A.check(raw, "a" * 40 + "!")
    assert not result.passed  # negated or not: an answer never judged never passes
    assert "gave up after" in result.reason and "backtracks catastrophically" in result.reason
