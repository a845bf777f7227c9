"""The packaged JSON Schemas and schema validation as diagnostics.

Valid files take the fast path: a validator compiled once by fastjsonschema answers yes/no in ~10 us.
Only files it rejects go through jsonschema, which lists every error with its path; positions come
from the document's node tree.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from masque import config
from masque.errors import NotFound, UsageError
from masque.masques.diagnostics import Diagnostic, json_path
from masque.masques.loader import Document

SCHEMA_FILES = {"masque": "masque.schema.yaml", "mask": "mask.schema.json", "mapper": "mapper.schema.yaml"}


def schema_path(which: str = "masque") -> Path:
    """The schema file: inside the installed wheel (`masque/_schemas`), else the source tree."""
    try:
        filename = SCHEMA_FILES[which]
    except KeyError:
        raise UsageError(f"unknown schema {which!r}; choose one of {', '.join(SCHEMA_FILES)}") from None
    # A plain path, not importlib.resources (~15 ms of imports on every `masque validate`): the
    # wheel installs as files, and the source tree keeps the schemas beside the package.
    here = Path(__file__).resolve().parent.parent  # the masque package
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
    """The compiled yes/no validator.

    fastjsonschema generates Python source from the schema; generating and compiling it costs ~35 ms,
    more than a short `masque validate` run needs for everything else. So the compiled code object is
    cached on disk (marshal, like a .pyc) under a key of the schema's bytes, the fastjsonschema version
    and the interpreter's cache tag; a missing or damaged cache is simply rebuilt.
    """
    import marshal
    import sys
    import zlib

    import fastjsonschema

    source = schema_path(which).read_bytes()
    # A cache key, not a security boundary: CRC-32 of the schema and generator version plus the
    # schema's length (hashlib's OpenSSL start-up alone costs ~2.5 ms).
    key = f"{zlib.crc32(source + fastjsonschema.VERSION.encode()):08x}{len(source):x}"
    cached = config.cache_dir() / f"validator-{which}-{key}.{sys.implementation.cache_tag}.bin"
    try:
        root, code = marshal.loads(cached.read_bytes())
        return _bind(root, code)
    except Exception:  # no cache yet, or a damaged one: build afresh
        pass
    import re

    text = fastjsonschema.compile_to_code(load_schema(which), formats=_FORMATS, use_default=False, use_formats=True)
    found = re.search(r"^def (\w+)\(", text, re.M)  # the root validator is generated first
    if found is None:  # pragma: no cover - fastjsonschema always generates one
        raise RuntimeError("fastjsonschema generated no validator function")
    code = compile(text, f"<masque {which} schema validator>", "exec")
    _write_atomically(cached, marshal.dumps((found[1], code)))
    return _bind(found[1], code)


def _bind(root: str, code: Any) -> Callable[[Any], Any]:
    import functools

    namespace: dict[str, Any] = {}
    exec(code, namespace)  # our own generated code, keyed by the schema's content hash
    return functools.partial(namespace[root], custom_formats=_FORMATS)


def _write_atomically(path: Path, data: bytes) -> None:
    import os
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs speed


def is_valid(data: Any, which: str = "masque") -> bool:
    return _fast_rejection(data, which) is None


def _fast_rejection(data: Any, which: str) -> str | None:
    """None when the fast validator accepts `data`, else its one-line reason."""
    import fastjsonschema

    try:
        fast_validator(which)(data)
    except fastjsonschema.JsonSchemaException as exc:
        return str(exc)
    return None


def check(doc: Document, which: str = "masque", *, verbose: bool = False) -> list[Diagnostic] | None:
    """None when `doc` is schema-valid, else its schema errors (never an empty list).

    The two validators are built to agree; should they ever not, the fast one's verdict stands and
    becomes a diagnostic, so a rejected file can never pass as valid with no error to show.
    """
    reason = _fast_rejection(doc.data, which)
    if reason is None:
        return None
    diagnostics = schema_diagnostics(doc, which, verbose=verbose)
    if not diagnostics:
        diagnostics = [doc.diagnostic((), "schema-rejected", reason)]
    return diagnostics


# An unescaped `$`: in a JSON Schema (ECMA-262) pattern it matches only at the very end of the string,
# but Python's `$` also matches before a trailing newline, so `name: "trap\n"` would pass. fastjsonschema
# rewrites every such `$` to `\Z`; the full validator does the same (with this very expression), so the
# two paths agree on every pattern.
_DOLLAR = re.compile(r"(?<!\\)\$")


@lru_cache(maxsize=64)
def ecma_pattern(pattern: str) -> re.Pattern[str]:
    """A schema `pattern` compiled for Python with ECMA's end-of-input meaning of `$`."""
    return re.compile(_DOLLAR.sub(r"\\Z", pattern))


def _pattern_keyword(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not ecma_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@lru_cache(maxsize=4)
def full_validator(which: str = "masque") -> Any:
    import jsonschema

    checker = jsonschema.FormatChecker(formats=())
    checker.checks("date-time")(is_datetime)
    base = jsonschema.validators.validator_for(load_schema(which))
    cls = jsonschema.validators.extend(base, {"pattern": _pattern_keyword})
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
