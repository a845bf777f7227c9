"""Staged rollouts: draft -> beta -> live, one stage at a time; retire is a soft delete.

Where stages live: the file's `stage` field is what the author declared (default live); every later
change is a row in the store's `mask_stages` table (migration 0004) plus a `mask_stage_changed` event,
written in one transaction. The newest row per (masque, version) is the effective stage, so a rollout
never rewrites a reviewed file and its history is kept. A retired version is hidden from routing and
bare-name resolution but still loads by exact version, and its rows stay in the history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from masque.errors import Refused, UsageError
from masque.model import Stage

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


def _record(change: StageChange, sha256: str, path: str) -> StageChange:
    from masque import config, store
    from masque.ids import new_id

    stage_id = new_id("stg_")
    actor = config.actor_from_env()[0]
    now = datetime.now(timezone.utc)
    payload = {"from": change.from_stage.value, "to": change.to_stage.value, "path": path, "sha256": sha256}
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO mask_stages (id, masque, version, from_stage, to_stage, actor, content_hash,"
            " source_path,"
            " changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                stage_id,
                change.masque,
                change.version,
                change.from_stage.value,
                change.to_stage.value,
                actor,
                sha256,
                path,
                now,
            ],
        )
        conn.execute(
            "INSERT INTO events (id, ts, type, masque, version, actor, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                new_id("evt_"),
                now,
                "mask_stage_changed",
                change.masque,
                change.version,
                actor,
                json.dumps(payload),
            ],
        )
    return StageChange(change.masque, change.version, change.from_stage, change.to_stage, True, stage_id)


def promote(ref: str, to: str) -> StageChange:
    """Move one version one stage forward. `ref` names a version (a bare name means its newest)."""
    from masque.mythatron.catalog import lookup_any

    try:
        target = Stage(to)
    except ValueError:
        raise UsageError(f"--to {to!r}: choose beta or live") from None
    mask = lookup_any(ref)
    key = mask.masque.key
    check_promotion(mask.ref, mask.stage, target)
    change = StageChange(key, mask.masque.version, mask.stage, target, True)
    return _record(change, mask.sha256, str(mask.path))


def retire(ref: str) -> StageChange:
    """Soft-delete one version; retiring a retired version changes nothing."""
    from masque.mythatron.catalog import lookup_any

    mask = lookup_any(ref)
    change = StageChange(mask.masque.key, mask.masque.version, mask.stage, Stage.RETIRED, True)
    if mask.stage is Stage.RETIRED:
        return StageChange(change.masque, change.version, Stage.RETIRED, Stage.RETIRED, False)
    return _record(change, mask.sha256, str(mask.path))


def history(ref: str | None = None) -> list[dict[str, object]]:
    """Recorded stage changes, oldest first (all, or one name / name@version)."""
    from masque import config, store
    from masque.model import Ref
    from masque.mythatron.catalog import candidate_keys

    if not config.store_path().exists():
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
