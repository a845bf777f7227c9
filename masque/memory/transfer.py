"""`memory export` and `memory import`: JSONL out of and into shards, written as the proven caller."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from masque import store
from masque.durations import utcnow
from masque.errors import Refused, UsageError
from masque.ids import new_id
from masque.memory import ops, policy, shards
from masque.memory.audit import Event
from masque.memory.policy import Caller
from masque.memory.shards import Memory

if TYPE_CHECKING:
    from masque.trust.rings import Selection


def export(
    masques: Sequence[str] = (),
    *,
    include_expired: bool = False,
    now: dt.datetime | None = None,
    selection: Selection | None = None,
) -> Iterator[dict[str, Any]]:
    """JSONL-ready dicts of every readable memory (oldest first per shard), logged per shard."""
    now = now or utcnow()
    names = list(masques) or ops.default_shards(selection=selection)
    # Every named shard is checked before the first line is written: a refusal never leaves half an export.
    checked = {name: ops.target(name, selection=selection, action="export") for name in names}
    for name in names:
        tgt = checked[name]
        if not ops.check_read(tgt, "export"):
            continue
        shard = ops.open_for(tgt)
        if shard is None:
            continue
        where = None if include_expired else ops.live_filter(now, tgt.retention)
        ids: list[str] = []
        for batch in shard.iter_batches(where):
            for row in batch:
                ids.append(row["id"])
                yield shards.memory_from_row(row).to_json()
        ops.log_only(tgt, "export", tgt.access, ids=ids, detail={"rows": len(ids)})


def _parse_time(value: Any, where: str) -> dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{where}: not an ISO 8601 time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def parse_jsonl(
    lines: Iterable[str], source: str, masque: str | None, *, as_actor: str | None = None
) -> Iterator[Memory]:
    """Memories from `memory export` lines; `masque` overrides the one recorded in each line.

    `as_actor` (a non-admin importing): lines without an actor are labelled with it, and a line
    claiming another actor is refused: nobody writes memories in someone else's name.
    """
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"{where}: not JSON: {exc.msg}", hint="import reads the JSONL written by `masque memory export`"
            ) from None
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not obj["text"].strip():
            raise UsageError(f'{where}: each line must be an object with a non-empty "text"')
        name = masque or obj.get("masque")
        if not name:
            raise UsageError(f'{where}: no "masque" in the line', hint="pass --masque NAME to import into one shard")
        text = obj["text"]
        actor = obj.get("actor")
        if as_actor is not None:
            if actor not in (None, "", as_actor):
                raise Refused(
                    f"{where}: the line claims actor {actor!r} but you are {as_actor!r}; "
                    "only an admin imports memories labelled with other actors",
                    reason="import_actor_mismatch",
                    hint="drop or fix those lines, or ask an admin to import the file",
                )
            actor = as_actor
        yield Memory(
            id=str(obj.get("id") or new_id("mem_")),
            text=text,
            masque=policy.masque_key(str(name)),
            version=obj.get("version"),
            session_id=obj.get("session_id"),
            branch=obj.get("branch"),
            tags=tuple(obj.get("tags") or ()),
            actor=actor,
            created_at=_parse_time(obj.get("created_at"), where) or utcnow(),
            expires_at=_parse_time(obj.get("expires_at"), where),
            content_hash=shards.content_hash(text),
            metadata=obj.get("metadata") or {},
        )


def _check_sessions(batch: Sequence[Memory], caller: Caller, source: str) -> None:
    """A non-admin's lines may not claim a session of this store worn by another actor."""
    wanted = sorted({m.session_id for m in batch if m.session_id})
    if caller.is_admin or not wanted:
        return
    with store.connect(read_only=True) as conn:
        owners = dict(
            conn.execute(
                "SELECT id, actor FROM sessions WHERE list_contains($ids::VARCHAR[], id)", {"ids": wanted}
            ).fetchall()
        )
    foreign = sorted(sid for sid, actor in owners.items() if actor != caller.actor)
    if foreign:
        raise Refused(
            f"{source}: lines claim session {foreign[0]}, worn by another actor; "
            "only an admin imports memories tagged with other actors' sessions",
            reason="import_actor_mismatch",
            hint="drop the session_id of those lines, or ask an admin to import the file",
        )


def import_memories(
    lines: Iterable[str],
    *,
    source: str = "<stdin>",
    masque: str | None = None,
    selection: Selection | None = None,
) -> dict[str, Any]:
    """Import JSONL in whole batches; ids already in the shard are skipped, so re-running is safe.

    The rows are written as the proven caller: a non-admin's lines must be its own (actor and session).
    Each shard is checked (ring rule, sharing) before its first batch is written; a refused line stops
    the import there, after the whole batches before it.
    """
    caller = policy.current_caller(selection=selection)
    per: dict[str, int] = {}
    skipped = 0
    pending: dict[str, list[Memory]] = {}
    targets: dict[str, ops.Target] = {}

    def flush(name: str) -> None:
        nonlocal skipped
        batch: list[Memory] = []
        seen: set[str] = set()
        for m in pending.pop(name, []):
            if m.id in seen:  # the first line wins on a repeated id
                skipped += 1
                continue
            seen.add(m.id)
            batch.append(m)
        if not batch:
            return
        tgt = targets.get(name) or targets.setdefault(name, ops.target(name, selection=selection, action="import"))
        _check_sessions(batch, caller, source)
        shard = ops.open_for(tgt)
        if shard is not None:
            quoted = ", ".join(shards.sql_str(m.id) for m in batch)
            present = {r["id"] for r in shard.rows(f"id IN ({quoted})", columns=("id",))}
            fresh = [m for m in batch if m.id not in present]
            skipped += len(batch) - len(fresh)
            batch = fresh
        if batch:
            result = ops.write(tgt, batch, event=Event.IMPORTED, detail={"source": source})
            per[name] = per.get(name, 0) + len(result.ids)
            if not result.stored:
                skipped += len(batch)
            if not tgt.settings.has_data:
                targets[name] = ops.target(name, selection=selection, action="import")  # the shard exists now

    as_actor = None if caller.is_admin else caller.actor
    for memory in parse_jsonl(lines, source, masque, as_actor=as_actor):
        if memory.masque not in targets:  # refuse a shard at its first line, before anything is written to it
            targets[memory.masque] = ops.target(memory.masque, selection=selection, action="import")
        pending.setdefault(memory.masque, []).append(memory)
        if len(pending[memory.masque]) >= ops.BATCH_ROWS:
            flush(memory.masque)
    for name in list(pending):
        flush(name)
    return {"imported": sum(per.values()), "skipped": skipped, "shards": per}
