"""Mapper configurations in the store: every version kept, the highest current (seed 001 §5.3, §6.1).

Optimistic locking (seed 001 §3): a writer states the version it read; `write_version` checks, inside
its transaction, that it is still the current one and writes version+1, else raises `Conflict` (exit 6,
HTTP 409). The (id, version) primary key backs the check. `update` is the re-read-and-re-apply loop
for writers that compute a change from what they read.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from masque.durations import as_utc, utcnow
from masque.errors import Conflict, NotFound, UsageError
from masque.feedback import access
from masque.store import turns
from masque.store.events import record_event

if TYPE_CHECKING:
    import duckdb

    from masque.masques.diagnostics import Diagnostic
    from masque.trust.rings import Selection

T = TypeVar("T")
DEFAULT_ATTEMPTS = 5
_COLUMNS = "id, version, doc, declared, reason, actor, created_at"


@dataclass(frozen=True)
class MapperVersion:
    id: str
    version: int
    doc: Mapping[str, Any]
    declared: str  # metadata.version of the file
    reason: str
    actor: str
    created_at: dt.datetime

    def weights(self) -> dict[str, float]:
        return {str(r["id"]): float(r["weight"]) for r in self.doc.get("rules", ())}

    def to_json(self, *, with_doc: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "version": self.version,
            "declared_version": self.declared,
            "description": self.doc.get("metadata", {}).get("description"),
            "reason": self.reason,
            "actor": self.actor,
            "created_at": self.created_at.isoformat(),
            "weights": self.weights(),
        }
        if with_doc:
            out["doc"] = self.doc
        return out


@dataclass(frozen=True)
class PutResult:
    mapper: MapperVersion
    changed: bool  # False: the file equals the current version, nothing was written
    warnings: tuple[Diagnostic, ...] = ()


def _from_row(r: Any) -> MapperVersion:
    created = as_utc(r[6])
    assert created is not None
    return MapperVersion(str(r[0]), int(r[1]), json.loads(r[2]), str(r[3]), str(r[4]), str(r[5]), created)


def current(conn: duckdb.DuckDBPyConnection, mapper_id: str) -> MapperVersion:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM mappers WHERE id = ? ORDER BY version DESC LIMIT 1", [mapper_id]
    ).fetchone()
    if row is None:
        raise NotFound(
            f"no mapper {mapper_id!r}", hint="`masque mapper list` shows them; `masque mapper put FILE` adds one"
        )
    return _from_row(row)


def at_version(conn: duckdb.DuckDBPyConnection, mapper_id: str, version: int) -> MapperVersion:
    row = conn.execute(f"SELECT {_COLUMNS} FROM mappers WHERE id = ? AND version = ?", [mapper_id, version]).fetchone()
    if row is None:
        latest = current(conn, mapper_id)
        raise NotFound(
            f"mapper {mapper_id!r} has no version {version}",
            hint=f"versions run from 1 to {latest.version}; `masque mapper versions {mapper_id}`",
        )
    return _from_row(row)


def write_version(
    conn: duckdb.DuckDBPyConnection,
    mapper_id: str,
    expected: int,
    doc: Mapping[str, Any],
    reason: str,
    actor: str,
    payload: Mapping[str, Any] | None = None,
) -> MapperVersion:
    """Write version expected+1 if `expected` is still current (0: the mapper must not exist yet)."""
    import duckdb

    row = conn.execute("SELECT max(version) FROM mappers WHERE id = ?", [mapper_id]).fetchone()
    now_current = int(row[0]) if row and row[0] is not None else 0
    if now_current != expected:
        raise _conflict(mapper_id, expected, now_current)
    version = expected + 1
    created = utcnow()
    try:
        conn.execute(
            f"INSERT INTO mappers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [mapper_id, version, json.dumps(doc), str(doc["metadata"]["version"]), reason, actor, created],
        )
    except (duckdb.ConstraintException, duckdb.TransactionException):  # another connection inserted it first
        raise _conflict(mapper_id, expected, version) from None
    record_event(
        conn,
        "mapper_version_written",
        actor=actor,
        payload={"mapper": mapper_id, "version": version, "reason": reason, **(payload or {})},
    )
    return MapperVersion(mapper_id, version, dict(doc), str(doc["metadata"]["version"]), reason, actor, created)


def _conflict(mapper_id: str, expected: int, now_current: int) -> Conflict:
    return Conflict(
        f"mapper {mapper_id!r} is at version {now_current}, not {expected}: another writer updated it first",
        expected=expected,
        current=now_current,
        hint=f"re-read it (`masque mapper show {mapper_id}`) and apply your change again",
    )


def update(
    read: Callable[[], T], write: Callable[[T], MapperVersion | None], attempts: int = DEFAULT_ATTEMPTS
) -> tuple[MapperVersion | None, int]:
    """Re-read and re-apply on Conflict, at most `attempts` times; returns (result, conflicts seen)."""
    conflicts = 0
    while True:
        seen = read()
        try:
            return write(seen), conflicts
        except Conflict:
            conflicts += 1
            if conflicts >= attempts:
                raise


def put(path: Path, *, expect_version: int | None = None, selection: Selection | None = None) -> PutResult:
    """Validate a `*.mapper.yaml` file and store it as the mapper's next version (players and admins)."""
    from masque.config import limits
    from masque.files import read_regular
    from masque.masques.loader import decode
    from masque.masques.mapper_file import load_mapper

    lim = limits()
    try:
        raw = read_regular(path, lim.max_file_bytes)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}", hint="check the path") from None
    doc, diags = load_mapper(str(path), decode(str(path), raw, lim))
    return store_doc(doc, diags, source=str(path), expect_version=expect_version, selection=selection)


def put_doc(
    doc: Mapping[str, Any], *, expect_version: int | None = None, selection: Selection | None = None
) -> PutResult:
    """`put` for a document already parsed (a served request's JSON body): validated the same way."""
    from masque.masques.mapper_file import load_mapper

    source = "<request>"
    try:
        text = json.dumps(doc, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"the mapper is not plain JSON: {exc}") from None
    parsed, diags = load_mapper(source, text)  # JSON is YAML: the same schema and semantic checks
    return store_doc(parsed, diags, source=source, expect_version=expect_version, selection=selection)


def store_doc(
    doc: Mapping[str, Any],
    diags: Sequence[Diagnostic],
    *,
    source: str,
    expect_version: int | None,
    selection: Selection | None,
) -> PutResult:
    """Store a validated mapper document as its next version (players and admins; optimistic lock)."""
    mapper_id = str(doc["metadata"]["id"])
    turns.prepare()
    with turns.transaction() as conn:
        who = access.caller(conn, selection)
        access.check_mapper_writer(who, f"mapper put ({mapper_id})")
        try:
            latest: MapperVersion | None = current(conn, mapper_id)
        except NotFound:
            latest = None
        have = latest.version if latest else 0
        expected = have if expect_version is None else expect_version
        if latest is not None and expect_version is None and _same(latest.doc, doc):
            return PutResult(latest, False, tuple(diags))
        written = write_version(conn, mapper_id, expected, doc, "put", who.actor.name, {"file": source})
    return PutResult(written, True, tuple(diags))


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def list_mappers(*, selection: Selection | None = None) -> list[MapperVersion]:
    """The current version of every mapper."""
    turns.prepare()
    with turns.connect() as conn:
        access.caller(conn, selection)
        found = conn.execute(
            f"SELECT {_COLUMNS} FROM mappers m WHERE version = (SELECT max(version) FROM mappers WHERE id = m.id)"
            " ORDER BY id"
        ).fetchall()
    return [_from_row(r) for r in found]


def show(mapper_id: str, version: int | None = None, *, selection: Selection | None = None) -> MapperVersion:
    turns.prepare()
    with turns.connect() as conn:
        access.caller(conn, selection)
        return at_version(conn, mapper_id, version) if version is not None else current(conn, mapper_id)


def versions(mapper_id: str, *, selection: Selection | None = None) -> list[MapperVersion]:
    """Every version, oldest first."""
    turns.prepare()
    with turns.connect() as conn:
        access.caller(conn, selection)
        found = conn.execute(f"SELECT {_COLUMNS} FROM mappers WHERE id = ? ORDER BY version", [mapper_id]).fetchall()
        if not found:
            current(conn, mapper_id)  # raises NotFound with its hint
    return [_from_row(r) for r in found]
