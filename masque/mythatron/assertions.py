"""promptfoo-style assertions on an answer: contains, notContains, icontains, regex, startsWith, equals,
maxLength, isJson - any of them negatable.

Two spellings, both from promptfoo's world: the short form `{"contains": "strength"}` (negated as
`{"notContains": ...}` or with `"not": true`) and the long form `{"type": "regex", "value": "^#",
"not": true}` (negated also as `"type": "not-regex"`). Each evaluation returns a result with a reason a
person can act on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from masque.errors import UsageError
from masque.masques.dialect import compile_regex


class Op(str, Enum):
    CONTAINS = "contains"
    ICONTAINS = "icontains"
    REGEX = "regex"
    STARTS_WITH = "startsWith"
    EQUALS = "equals"
    MAX_LENGTH = "maxLength"
    IS_JSON = "isJson"


_BY_NAME = {op.value.casefold(): op for op in Op}
_BY_NAME.update({"starts-with": Op.STARTS_WITH, "max-length": Op.MAX_LENGTH, "is-json": Op.IS_JSON})


@dataclass(frozen=True)
class Assertion:
    op: Op
    value: Any = None
    negate: bool = False
    description: str | None = None

    def label(self) -> str:
        name = ("not" + self.op.value[0].upper() + self.op.value[1:]) if self.negate else self.op.value
        return name if self.op is Op.IS_JSON else f"{name} {self.value!r}"


@dataclass(frozen=True)
class AssertionResult:
    assertion: Assertion
    passed: bool
    reason: str


def _op(name: str) -> tuple[Op, bool]:
    """`notContains` / `not-contains` / `contains` -> (Op, negated)."""
    negate = False
    key = name
    if key.startswith("not-"):
        key, negate = key[4:], True
    elif key.startswith("not") and key[3:4].isupper():
        key, negate = key[3:], True
    op = _BY_NAME.get(key.casefold())
    if op is None:
        known = ", ".join(o.value for o in Op)
        raise UsageError(f"unknown assertion {name!r}; use one of {known} (any may be prefixed with not)")
    return op, negate


def parse(raw: Mapping[str, Any]) -> Assertion:
    """One assertion in either spelling -> Assertion. Raises UsageError for malformed ones."""
    description = raw.get("description")
    flip = bool(raw.get("not", False))
    if "type" in raw:
        op, negate = _op(str(raw["type"]))
        value = raw.get("value")
    else:
        keys = [k for k in raw if k not in ("not", "description")]
        if len(keys) != 1:
            raise UsageError(f"an assertion holds exactly one operator, got {keys or 'none'}: {dict(raw)!r}")
        op, negate = _op(keys[0])
        value = raw[keys[0]]
    if op is Op.IS_JSON:
        # `{"isJson": false}` asks for "not JSON"; the long form takes no value.
        if value is False:
            negate = not negate
        value = None
    elif op is Op.MAX_LENGTH:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"maxLength needs a non-negative integer, got {value!r}")
    elif not isinstance(value, str):
        raise UsageError(f"{op.value} needs a text value, got {value!r}")
    return Assertion(op, value, negate != flip, description if isinstance(description, str) else None)


# A regex assertion is written by whoever wrote the mask and judged against model output, so a pattern
# like `^(a+)+$` must not backtrack forever. The `regex` package (re-compatible syntax) checks a
# deadline while it matches; past it the assertion fails with a reason, whatever its negation.
REGEX_TIMEOUT_SECONDS = 2.0


class _GaveUp(Exception):
    """A matcher hit its deadline; the message says which pattern and what to do."""


def _search(pattern: str, output: str) -> Any:
    try:
        return compile_regex(pattern).search(output, timeout=REGEX_TIMEOUT_SECONDS)
    except TimeoutError:
        raise _GaveUp(
            f"/{pattern}/ gave up after {REGEX_TIMEOUT_SECONDS:g} s on {len(output):,} characters of output: "
            "the pattern backtracks catastrophically (nested quantifiers such as (a+)+); simplify it"
        ) from None


def _clip(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= width else flat[: width - 1] + "…")


def _positive(a: Assertion, output: str) -> tuple[bool, str]:
    """(holds, why) for the un-negated operator."""
    if a.op is Op.CONTAINS:
        return (
            a.value in output,
            f"output {'contains' if a.value in output else 'does not contain'} {a.value!r}",
        )
    if a.op is Op.ICONTAINS:
        found = a.value.casefold() in output.casefold()
        return found, f"output {'contains' if found else 'does not contain'} {a.value!r} (ignoring case)"
    if a.op is Op.REGEX:
        match = _search(a.value, output)
        if match:
            return True, f"/{a.value}/ matches {_clip(match.group(0))}"
        return False, f"/{a.value}/ matches nowhere in the output"
    if a.op is Op.STARTS_WITH:
        head = output.lstrip()
        ok = head.startswith(a.value)
        return (
            ok,
            f"output {'starts' if ok else 'does not start'} with {a.value!r} (it starts {_clip(head, 30)})",
        )
    if a.op is Op.EQUALS:
        ok = output.strip() == a.value.strip()
        return (
            ok,
            "output equals the expected text" if ok else f"output {_clip(output)} differs from {_clip(a.value)}",
        )
    if a.op is Op.MAX_LENGTH:
        ok = len(output) <= a.value
        return ok, f"output is {len(output)} characters ({'within' if ok else 'over'} the limit of {a.value})"
    try:
        json.loads(output)
    except ValueError as exc:
        return False, f"output is not JSON ({exc})"
    return True, "output is valid JSON"


def evaluate(a: Assertion, output: str) -> AssertionResult:
    try:
        holds, why = _positive(a, output)
    except _GaveUp as exc:  # fails negated or not: an answer that was never judged never passes
        return AssertionResult(a, False, str(exc))
    passed = holds != a.negate
    if a.negate:
        why = f"negated: {why}"
    return AssertionResult(a, passed, why)


def check(raw: Mapping[str, Any], output: str) -> AssertionResult:
    """Parse and evaluate one raw assertion."""
    return evaluate(parse(raw), output)
