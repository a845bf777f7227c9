"""Problems found in files, as values, and the reporters that render them (text, json, github)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

# Every code `masque validate` can emit (documented in docs/masques.md; tests produce each one).
DIAGNOSTIC_CODES: dict[str, str] = {
    "unreadable": "the file cannot be read",
    "file-too-large": "over [limits] max_file_bytes (default 1 MiB)",
    "binary-file": "NUL bytes: not a text file",
    "not-utf8": "bytes that are not UTF-8 (UTF-16 with a BOM is accepted)",
    "empty-file": "nothing but whitespace or comments",
    "yaml-syntax": "the YAML does not parse",
    "yaml-tag": "an explicit tag other than the YAML 1.2 core ones",
    "number-too-long": "an integer with more digits than Python converts (4,300)",
    "duplicate-key": "a key repeated in one mapping",
    "multiple-documents": "more than one YAML document",
    "root-not-mapping": "the top level is a list or a scalar",
    "alias-bomb": "anchors/aliases expand past [limits] max_nodes",
    "recursive-alias": "an alias inside its own anchor",
    "too-deep": "nesting past [limits] max_depth (or past the 1000 levels newer libyaml allows)",
    "schema-<keyword>": "a JSON Schema rule failed (schema-required, schema-enum, schema-pattern, ...)",
    "ttl-invalid": "access.ttl is not an ISO 8601 duration",
    "ttl-not-positive": "access.ttl is zero",
    "ttl-too-long": "access.ttl over [limits] max_ttl_seconds (default 12 h)",
    "intent-empty-pattern": "a blank intent pattern",
    "intent-conflict": "one pattern both allowed and denied",
    "intent-duplicate": "warning: a pattern listed twice",
    "intent-shadowed": "warning: a denied pattern matches every allowed intent",
    "knowledge-uri": "an mcp:// pointer with user, port, query or fragment",
    "knowledge-duplicate": "warning: a pointer listed twice",
    "skill-uri": "a malformed skill:// URI",
    "skill-duplicate": "warning: a skill claimed twice",
    "extends-ref": "extends names the masque itself",
    "extends-missing": "the pinned parent is not next to the file nor on the search path",
    "extends-cycle": "the extends chain loops",
    "attributes-key": "a non-string attribute key",
    "file-name": "warning: the file is not named <lowercase-name>.masque.yaml",
    "duplicate-index": "two files checked together share an index",
    "duplicate-ref": "two files checked together share name@version",
}


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


def json_path(parts: Sequence[str | int]) -> str:
    """`("intent", "allowed", 1)` -> `$.intent.allowed[1]`."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


@dataclass(frozen=True)
class Diagnostic:
    """One problem. `line`/`col` are 1-based; None when the problem concerns the whole file."""

    path: str
    code: str
    message: str
    severity: Severity = Severity.ERROR
    line: int | None = None
    col: int | None = None
    json_path: str = "$"

    def as_error(self) -> Diagnostic:
        return Diagnostic(self.path, self.code, self.message, Severity.ERROR, self.line, self.col, self.json_path)

    def to_json(self) -> dict[str, object]:
        return {
            "line": self.line,
            "col": self.col,
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "json_path": self.json_path,
        }


@dataclass
class FileResult:
    """Everything found in one file; `masque` is the built model when the file is valid."""

    path: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    masque: object | None = None

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity is Severity.WARNING)

    @property
    def valid(self) -> bool:
        return self.errors == 0


@dataclass
class Report:
    files: list[FileResult]

    @property
    def errors(self) -> int:
        return sum(f.errors for f in self.files)

    @property
    def warnings(self) -> int:
        return sum(f.warnings for f in self.files)

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def summary(self) -> dict[str, int]:
        valid = sum(1 for f in self.files if f.valid)
        return {
            "files": len(self.files),
            "valid": valid,
            "invalid": len(self.files) - valid,
            "errors": self.errors,
            "warnings": self.warnings,
        }


def _sorted(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    return sorted(diags, key=lambda d: (d.line or 0, d.col or 0, d.code))


def render_text(report: Report, *, verbose: bool = False) -> str:
    """`path:line:col: severity[code] $.json.path: message`, then a one-line summary."""
    lines: list[str] = []
    for result in report.files:
        for d in _sorted(result.diagnostics):
            where = d.path if d.line is None else f"{d.path}:{d.line}:{d.col or 1}"
            lines.append(f"{where}: {d.severity.value}[{d.code}] {d.json_path}: {d.message}")
        if verbose and not result.diagnostics:
            lines.append(f"{result.path}: ok")
    s = report.summary()
    lines.append(
        f"{s['files']} file{'s' if s['files'] != 1 else ''} checked: {s['valid']} valid, "
        f"{s['invalid']} invalid ({s['errors']} error{'s' if s['errors'] != 1 else ''}, "
        f"{s['warnings']} warning{'s' if s['warnings'] != 1 else ''})"
    )
    return "\n".join(lines)


def render_json(report: Report, *, verbose: bool = False) -> str:
    payload = {
        "files": [
            {
                "path": f.path,
                "valid": f.valid,
                "diagnostics": [d.to_json() for d in _sorted(f.diagnostics)],
            }
            for f in report.files
        ],
        "summary": report.summary(),
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)


def _gh_escape(text: str, *, prop: bool = False) -> str:
    # GitHub workflow command escaping (actions/toolkit: escapeData / escapeProperty).
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_github(report: Report, *, verbose: bool = False) -> str:
    """GitHub Actions workflow annotations, one per diagnostic."""
    lines: list[str] = []
    for result in report.files:
        for d in _sorted(result.diagnostics):
            props = [f"file={_gh_escape(d.path, prop=True)}"]
            if d.line is not None:
                props.append(f"line={d.line}")
                props.append(f"col={d.col or 1}")
            props.append(f"title={_gh_escape('masque ' + d.code, prop=True)}")
            message = _gh_escape(f"{d.json_path}: {d.message}")
            lines.append(f"::{d.severity.value} {','.join(props)}::{message}")
    s = report.summary()
    lines.append(f"{s['files']} files checked: {s['invalid']} invalid, {s['errors']} errors, {s['warnings']} warnings")
    return "\n".join(lines)


Renderer = Callable[..., str]
REPORTER_BY_NAME: dict[str, Renderer] = {
    "text": render_text,
    "json": render_json,
    "github": render_github,
}


def strict(diags: Sequence[Diagnostic]) -> list[Diagnostic]:
    """`--strict`: every warning becomes an error."""
    return [d.as_error() if d.severity is Severity.WARNING else d for d in diags]
