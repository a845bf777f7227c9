"""Staged rollouts: draft -> beta -> live, one stage at a time; retire is a soft delete.

Where stages live: the file's `stage` field is what the author declared (default live); every later
change is a row in the store's `mask_stages` table (migration 0004) plus a `mask_stage_changed` event,
written in one transaction. The newest row per (masque, version) is the effective stage, so a rollout
never rewrites a reviewed file and its history is kept. A retired version is hidden from routing and
bare-name resolution but still loads by exact version, and its rows stay in the history.

Who may: the actor the one identity check proves (`rings.resolve_acting`: a key, a session token, else
the founder), and only when it qualifies for the mask's ring (`rings.check_qualified`) — the ring that
may wear a mask decides its rollout; admins may roll out any mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from masque.durations import utcnow
from masque.enums import Stage
from masque.errors import Refused, UsageError
from masque.store.events import record_event

if TYPE_CHECKING:
    import duckdb

    from masque.masques.catalog import Mask
    from masque.trust.rings import Selection

ORDER = (Stage.DRAFT, Stage.BETA, Stage.LIVE)


@dataclass(frozen=True)
class StageChange:
    masque: str
    version: str
    from_stage: Stage
    to_stage: Stage
    changed: bool  # False when nothing had to change (retiring a retired version)
    id: str | None = None


def next_stage(current: Stage) -> Stage | None:
    if current in ORDER and current is not Stage.LIVE:
        return ORDER[ORDER.index(current) + 1]
    return None


def check_promotion(ref: str, current: Stage, target: Stage) -> None:
    """Raise Refused unless `current -> target` is exactly one step forward."""
    if target not in (Stage.BETA, Stage.LIVE):
        raise UsageError(f"--to {target.value}: promote to beta or live (retire with `mythatron mask retire`)")
    if current is Stage.RETIRED:
        raise Refused(
            f"{ref} is retired; a retired version cannot be promoted",
            reason="stage_retired",
            hint="publish a new version instead",
        )
    if current is target:
        raise Refused(f"{ref} is already {target.value}", reason="stage_unchanged")
    step = next_stage(current)
    if step is not target:
        if ORDER.index(target) < ORDER.index(current):
            why = f"{ref} is {current.value}; promotion only moves forward"
        else:
            nxt = step.value if step else "?"
            why = f"{ref} is {current.value}; promotion moves one stage at a time ({current.value} -> {nxt})"
        raise Refused(why, reason="stage_order", hint=f"promote to {step.value} first" if step else None)


def _record(change: StageChange, mask: Mask, selection: Selection | None, verb: str) -> StageChange:
    """Check who is acting, then write the stage row and its event in one transaction.

    The actor is the one `rings.resolve_acting` proves (a key, a session token, else the founder) and
    must qualify for the mask's ring (`rings.check_qualified`: admins for any mask). A refusal is
    recorded as a `mask_stage_refused` event, then raised (exit 3).
    """
    from masque import store
    from masque.ids import new_id
    from masque.trust import rings

    selection = selection or rings.selection_from_env()
    refusal: Refused | None = None
    stage_id = new_id("stg_")
    now = utcnow()
    payload = {"from": change.from_stage.value, "to": change.to_stage.value, "path": str(mask.path)}
    with store.transaction() as conn:
        who: rings.Acting | None = None
        try:
            who = rings.resolve_acting(conn, selection)
            rings.check_qualified(who.actor, mask.masque.ring, f"{verb} {mask.ref} (ring {mask.masque.ring.value})")
        except Refused as exc:
            refusal = exc
            _event(
                conn,
                "mask_stage_refused",
                change,
                who.actor.name if who else selection.name,
                {
                    **payload,
                    "reason": exc.reason,
                    "message": str(exc),
                    "actor_verified": who is not None,
                    "masque_ring": mask.masque.ring.value,
                },
            )
        if refusal is None and who is not None and change.changed:
            actor = who.actor.name
            conn.execute(
                "INSERT INTO mask_stages (id, masque, version, from_stage, to_stage, actor, content_hash,"
                " source_path, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    stage_id,
                    change.masque,
                    change.version,
                    change.from_stage.value,
                    change.to_stage.value,
                    actor,
                    mask.sha256,
                    str(mask.path),
                    now,
                ],
            )
            _event(conn, "mask_stage_changed", change, actor, {**payload, "sha256": mask.sha256})
            store.write_stages_copy(conn)
    if refusal is not None:
        raise refusal
    if not change.changed:
        return change
    return StageChange(change.masque, change.version, change.from_stage, change.to_stage, True, stage_id)


def _event(
    conn: duckdb.DuckDBPyConnection, type_: str, change: StageChange, actor: str | None, payload: dict[str, Any]
) -> None:
    record_event(conn, type_, masque=change.masque, version=change.version, actor=actor, payload=payload)


def promote(ref: str, to: str, selection: Selection | None = None) -> StageChange:
    """Move one version one stage forward. `ref` names a version (a bare name means its newest).

    Only an actor qualified for the mask's ring may (see `_record`).
    """
    from masque.masques.catalog import lookup_any

    try:
        target = Stage(to)
    except ValueError:
        raise UsageError(f"--to {to!r}: choose beta or live") from None
    mask = lookup_any(ref)
    key = mask.masque.key
    check_promotion(mask.ref, mask.stage, target)
    change = StageChange(key, mask.masque.version, mask.stage, target, True)
    return _record(change, mask, selection, "promoting")


def retire(ref: str, selection: Selection | None = None) -> StageChange:
    """Soft-delete one version; retiring a retired version changes nothing. Same ring rule as promote."""
    from masque.masques.catalog import lookup_any

    mask = lookup_any(ref)
    if mask.stage is Stage.RETIRED:
        change = StageChange(mask.masque.key, mask.masque.version, Stage.RETIRED, Stage.RETIRED, False)
    else:
        change = StageChange(mask.masque.key, mask.masque.version, mask.stage, Stage.RETIRED, True)
    return _record(change, mask, selection, "retiring")


def history(ref: str | None = None) -> list[dict[str, object]]:
    """Recorded stage changes, oldest first (all, or one name / name@version)."""
    from masque import store
    from masque.masques.catalog import candidate_keys
    from masque.model import Ref

    if not store.present():
        return []
    sql = "SELECT id, masque, version, from_stage, to_stage, actor, changed_at FROM mask_stages"
    params: list[object] = []
    if ref is not None:
        parsed = Ref.parse(ref)
        keys = candidate_keys(parsed.name)
        sql += f" WHERE masque IN ({', '.join('?' for _ in keys)})"
        params.extend(keys)
        if parsed.version:
            sql += " AND version = ?"
            params.append(parsed.version)
    with store.connect(read_only=True) as conn:
        return store.rows(conn, sql + " ORDER BY id", params)
