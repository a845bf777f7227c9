"""The packaged JSON Schemas and schema validation as diagnostics.

Valid files take the fast path: a validator compiled once by fastjsonschema answers yes/no in ~10 us.
Only files it rejects go through jsonschema, which lists every error with its path; positions come
from the document's node tree.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from masque import config
from masque.diagnostics import Diagnostic, json_path
from masque.errors import NotFound, UsageError
from masque.loader import Document

SCHEMA_FILES = {"masque": "masque.schema.yaml", "mask": "mask.schema.json"}


def schema_path(which: str = "masque") -> Path:
    """The schema file: inside the installed wheel (`masque/_schemas`), else the source tree."""
    try:
        filename = SCHEMA_FILES[which]
    except KeyError:
        raise UsageError(f"unknown schema {which!r}; choose one of {', '.join(SCHEMA_FILES)}") from None
    # A plain path, not importlib.resources (~15 ms of imports on every `masque validate`): the
    # wheel installs as files, and the source tree keeps the schemas beside the package.
    here = Path(__file__).resolve().parent
    packaged = here / "_schemas" / filename
    if packaged.is_file():
        return packaged
    source = here.parent / "schemas" / filename
    if source.is_file():
        return source
    raise NotFound(f"schema {filename} is missing from the installation", hint="reinstall masque")


def schema_text(which: str = "masque", fmt: str = "yaml") -> str:
    path = schema_path(which)
    text = path.read_text(encoding="utf-8")
    if fmt == "json":
        return json.dumps(load_schema(which), indent=2) + "\n"
    if fmt != "yaml":
        raise UsageError(f"unknown --format {fmt!r}; choose yaml or json")
    return text


@lru_cache(maxsize=4)
def load_schema(which: str = "masque") -> dict[str, Any]:
    path = schema_path(which)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return dict(json.loads(text))
    import yaml

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return dict(yaml.load(text, Loader=loader))


def is_datetime(value: object) -> bool:
    """RFC 3339 date-time, as the schema's `format: date-time` means it (same check on both paths)."""
    if not isinstance(value, str):
        return True
    if len(value) < 20 or value[10] not in "Tt ":
        return False
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return parsed.tzinfo is not None


_FORMATS: dict[str, Callable[[object], bool]] = {"date-time": is_datetime}


@lru_cache(maxsize=4)
def fast_validator(which: str = "masque") -> Callable[[Any], Any]:
    """The compiled yes/no validator. Its generated source is cached on disk by schema hash, which
    saves ~25 ms (schema parse + code generation) on every short `masque validate` run."""
    import hashlib

    import fastjsonschema

    source = schema_path(which).read_bytes()
    key = hashlib.sha256(source + fastjsonschema.VERSION.encode()).hexdigest()[:16]
    cached = config.cache_dir() / f"validator-{which}-{key}.py"
    try:
        return _exec_validator(cached.read_text(encoding="utf-8"), str(cached))
    except Exception:  # no cache yet, or a damaged one: generate afresh
        pass
    code = fastjsonschema.compile_to_code(load_schema(which), formats=_FORMATS, use_default=False, use_formats=True)
    _write_atomically(cached, code)
    return _exec_validator(code, str(cached))


def _exec_validator(code: str, filename: str) -> Callable[[Any], Any]:
    import functools
    import re

    namespace: dict[str, Any] = {}
    exec(compile(code, filename, "exec"), namespace)  # our own generated code, keyed by content hash
    root = re.search(r"^def (\w+)\(", code, re.M)  # the root validator is generated first
    if root is None:
        raise KeyError("no validator function in generated code")
    return functools.partial(namespace[root[1]], custom_formats=_FORMATS)


def _write_atomically(path: Path, text: str) -> None:
    import os
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".py")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs speed


def is_valid(data: Any, which: str = "masque") -> bool:
    import fastjsonschema

    try:
        fast_validator(which)(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


@lru_cache(maxsize=4)
def full_validator(which: str = "masque") -> Any:
    import jsonschema

    checker = jsonschema.FormatChecker(formats=())
    checker.checks("date-time")(is_datetime)
    cls = jsonschema.validators.validator_for(load_schema(which))
    return cls(load_schema(which), format_checker=checker)


def _message(error: Any) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return f"{error.message}; allowed fields: {', '.join(allowed)}"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    if error.validator == "pattern":
        desc = error.schema.get("description")
        return f"{error.instance!r} does not match the expected form" + (f" ({desc})" if desc else "")
    if error.validator in ("enum", "const"):
        return f"{error.instance!r} is not one of {', '.join(map(repr, error.validator_value))}"
    return str(error.message)


def schema_diagnostics(doc: Document, which: str = "masque", *, verbose: bool = False) -> list[Diagnostic]:
    """Every schema error in `doc`, each at its line; for anyOf/oneOf the best sub-error."""
    from jsonschema.exceptions import best_match, relevance

    out: list[Diagnostic] = []
    errors = sorted(full_validator(which).iter_errors(doc.data), key=relevance)
    for error in errors:
        shown = error
        extra = ""
        if error.context:
            shown = best_match(error.context) or error
            if len(error.context) > 1 and not verbose:
                extra = f" ({len(error.context) - 1} more errors; use -v)"
        path = tuple(shown.absolute_path)
        if shown.validator == "additionalProperties" and isinstance(shown.instance, dict):
            known = shown.schema.get("properties", {})
            extras = [k for k in shown.instance if k not in known]
            if extras:  # point at the unexpected key itself, not at its parent
                path = (*path, extras[0])
        line, col = doc.position(path)
        out.append(
            Diagnostic(
                doc.path,
                f"schema-{shown.validator}",
                _message(shown) + extra,
                line=line,
                col=col,
                json_path=json_path(path),
            )
        )
    return out
