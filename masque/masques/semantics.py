"""Checks the schema cannot express, run on schema-valid data. Each returns diagnostics."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from masque.config import Limits
from masque.masques.diagnostics import Diagnostic, Severity
from masque.masques.loader import Document

WARNING = Severity.WARNING


def _diag(
    doc: Document, parts: tuple[str | int, ...], code: str, message: str, severity: Severity = Severity.ERROR
) -> Diagnostic:
    return doc.diagnostic(parts, code, message, severity)


def ttl_seconds(text: str) -> float:
    """Seconds in an ISO 8601 duration; months and years count as 30 and 365 days. Raises ValueError."""
    import isodate

    value = isodate.parse_duration(text)
    if isinstance(value, isodate.Duration):
        days = float(value.years) * 365 + float(value.months) * 30
        return days * 86400 + value.tdelta.total_seconds()
    return float(value.total_seconds())


def check_ttl(doc: Document, data: dict[str, Any], lim: Limits) -> Iterator[Diagnostic]:
    access = data.get("access") or {}
    ttl = access.get("ttl")
    if not isinstance(ttl, str) or ttl == "session":
        return
    where = ("access", "ttl")
    try:
        seconds = ttl_seconds(ttl)
    except (ValueError, ArithmeticError) as exc:
        yield _diag(doc, where, "ttl-invalid", f"{ttl!r} is not an ISO 8601 duration ({exc}); use e.g. PT8H")
        return
    if seconds <= 0:
        yield _diag(doc, where, "ttl-not-positive", f"{ttl!r} is not a positive duration")
    elif seconds > lim.max_ttl_seconds:
        yield _diag(
            doc,
            where,
            "ttl-too-long",
            f"{ttl!r} exceeds the maximum of {lim.max_ttl_seconds // 3600:g} h "
            "(raise [limits] max_ttl_seconds in masque.toml to allow it)",
        )


def _norm(pattern: str) -> str:
    from masque.masques.intent import normalize

    return normalize(pattern)


@lru_cache(maxsize=1024)
def _star_only_regex(denied: str) -> re.Pattern[str] | None:
    if any(ch in denied for ch in "?["):
        return None
    return re.compile(".*".join(re.escape(part) for part in denied.split("*")), re.S)


def _shadows(denied: str, allowed: str) -> bool:
    """True when every intent matching `allowed` surely matches `denied` (conservative).

    Only for denied globs made of literals and `*`: then matching the allowed pattern's own text
    means each of its wildcards is swallowed by a `*` and so is every string it could match.
    """
    regex = _star_only_regex(denied)
    return regex is not None and "[" not in allowed and regex.fullmatch(allowed) is not None


def check_intent(doc: Document, data: dict[str, Any]) -> Iterator[Diagnostic]:
    intent = data.get("intent") or {}
    seen: dict[str, dict[str, int]] = {"allowed": {}, "denied": {}}
    for side in ("allowed", "denied"):
        for i, pattern in enumerate(intent.get(side) or []):
            where = ("intent", side, i)
            normal = _norm(pattern)
            if not normal:
                yield _diag(doc, where, "intent-empty-pattern", "pattern is blank; remove it or write a glob")
                continue
            if normal in seen[side]:
                yield _diag(doc, where, "intent-duplicate", f"{pattern!r} repeats item {seen[side][normal]}", WARNING)
                continue
            seen[side][normal] = i
    for normal, i in seen["denied"].items():
        if normal in seen["allowed"]:
            yield _diag(
                doc,
                ("intent", "denied", i),
                "intent-conflict",
                f"{normal!r} is both allowed (item {seen['allowed'][normal]}) and denied; keep it in one list",
            )
    allowed = [a for a in seen["allowed"] if a not in seen["denied"]]
    for normal, i in seen["denied"].items():
        if allowed and all(_shadows(normal, a) for a in allowed):
            yield _diag(
                doc,
                ("intent", "denied", i),
                "intent-shadowed",
                f"denied pattern {normal!r} matches every allowed intent: nothing can ever be assumed",
                WARNING,
            )


_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


def check_uris(doc: Document, data: dict[str, Any]) -> Iterator[Diagnostic]:
    seen: set[str] = set()
    for i, uri in enumerate(data.get("knowledge") or []):
        where = ("knowledge", i)
        # The schema already pinned the form mcp://host[/path] with no '@' or ':' in the host.
        host, _, resource = uri.removeprefix("mcp://").partition("/")
        if "?" in resource or "#" in resource:
            yield _diag(
                doc,
                where,
                "knowledge-uri",
                f"{uri!r}: an MCP pointer is mcp://server/resource, without user, port, query or fragment",
            )
        elif not _HOST_RE.match(host) or "//" in f"/{resource}":
            yield _diag(doc, where, "knowledge-uri", f"{uri!r} is not a well-formed mcp://server/resource")
        if uri in seen:
            yield _diag(doc, where, "knowledge-duplicate", f"{uri!r} is listed twice", WARNING)
        seen.add(uri)
    skills: set[str] = set()
    for i, skill in enumerate(data.get("skills") or []):
        uri = skill["uri"]
        if "//" in uri.removeprefix("skill://") or uri.endswith("/"):
            yield _diag(doc, ("skills", i, "uri"), "skill-uri", f"{uri!r} is not a well-formed skill://domain/name")
        if uri in skills:
            yield _diag(doc, ("skills", i, "uri"), "skill-duplicate", f"skill {uri!r} is claimed twice", WARNING)
        skills.add(uri)


def check_identity(doc: Document, data: dict[str, Any]) -> Iterator[Diagnostic]:
    extends = data.get("extends")
    name = str(data.get("name", ""))
    if isinstance(extends, str):
        parent = extends.rsplit("@", 1)[0].rsplit("/", 1)[-1]
        if parent == name.casefold() and extends.rsplit("@", 1)[-1] == data.get("version"):
            yield _diag(doc, ("extends",), "extends-ref", f"{extends!r} refers to this masque itself")
    attributes = data.get("attributes")
    if isinstance(attributes, dict):
        for key in attributes:
            if not isinstance(key, str):
                yield _diag(
                    doc,
                    ("attributes",),
                    "attributes-key",
                    f"attribute key {key!r} must be a string; quote it",
                )
    expected = expected_file_name(name)
    base = Path(doc.path).name
    if base.endswith(".masque.yaml") and base != expected:
        yield _diag(
            doc,
            ("name",),
            "file-name",
            f"file is named {base!r}; a masque named {name!r} lives in {expected!r}",
            WARNING,
        )


def expected_file_name(name: str) -> str:
    return re.sub(r"[\s_]+", "-", name.strip().lower()) + ".masque.yaml"


def semantic_diagnostics(doc: Document, lim: Limits) -> list[Diagnostic]:
    data = doc.data
    out: list[Diagnostic] = []
    out.extend(check_ttl(doc, data, lim))
    out.extend(check_intent(doc, data))
    out.extend(check_uris(doc, data))
    out.extend(check_identity(doc, data))
    return out
