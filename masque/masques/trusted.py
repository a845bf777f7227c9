"""Trusted definitions: each name@version is bound to the content it was first worn with (TOFU).

Like SSH's known_hosts: the first *granted* `assume` of a name@version records the content hash and
path of the file it used (`trusted_definitions`, migration 5). From then on only files with that hash
are used for it; a different file claiming the same name@version is refused (exit 3,
`definition_mismatch`) until an admin re-pins it with `masque registry pin` (`pin` below). `check`,
`show` and `list` never register anything.

The content hash is the SHA-256 of the file's bytes (`sha256sum` shows the same), or for a masque
with `extends` the SHA-256 of its flattened definition, so that a changed parent changes it too.

The store is the authority (assume reads the pins in its own transaction). Every change also rewrites
a small JSON copy next to it (`config.pins_path()`, under the same turn), so `masque check`, `show`
and `list` can compare without importing DuckDB; a missing or damaged copy makes them only as strict
as an empty pin table, never `assume`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from masque import config
from masque.errors import NotFound, Refused, UsageError
from masque.model import Ring

if TYPE_CHECKING:
    from pathlib import Path

    import duckdb

    from masque.masques.registry import Entry, Resolved
    from masque.trust.rings import Selection

FIRST_USE = "first_use"
ADMIN = "admin"
_COLUMNS = "masque, version, content_hash, source_path, pinned_by, pinned_at, via"


class DefinitionRefused(Refused):
    """A name@version whose only claimants differ from its trusted definition, or disagree unpinned."""

    def __init__(self, message: str, *, reason: str, hint: str, key: str, version: str, paths: tuple[str, ...]) -> None:
        super().__init__(message, reason=reason, hint=hint)
        self.key = key
        self.version = version
        self.paths = paths  # the pinned file first (when pinned), then every claimant


@dataclass(frozen=True)
class Pin:
    """The trusted definition of one name@version."""

    masque: str  # registry key (case-folded name)
    version: str
    content_hash: str
    source_path: str
    pinned_by: str | None
    pinned_at: str | None  # ISO 8601
    via: str  # first_use or admin

    @property
    def ref(self) -> str:
        return f"{self.masque}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def refusal(chosen: Entry, claims: list[Entry], pins: dict[tuple[str, str], Pin]) -> DefinitionRefused:
    """The refusal for a name@version whose claimants cannot be trusted, naming every path."""
    assert chosen.masque is not None and chosen.slot is not None
    key, version = chosen.masque.key, chosen.masque.version
    ref = f"{key}@{version}"
    from masque.masques.registry import BLOCKED

    listed = [e for e in claims if e.status in BLOCKED]
    files = ", ".join(f"{e.path} (sha256 {str(e.sha256)[:12]})" for e in listed)
    pin = pins.get(chosen.slot)
    repin = f"`masque registry pin {ref} --file {listed[0].path}`"
    if pin is not None:
        by = f" by {pin.pinned_by}" if pin.pinned_by else ""
        return DefinitionRefused(
            f"{ref}: {files} differs from the trusted definition first registered at {pin.source_path} "
            f"(sha256 {pin.content_hash[:12]}, pinned{by})",
            reason="definition_mismatch",
            hint=f"publish a change under a new `version:`; if the new file is trusted, an admin re-pins: {repin}",
            key=key,
            version=version,
            paths=(pin.source_path, *(str(e.path) for e in listed)),
        )
    return DefinitionRefused(
        f"{ref} is claimed by {len(listed)} different files and none is trusted yet: {files}",
        reason="definition_ambiguous",
        hint=f"remove one or give it a new `version:`, or an admin pins one: {repin}",
        key=key,
        version=version,
        paths=tuple(str(e.path) for e in listed),
    )


def _index(found: list[Pin]) -> dict[tuple[str, str], Pin]:
    from masque.masques.registry import slot_of

    return {slot_of(p.masque, p.version): p for p in found}


def from_store(conn: duckdb.DuckDBPyConnection) -> list[Pin]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM trusted_definitions ORDER BY masque, version").fetchall()
    return [
        Pin(str(m), str(v), str(h), str(p), None if b is None else str(b), None if t is None else t.isoformat(), str(w))
        for m, v, h, p, b, t, w in rows
    ]


_sidecar_cache: dict[str, tuple[tuple[int, int, int], list[Pin]]] = {}


def from_sidecar() -> list[Pin]:
    """The JSON copy of the pins; empty when there is no store, no copy, or a damaged one."""
    if not config.store_path().exists():
        return []  # a copy left behind by a deleted store pins nothing
    path = config.pins_path()
    try:
        st = path.stat()
        key = (st.st_ino, st.st_mtime_ns, st.st_size)  # every rewrite is a new inode (os.replace)
        cached = _sidecar_cache.get(str(path))
        if cached is not None and cached[0] == key:
            return cached[1]
        data = json.loads(path.read_bytes())
        found = [Pin(**row) for row in data["pins"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    _sidecar_cache[str(path)] = (key, found)
    return found


def pins(conn: duckdb.DuckDBPyConnection | None = None) -> dict[tuple[str, str], Pin]:
    """(name key, version) -> Pin, read through `conn` (authoritative) or else from the JSON copy."""
    return _index(from_store(conn) if conn is not None else from_sidecar())


def _write_sidecar(conn: duckdb.DuckDBPyConnection) -> None:
    """Rewrite the JSON copy from the store, atomically (called under the store's turn)."""
    path = config.pins_path()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    body = json.dumps({"pins": [p.to_dict() for p in from_store(conn)]}, indent=1)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(body)
    os.replace(tmp, path)


def _event(
    conn: duckdb.DuckDBPyConnection, type_: str, actor: str | None, key: str, version: str, **payload: Any
) -> None:
    from masque.store.events import record_event

    record_event(
        conn,
        type_,
        session_id=None,
        masque=key,
        version=version,
        actor=actor,
        originator=actor,
        payload=payload,
    )


def register(conn: duckdb.DuckDBPyConnection, resolved: Resolved, *, actor: str) -> None:
    """Pin an unpinned name@version to the content just granted (the first granted assume).

    No event of its own: the session's `mask_session_started` (content_hash) and row (source_path)
    already record it, so the first-use pins can be rebuilt from events. Re-pins are events.
    """
    conn.execute(
        "INSERT INTO trusted_definitions (masque, version, content_hash, source_path, pinned_by, via)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [resolved.masque.key, resolved.masque.version, resolved.sha256, str(resolved.path), actor, FIRST_USE],
    )
    _write_sidecar(conn)


def pin(ref: str, file: Path | None = None, selection: Selection | None = None) -> Pin:
    """Admin verb: (re-)pin name@version to the file on the search path that claims it (or `file`).

    Refused (exit 3, recorded as `definition_pin_refused`) unless the acting actor qualifies for the
    admin ring. Without `file` the claimants must agree on one content.
    """
    from masque.masques import registry
    from masque.store import turns
    from masque.trust import rings

    claims = registry.claimants(ref)
    if not claims:
        raise NotFound(f"{ref}: no file on the search path claims this name@version", hint="`masque list` shows them")
    if file is not None:
        real = file.resolve()
        chosen = [e for e in claims if e.path.resolve() == real]
        if not chosen:
            listed = ", ".join(str(e.path) for e in claims)
            raise UsageError(f"{file} is not a file claiming {ref} on the search path; claimants: {listed}")
    else:
        chosen = claims
        if len({e.sha256 for e in claims}) > 1:
            listed = ", ".join(f"{e.path} (sha256 {str(e.sha256)[:12]})" for e in claims)
            raise UsageError(f"{ref} is claimed by different files: {listed}", hint="say which with --file PATH")
    entry = chosen[0]
    assert entry.masque is not None and entry.sha256 is not None
    key, version = entry.masque.key, entry.masque.version
    refusal: Refused | None = None
    with turns.transaction() as conn:
        who = rings.resolve_acting(conn, selection or rings.selection_from_env())
        try:
            rings.check_qualified(who.actor, Ring.ADMIN, f"pinning {key}@{version}")
        except Refused as exc:
            refusal = exc
            _event(
                conn,
                "definition_pin_refused",
                who.actor.name,
                key,
                version,
                reason=exc.reason,
                message=str(exc),
                content_hash=entry.sha256,
                source_path=str(entry.path),
                actor_ring=who.actor.ring.value,
            )
        if refusal is None:
            previous = pins(conn).get(registry.slot_of(key, version))
            if previous is not None:  # one row per definition, however its version was spelled
                conn.execute(
                    "DELETE FROM trusted_definitions WHERE masque = ? AND version = ?",
                    [previous.masque, previous.version],
                )
            conn.execute(
                "INSERT INTO trusted_definitions (masque, version, content_hash, source_path, pinned_by, via)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [key, version, entry.sha256, str(entry.path), who.actor.name, ADMIN],
            )
            _event(
                conn,
                "definition_pinned",
                who.actor.name,
                key,
                version,
                content_hash=entry.sha256,
                source_path=str(entry.path),
                via=ADMIN,
                previous=previous.to_dict() if previous else None,
            )
            _write_sidecar(conn)
            done = pins(conn)[registry.slot_of(key, version)]
    if refusal is not None:
        raise refusal
    return done


def list_pins() -> list[Pin]:
    """Every pinned definition, from the store (none when there is no store yet; never creates one)."""
    from masque.store import turns

    if not config.store_path().exists():
        return []
    with turns.connect() as conn:
        return from_store(conn)
