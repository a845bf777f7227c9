"""The rule engine (seed 001 §6.2): conditions over traits, time and context; weights; templates.

Pure functions over plain data: `evaluate` runs one mapper document against a `Facts` value and
returns the matches, best weight first. No store, no I/O, so it is cheap to property-test.

Operators: exists, not_exists, equals, not_equals, greater, less, contains, in, matches. A field that
is absent makes every operator but not_exists false (and not_equals false too: absence is not a value).
greater/less compare numbers with numbers and strings with strings; mixed types never match (no
"10" > 9 surprises). `matches` uses the `regex` package with a timeout, so a pattern written by whoever
wrote the mapper cannot hang the engine.

Templates are filled by `string.Template`-style `${namespace.path}` placeholders from a flat mapping of
the facts: no attribute access, no calls, no format specs (a template cannot reach anything but values).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from masque.masques.mapper_file import PLACEHOLDER

REGEX_TIMEOUT_SECONDS = 0.1
MISSING: Any = object()
OPERATORS = ("exists", "not_exists", "equals", "not_equals", "greater", "less", "contains", "in", "matches")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Facts:
    """What conditions read: flat `traits` (dotted names), the clock, and the caller's context."""

    traits: Mapping[str, Any] = field(default_factory=dict)
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    context: Mapping[str, Any] = field(default_factory=dict)

    def time_fields(self) -> dict[str, Any]:
        n = self.now
        return {
            "hour": n.hour,
            "minute": n.minute,
            "weekday": WEEKDAYS[n.weekday()],
            "weekday_num": n.isoweekday(),
            "month": n.month,
            "day": n.day,
            "date": n.date().isoformat(),
        }

    def lookup(self, name: str) -> Any:
        """The value of `traits.x`, `time.x` or `context.a.b`; MISSING when there is none."""
        namespace, _, rest = name.partition(".")
        if namespace == "traits":
            return self.traits.get(rest, MISSING)
        if namespace == "time":
            return self.time_fields().get(rest, MISSING)
        if namespace == "context":
            value: Any = self.context
            for part in rest.split("."):
                if isinstance(value, Mapping) and part in value:
                    value = value[part]
                elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                    value = value[int(part)]
                else:
                    return MISSING
            return value
        return MISSING


@dataclass(frozen=True)
class Match:
    """A rule whose conditions held, with its rendered suggestions and the values that decided it."""

    rule_id: str
    weight: float
    type: str
    text: str
    detail: str | None
    matched: tuple[tuple[str, str, Any], ...]  # (field, op, value seen) of each test that held

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "weight": self.weight,
            "type": self.type,
            "text": self.text,
            "detail": self.detail,
            "matched": [{"field": f, "op": o, "value": v} for f, o, v in self.matched],
        }


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _ordered(seen: Any, wanted: Any) -> bool:
    """May `seen` and `wanted` be compared with < and >? Numbers with numbers, strings with strings."""
    return (_number(seen) and _number(wanted)) or (isinstance(seen, str) and isinstance(wanted, str))


def _equal(seen: Any, wanted: Any) -> bool:
    if _number(seen) and _number(wanted):
        return bool(seen == wanted)
    return type(seen) is type(wanted) and bool(seen == wanted)


def apply_op(op: str, seen: Any, wanted: Any = None) -> bool:
    """One operator on one value (`seen` is MISSING when the field is absent)."""
    if op == "exists":
        return seen is not MISSING and seen is not None
    if op == "not_exists":
        return seen is MISSING or seen is None
    if seen is MISSING or seen is None:
        return False
    if op == "equals":
        return _equal(seen, wanted)
    if op == "not_equals":
        return not _equal(seen, wanted)
    if op == "greater":
        return _ordered(seen, wanted) and bool(seen > wanted)
    if op == "less":
        return _ordered(seen, wanted) and bool(seen < wanted)
    if op == "contains":
        if isinstance(seen, str):
            return isinstance(wanted, str) and wanted in seen
        if isinstance(seen, (list, tuple)):
            return any(_equal(item, wanted) for item in seen)
        if isinstance(seen, Mapping):
            return isinstance(wanted, str) and wanted in seen
        return False
    if op == "in":
        return isinstance(wanted, (list, tuple)) and any(_equal(seen, item) for item in wanted)
    if op == "matches":
        return isinstance(seen, str) and isinstance(wanted, str) and _search(wanted, seen)
    raise ValueError(f"unknown operator {op!r}; operators are {', '.join(OPERATORS)}")


def _search(pattern: str, text: str) -> bool:
    from masque.masques.dialect import compile_regex

    try:
        return compile_regex(pattern).search(text, timeout=REGEX_TIMEOUT_SECONDS) is not None
    except TimeoutError:
        return False  # a runaway pattern matches nothing rather than hanging the caller


def holds(group: Mapping[str, Any], facts: Facts, matched: list[tuple[str, str, Any]] | None = None) -> bool:
    """Does a condition group (`all`/`any`, nested) hold? Tests that held are appended to `matched`."""
    sink = matched if matched is not None else []
    if "field" in group:
        seen = facts.lookup(str(group["field"]))
        ok = apply_op(str(group["op"]), seen, group.get("value"))
        if ok:
            sink.append((str(group["field"]), str(group["op"]), None if seen is MISSING else seen))
        return ok
    if "all" in group:
        mark = len(sink)
        ok = all(holds(item, facts, sink) for item in group["all"])
        if not ok:
            del sink[mark:]
        return ok
    if "any" in group:
        return any([holds(item, facts, sink) for item in group["any"]])  # a list: record every test that held
    return False


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return str(value)


def render(template: str, facts: Facts) -> str:
    """Fill `${namespace.path}` placeholders; an unknown one stays as written, `$$` is a `$`."""

    def fill(found: Any) -> str:
        value = facts.lookup(found["name"])
        return found[0] if value is MISSING or value is None else _text(value)

    parts = template.split("$$")
    return "$".join(PLACEHOLDER.sub(fill, part) for part in parts)


def evaluate(doc: Mapping[str, Any], facts: Facts) -> list[Match]:
    """Every suggestion the mapper makes for `facts`, highest weight first (ties: file order).

    A rule with weight 0 or less generates nothing: feedback can switch a rule off by driving it down.
    """
    out: list[tuple[float, int, Match]] = []
    for order, rule in enumerate(doc.get("rules", ())):
        weight = float(rule["weight"])
        if weight <= 0:
            continue
        matched: list[tuple[str, str, Any]] = []
        if not holds(rule["conditions"], facts, matched):
            continue
        for action in rule["actions"]:
            spec = action["generate_suggestion"]
            detail = spec.get("detail")
            match = Match(
                rule_id=str(rule["id"]),
                weight=weight,
                type=str(spec["type"]),
                text=render(str(spec["template"]), facts),
                detail=render(str(detail), facts) if detail else None,
                matched=tuple(matched),
            )
            out.append((-weight, order, match))
    out.sort(key=lambda item: (item[0], item[1]))
    return [m for _, _, m in out]


def rule_ids(doc: Mapping[str, Any]) -> Sequence[str]:
    return [str(r["id"]) for r in doc.get("rules", ())]
