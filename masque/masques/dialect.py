"""The mask JSON dialect: `*.mask.json` -> the one internal `masque.model.Masque`.

A mask's prompt sections (persona, constraints, style guidelines, format) become the masque's lens. A
mask may carry `ring`, `intent`, `access` and `knowledge` like a masque; without them it takes ring
`player`, allows any intent (`*`) and mints no credential, and validation warns that it does so. The
mask-only fields (domain, tone, prompt, ...) travel in `Masque.attributes` under their own names.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from masque.errors import UsageError
from masque.masques.diagnostics import Diagnostic, Severity
from masque.masques.inheritance import InheritanceError, render_lens, resolve
from masque.masques.loader import Document, LoadProblem, load_text
from masque.model import Access, Intent, Masque, Ring, Stage, collaboration_from_data, freeze

WARNING = Severity.WARNING
# Versions that start a history: they need no changelog entry; every later version is a bump.
INITIAL_VERSIONS = frozenset({"0.0.1", "0.1.0", "1.0.0"})
MASK_ATTRIBUTES = (
    "display_name",
    "domain",
    "tone",
    "skillset",
    "prompt",
    "default_llm",
    "max_context_tokens",
    "safety_tags",
    "capabilities",
    "changelog",
)
TEXT_OPERATORS = ("contains", "icontains", "regex", "startsWith", "equals")


def _diag(
    doc: Document, parts: tuple[str | int, ...], code: str, message: str, severity: Severity = Severity.ERROR
) -> Diagnostic:
    return doc.diagnostic(parts, code, message, severity)


def slug_of(mask_id: str) -> str:
    """`mask.base/professor` -> `professor` (the file stem)."""
    return mask_id.removeprefix("mask.").rsplit("/", 1)[-1]


def derived_index(mask_id: str) -> int:
    """A stable index for masks that do not set one (the masque model needs an integer >= 1)."""
    return 1_000_000_000 + zlib.crc32(mask_id.encode("utf-8")) % 1_000_000_000


def masque_from_mask(data: Mapping[str, Any]) -> Masque:
    """Build the model from schema-valid, inheritance-resolved mask data."""
    intent = data.get("intent")
    access = data.get("access")
    attributes: dict[str, Any] = {"dialect": "mask", "mask_name": data["name"]}
    attributes.update({k: data[k] for k in MASK_ATTRIBUTES if k in data})
    return Masque(
        # A family slash becomes a dot: `mask.base.professor` is a plain registry name (the registry
        # reads a slash in a ref as a directory), and safe in file and table names.
        name=str(data["id"]).replace("/", "."),
        index=int(data.get("index") or derived_index(data["id"])),
        version=data["version"],
        ring=Ring(data.get("ring", "player")),
        intent=(Intent(tuple(intent["allowed"]), tuple(intent.get("denied") or ())) if intent else Intent(("*",))),
        lens=render_lens(data.get("prompt") or {}),
        context=data.get("context"),
        knowledge=tuple(data.get("knowledge") or ()),
        access=Access(access.get("vault_role"), access.get("ttl", "session")) if access else None,
        attributes=freeze(attributes),
        extends=data.get("extends"),
        stage=Stage(data.get("stage", "live")),
        rubric=data.get("rubric"),
        tests=freeze(list(data.get("tests") or ())),
        collaboration=collaboration_from_data({"capabilities": data["capabilities"]})
        if data.get("capabilities")
        else None,
    )


def _semver(text: str) -> Any:
    import semver

    return semver.Version.parse(text)


def check_changelog(doc: Document, data: Mapping[str, Any]) -> Iterator[Diagnostic]:
    version = str(data["version"])
    entries = data.get("changelog") or []
    versions = [str(e.get("version")) for e in entries]
    current = _semver(version)
    for i, other in enumerate(versions):
        if _semver(other) > current:
            yield _diag(
                doc,
                ("changelog", i, "version"),
                "changelog-ahead",
                f"changelog entry {other} is newer than the mask's version {version}; bump `version` to match",
            )
        if other in versions[:i]:
            yield _diag(doc, ("changelog", i, "version"), "changelog-duplicate", f"{other} has two entries", WARNING)
    if version not in versions and version not in INITIAL_VERSIONS:
        yield _diag(
            doc,
            ("version",),
            "changelog-missing",
            f"version {version} has no changelog entry; add "
            f'{{"version": "{version}", "changes": "what changed"}} to `changelog`',
            WARNING,  # a record-keeping gap, not a broken mask (the seed's own example has none); --strict refuses it
        )


def _operators(assertion: Mapping[str, Any]) -> list[str]:
    return [k for k in assertion if k not in ("not", "description")]


def check_tests(doc: Document, data: Mapping[str, Any]) -> Iterator[Diagnostic]:
    names: dict[str, int] = {}
    for t, test in enumerate(data.get("tests") or []):
        if test["name"] in names:
            yield _diag(
                doc,
                ("tests", t, "name"),
                "test-duplicate",
                f"test name {test['name']!r} repeats test {names[test['name']]}; results would be ambiguous",
                WARNING,
            )
        names.setdefault(test["name"], t)
        for a, assertion in enumerate(test["assertions"]):
            where: tuple[str | int, ...] = ("tests", t, "assertions", a)
            if "type" not in assertion:
                ops = _operators(assertion)
                if len(ops) != 1:
                    yield _diag(
                        doc,
                        where,
                        "assertion-operators",
                        f"an assertion holds exactly one operator, found {len(ops)} ({', '.join(ops)}); "
                        "split it into several assertions",
                    )
                    continue
                op, value = ops[0], assertion[ops[0]]
            else:
                op, value = str(assertion["type"]), assertion.get("value")
            base = re.sub(r"^not-?", "", op)
            base = base[:1].lower() + base[1:]
            if base in TEXT_OPERATORS and not isinstance(value, str):
                yield _diag(doc, where, "assertion-value", f"{op} needs a text value, got {value!r}")
            elif base == "maxLength" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                yield _diag(doc, where, "assertion-value", f"{op} needs a non-negative integer, got {value!r}")
            elif base == "regex" and isinstance(value, str):
                try:
                    compile_regex(value)  # the very compiler the test runner matches with
                except UsageError as exc:
                    yield _diag(doc, where, "assertion-regex", str(exc))


def check_identity(doc: Document, data: Mapping[str, Any]) -> Iterator[Diagnostic]:
    expected = f"{slug_of(str(data['id']))}.mask.json"
    base = Path(doc.path).name
    if base != expected and not base.startswith((f"{slug_of(str(data['id']))}@", f"{slug_of(str(data['id']))}-")):
        yield _diag(
            doc,
            ("id",),
            "file-name",
            f"file is named {base!r}; mask {data['id']!r} lives in {expected!r}",
            WARNING,
        )


def check_resolved(doc: Document, flat: Mapping[str, Any]) -> Iterator[Diagnostic]:
    """Checks on the flattened mask (after `extends`), reported at the child's lines."""
    missing = [k for k in ("ring", "intent", "access") if k not in flat]
    if missing:
        defaults = {
            "ring": "takes ring player",
            "intent": "allows any intent (*)",
            "access": "mints no vault-role credential",
        }
        said = ", ".join(defaults[k] for k in missing)
        yield _diag(
            doc,
            ("id",),
            "mask-masque-defaults",
            f"worn as a masque this mask {said}; set {', '.join(missing)} to choose otherwise",
            WARNING,
        )
    prompt = flat.get("prompt") or {}
    if not str(prompt.get("persona") or "").strip():
        yield _diag(
            doc,
            ("prompt",),
            "mask-no-persona",
            "the mask has no prompt.persona (nor inherits one); write who the model is",
        )
    if not prompt.get("examples"):
        yield _diag(
            doc,
            ("prompt",),
            "mask-no-examples",
            "no prompt.examples: the offline provider has nothing to answer from and LLMs get no few-shot",
            WARNING,
        )


def check_mask_document(doc: Document) -> tuple[list[Diagnostic], Masque | None]:
    """Schema, semantics and inheritance for a parsed mask document."""
    from masque.masques import schema

    errors = schema.check(doc, "mask")
    if errors is not None:
        return errors, None
    data = doc.data
    diags: list[Diagnostic] = []
    diags.extend(check_changelog(doc, data))
    diags.extend(check_tests(doc, data))
    diags.extend(check_identity(doc, data))
    try:
        flat = resolve(data, doc.path).data
    except InheritanceError as exc:
        diags.append(_diag(doc, ("extends",), exc.code, str(exc)))
        return diags, None
    diags.extend(check_resolved(doc, flat))
    if any(d.severity is Severity.ERROR for d in diags):
        return diags, None
    return diags, masque_from_mask(flat)


def check_mask_file(path: str, text: str) -> tuple[list[Diagnostic], Masque | None]:
    """The validate.py dialect hook for `*.mask.json`: every problem, and the model when valid."""
    try:
        doc = load_text(path, text)
    except LoadProblem as problem:
        return [problem.diagnostic], None
    return check_mask_document(doc)


@lru_cache(maxsize=256)
def compile_regex(pattern: str) -> Any:
    """`pattern` compiled by the `regex` package; UsageError when it does not compile."""
    import regex

    try:
        return regex.compile(pattern)
    except regex.error as exc:
        raise UsageError(f"regex {pattern!r} does not compile: {exc}") from None
