"""Pinning a trusted definition by hand: the admin verb behind `masque registry pin`.

Above both the registry (which finds the claimants) and `trusted` (which keeps the pins).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from masque.enums import Ring
from masque.errors import NotFound, Refused, UsageError
from masque.masques import registry, trusted
from masque.masques.refs import slot_of

if TYPE_CHECKING:
    from pathlib import Path

    from masque.trust.rings import Selection

__all__ = ["pin"]


def pin(ref: str, file: Path | None = None, selection: Selection | None = None) -> trusted.Pin:
    """Admin verb: (re-)pin name@version to the file on the search path that claims it (or `file`).

    Refused (exit 3, recorded as `definition_pin_refused`) unless the acting actor qualifies for the
    admin ring. Without `file` the claimants must agree on one content.
    """
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
            trusted.record_pin_event(
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
            previous = trusted.pins(conn).get(slot_of(key, version))
            if previous is not None:  # one row per definition, however its version was spelled
                conn.execute(
                    "DELETE FROM trusted_definitions WHERE masque = ? AND version = ?",
                    [previous.masque, previous.version],
                )
            conn.execute(
                "INSERT INTO trusted_definitions (masque, version, content_hash, source_path, pinned_by, via)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [key, version, entry.sha256, str(entry.path), who.actor.name, trusted.ADMIN],
            )
            trusted.record_pin_event(
                conn,
                "definition_pinned",
                who.actor.name,
                key,
                version,
                content_hash=entry.sha256,
                source_path=str(entry.path),
                via=trusted.ADMIN,
                previous=previous.to_dict() if previous else None,
            )
            trusted.write_sidecar(conn)
            done = trusted.pins(conn)[slot_of(key, version)]
    if refusal is not None:
        raise refusal
    return done
