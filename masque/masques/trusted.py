"""Trusted definitions: each name@version is bound to the content it was first worn with (TOFU).

Like SSH's known_hosts: the first *granted* `assume` of a name@version records the content hash and
path of the file it used (`trusted_definitions`, migration 5). From then on only files with that hash
are used for it; a different file claiming the same name@version is refused (exit 3,
`definition_mismatch`) until an admin re-pins it with `masque registry pin` (`masque.masques.pinning`). `check`,
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
from masque.errors import Refused
from masque.masques.refs import slot_of

if TYPE_CHECKING:
    from pathlib import Path

    import duckdb

    from masque.masques.registry import Resolved
    from masque.trust.rings import Selection

FIRST_USE = "first_use"
ADMIN = "admin"
WRITE_BACK = "write_back"
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


def _index(found: list[Pin]) -> dict[tuple[str, str], Pin]:
    return {slot_of(p.masque, p.version): p for p in found}


def from_store(conn: duckdb.DuckDBPyConnection) -> list[Pin]:
    # Sorted here: DuckDB's first ORDER BY in a process costs a cold `assume` ~1-3 ms.
    rows = sorted(conn.execute(f"SELECT {_COLUMNS} FROM trusted_definitions").fetchall(), key=lambda r: (r[0], r[1]))
    return [
        Pin(str(m), str(v), str(h), str(p), None if b is None else str(b), None if t is None else t.isoformat(), str(w))
        for m, v, h, p, b, t, w in rows
    ]


_sidecar_cache: dict[str, tuple[tuple[int, int, int], list[Pin]]] = {}


def from_sidecar() -> list[Pin]:
    """The JSON copy of the pins; empty when there is no store, no copy, or a damaged one.

    A PostgreSQL store keeps no local copy (other servers change the pins): it is read directly.
    """
    from masque import store

    if store.shared_url() is not None:
        with store.connect(read_only=True) as conn:
            return from_store(conn)
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


def write_sidecar(conn: duckdb.DuckDBPyConnection) -> None:
    """Rewrite the JSON copy from the store, atomically (called under the store's turn)."""
    from masque import store

    if store.shared_url() is not None:
        return  # no local copy of a shared store (`from_sidecar` reads it directly)
    path = config.pins_path()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    body = json.dumps({"pins": [p.to_dict() for p in from_store(conn)]}, indent=1)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(body)
    os.replace(tmp, path)


def record_pin_event(
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
    write_sidecar(conn)


def carry_over(
    conn: duckdb.DuckDBPyConnection, key: str, version: str, *, before: str, after: str, path: Path, actor: str
) -> bool:
    """Masque's own edit of a file (score write-back changes only `performance`): move its pin along.

    Only a file that was the trusted definition (`before` is the pinned hash) carries its pin; any
    other file stays as untrusted as it was. Called under the turn that rewrote the file.
    """
    current = pins(conn).get(slot_of(key, version))
    if current is None or current.content_hash != before:
        return False
    conn.execute(
        "UPDATE trusted_definitions SET content_hash = ?, source_path = ?, pinned_by = ?, pinned_at = now(),"
        " via = ? WHERE masque = ? AND version = ?",
        [after, str(path), actor, WRITE_BACK, current.masque, current.version],
    )
    record_pin_event(
        conn,
        "definition_pinned",
        actor,
        key,
        version,
        content_hash=after,
        source_path=str(path),
        via=WRITE_BACK,
        previous=current.to_dict(),
    )
    write_sidecar(conn)
    return True


def check_wearable(
    conn: duckdb.DuckDBPyConnection, key: str, version: str, content_hash: str | None, source_path: str | None
) -> None:
    """A masque that did not come through the registry (a code masque, an instance handed to the API)
    may not claim a pinned name@version with other content: that would widen what it grants."""
    pin = pins(conn).get(slot_of(key, version))
    if pin is None or pin.content_hash == content_hash:
        return
    where = source_path or "code"
    raise DefinitionRefused(
        f"{key}@{version}: {where} (a code masque) differs from the trusted definition first registered at "
        f"{pin.source_path} (sha256 {pin.content_hash[:12]})",
        reason="definition_mismatch",
        hint="give the code masque its own name or a new version; only the pinned definition is worn as this one",
        key=key,
        version=version,
        paths=(pin.source_path, where),
    )


def list_pins(selection: Selection | None = None) -> list[Pin]:
    """Every pinned definition, from the store (none when there is no store yet; never creates one).

    Masques are public, their pins too; who pinned one is shown only to a caller who may see that actor.
    """
    from dataclasses import replace

    from masque import store
    from masque.store import turns
    from masque.trust import rings

    if not store.present():
        return []
    with turns.connect() as conn:
        viewer = rings.resolve_acting(conn, selection or rings.selection_from_env()).actor
        found = from_store(conn)
        seen = {
            name for name, ring in conn.execute("SELECT name, ring FROM actors").fetchall() if rings.sees(viewer, ring)
        }
    return [p if p.pinned_by is None or p.pinned_by in seen else replace(p, pinned_by=None) for p in found]
