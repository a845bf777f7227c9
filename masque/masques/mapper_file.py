"""The mapper file (`*.mapper.yaml`): schema and semantic checks, each problem at its file:line:col.

A mapper is not a masque, but it is a file people write and CI checks, so it lives beside the masque
file's loader and validator (this layer): `masque validate` reaches it through validate.CHECKED_FILES,
and `masque mapper put` (masque.feedback.mappers) loads through `load_mapper`, so both say the same.
"""

from __future__ import annotations

import re
from typing import Any

from masque.errors import UsageError, ValidationFailed
from masque.masques.diagnostics import Diagnostic, Severity
from masque.masques.loader import Document, LoadProblem, load_text

MAPPER_SUFFIX = ".mapper.yaml"
NAMESPACES = ("traits", "time", "context")
TIME_FIELDS = ("hour", "minute", "weekday", "weekday_num", "month", "day", "date")
OPS_WITHOUT_VALUE = ("exists", "not_exists")
DEFAULT_FEEDBACK_SETTINGS: dict[str, Any] = {
    "learning_rate": 0.1,
    "min_weight": 0.0,
    "max_weight": 10.0,
    "min_feedback_count": 1,
}
# `${traits.focus.level}`: only the braced form, a namespace and a dotted path; `$$` is a literal `$`.
PLACEHOLDER = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*)\}")


def settings(doc: dict[str, Any]) -> dict[str, Any]:
    """feedback_settings with the defaults filled in."""
    return {**DEFAULT_FEEDBACK_SETTINGS, **(doc.get("feedback_settings") or {})}


def check_mapper_file(path: str, text: str) -> tuple[list[Diagnostic], None]:
    """The validate.py hook for `*.mapper.yaml`: every problem (a mapper has no masque model)."""
    try:
        doc = load_text(path, text)
    except LoadProblem as problem:
        return [problem.diagnostic], None
    return check_mapper_document(doc), None


def check_mapper_document(doc: Document) -> list[Diagnostic]:
    from masque.masques import schema

    errors = schema.check(doc, "mapper")
    if errors is not None:
        return errors
    return _semantics(doc)


def load_mapper(path: str, text: str) -> tuple[dict[str, Any], list[Diagnostic]]:
    """The mapper document and its warnings; ValidationFailed naming the first error's file:line:col."""
    diags, _ = check_mapper_file(path, text)
    errors = sorted((d for d in diags if d.severity is Severity.ERROR), key=lambda d: (d.line or 0, d.col or 0))
    if errors:
        first = errors[0]
        where = f"{first.path}:{first.line}:{first.col}" if first.line else first.path
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValidationFailed(
            f"{where}: {first.json_path}: {first.message}{more}",
            hint=f"`masque validate {path}` lists every problem",
        )
    return dict(load_text(path, text).data), diags


def _semantics(doc: Document) -> list[Diagnostic]:
    data = doc.data
    out: list[Diagnostic] = []
    fs = settings(data)
    low, high = fs["min_weight"], fs["max_weight"]
    if low > high:
        out.append(
            doc.diagnostic(
                ("feedback_settings", "min_weight"),
                "weight-bounds",
                f"min_weight {low} is above max_weight {high}; feedback could not move any weight",
            )
        )
    seen: dict[str, int] = {}
    for i, rule in enumerate(data["rules"]):
        rid = rule["id"]
        if rid in seen:
            out.append(
                doc.diagnostic(
                    ("rules", i, "id"),
                    "duplicate-rule",
                    f"rule id {rid!r} is already used by rules[{seen[rid]}]; feedback names rules by id",
                )
            )
        seen.setdefault(rid, i)
        if low <= high and not low <= rule["weight"] <= high:
            out.append(
                doc.diagnostic(
                    ("rules", i, "weight"),
                    "weight-out-of-bounds",
                    f"weight {rule['weight']} is outside [{low}, {high}]; the first feedback will clamp it",
                    Severity.WARNING,
                )
            )
        out += _group(doc, rule["conditions"], ("rules", i, "conditions"))
        for j, action in enumerate(rule["actions"]):
            spec = action["generate_suggestion"]
            for key in ("template", "detail"):
                if key in spec:
                    out += _template(doc, spec[key], ("rules", i, "actions", j, "generate_suggestion", key))
    return out


def _group(doc: Document, group: dict[str, Any], at: tuple[str | int, ...]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for key, items in group.items():
        for k, item in enumerate(items):
            where = (*at, key, k)
            if "field" in item:
                out += _test(doc, item, where)
            else:
                out += _group(doc, item, where)
    return out


def _test(doc: Document, test: dict[str, Any], at: tuple[str | int, ...]) -> list[Diagnostic]:
    op, field = test["op"], test["field"]
    namespace, _, rest = field.partition(".")
    if namespace == "time" and rest not in TIME_FIELDS:
        return [
            doc.diagnostic((*at, "field"), "unknown-time-field", f"{field!r}: time fields are {', '.join(TIME_FIELDS)}")
        ]
    if op in OPS_WITHOUT_VALUE:
        if "value" in test:
            return [doc.diagnostic((*at, "value"), "unused-value", f"{op} takes no value", Severity.WARNING)]
        return []
    if "value" not in test:
        return [doc.diagnostic((*at, "op"), "missing-value", f"{op} needs a value to compare {field} with")]
    value = test["value"]
    if op == "in" and not isinstance(value, list):
        return [doc.diagnostic((*at, "value"), "in-needs-list", "in needs a list of values, e.g. [a, b]")]
    if op in ("greater", "less") and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
        return [doc.diagnostic((*at, "value"), "bad-compare", f"{op} compares with a number or a string")]
    if op == "matches":
        if not isinstance(value, str):
            return [doc.diagnostic((*at, "value"), "bad-regex", "matches needs a regular expression string")]
        from masque.masques.dialect import compile_regex

        try:
            compile_regex(value)
        except UsageError as exc:
            return [doc.diagnostic((*at, "value"), "bad-regex", str(exc))]
    return []


def _template(doc: Document, text: str, at: tuple[str | int, ...]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for found in PLACEHOLDER.finditer(text):
        namespace, _, rest = found["name"].partition(".")
        if namespace not in NAMESPACES or not rest:
            out.append(
                doc.diagnostic(
                    at,
                    "unknown-placeholder",
                    f"${{{found['name']}}}: placeholders are ${{traits.NAME}}, ${{time.FIELD}} or ${{context.PATH}}",
                )
            )
        elif namespace == "time" and rest not in TIME_FIELDS:
            out.append(
                doc.diagnostic(
                    at, "unknown-placeholder", f"${{{found['name']}}}: time fields are {', '.join(TIME_FIELDS)}"
                )
            )
    return out
