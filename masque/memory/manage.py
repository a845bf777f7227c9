"""Shard administration: modes, sharing, opt-outs, statistics and re-embedding."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from masque import store
from masque.durations import format_duration, utcnow
from masque.errors import NotFound, Refused, UsageError
from masque.memory import access, audit, ops, policy, shards, spool
from masque.memory.embedders import configured_embedder
from masque.memory.policy import Access, Mode

if TYPE_CHECKING:
    from masque.trust.rings import Selection


def set_mode(masque: str | None, mode: Mode, *, selection: Selection | None = None) -> policy.ShardSettings:
    tgt = ops.target(masque, selection=selection, action="mode")
    settings = policy.set_mode(tgt.masque, mode, tgt.caller)
    ops.log_only(tgt, "mode", tgt.access, detail={"mode": mode.value})
    return settings


def share(
    masque: str | None, reader: str, *, grant: bool = True, selection: Selection | None = None
) -> policy.ShardSettings:
    tgt = ops.target(masque, selection=selection, action="share" if grant else "unshare")
    files = access.masque_files()
    if grant and policy.masque_key(reader) not in files:  # unsharing a masque that is gone stays possible
        raise access.unknown_masque(policy.masque_key(reader), files)
    settings = policy.share(tgt.masque, policy.masque_key(reader), tgt.caller, grant=grant)
    ops.log_only(tgt, "share" if grant else "unshare", tgt.access, detail={"reader": policy.masque_key(reader)})
    return settings


def opt(
    masque: str | None, *, out: bool, actor: str | None = None, selection: Selection | None = None
) -> dict[str, Any]:
    """Opt the acting actor out of or back into a masque's memory; another actor's choice: admins only."""
    tgt = ops.target(masque, selection=selection, action="opt_out" if out else "opt_in")
    who = actor or tgt.caller.actor
    if who != tgt.caller.actor:
        if not tgt.caller.is_admin:
            ops.log_only(tgt, "opt_out" if out else "opt_in", Access.DENIED, detail={"actor": who})
            raise Refused(
                f"actor {tgt.caller.actor!r} may not change the memory opt-out of actor {who!r}",
                reason="not_your_choice",
                hint=f"only {who!r} itself (with its key or token) or an admin may; drop --actor to set your own",
            )
        with store.connect(read_only=True) as conn:
            if conn.execute("SELECT 1 FROM actors WHERE name = ?", [who]).fetchone() is None:
                raise NotFound(f"no actor named {who!r}", hint="`masque actor list` shows the actors")
    changed = policy.set_opt_out(tgt.masque, who, out=out)
    ops.log_only(tgt, "opt_out" if out else "opt_in", tgt.access, detail={"actor": who})
    return {"masque": tgt.masque, "actor": who, "opted_out": out, "changed": changed}


def opt_out(masque: str | None = None, *, actor: str | None = None) -> dict[str, Any]:
    """Store nothing more for the actor in this shard; their reads return nothing."""
    return opt(masque, out=True, actor=actor)


def opt_in(masque: str | None = None, *, actor: str | None = None) -> dict[str, Any]:
    return opt(masque, out=False, actor=actor)


@dataclass(frozen=True)
class ShardStats:
    masque: str
    table: str
    embedder: str | None
    dim: int | None
    mode: str
    readers: tuple[str, ...]
    rows: int
    live: int
    retention: str | None
    vector_index: str | None
    size_bytes: int
    version: int | None
    opted_out_actors: int

    def to_json(self) -> dict[str, Any]:
        return {
            "masque": self.masque,
            "table": self.table,
            "embedder": self.embedder,
            "dim": self.dim,
            "mode": self.mode,
            "readers": list(self.readers),
            "rows": self.rows,
            "live": self.live,
            "expired": self.rows - self.live,
            "retention": self.retention,
            "vector_index": self.vector_index,
            "size_bytes": self.size_bytes,
            "version": self.version,
            "opted_out_actors": self.opted_out_actors,
        }


def stats(
    masque: str | None = None, *, now: dt.datetime | None = None, selection: Selection | None = None
) -> list[ShardStats]:
    """Per-shard figures for one shard, or every shard the caller's ring qualifies for."""
    from masque.memory.search import vector_index

    now = now or utcnow()
    names = [ops.target(masque, selection=selection, action="stats").masque] if masque else []
    if not masque:
        names = [s.masque for s in policy.all_settings()]
        for name in shards.list_shard_names():  # shards on disk the registry lost still show up
            key = name[len(shards.TABLE_PREFIX) :]
            if key not in names and shards.table_name(key) == name:
                names.append(key)
        who = policy.current_caller(selection=selection)
        files = access.masque_files()
        names = [n for n in names if access.qualifies(who, access.ring_of(n, files, names, who))]
    out: list[ShardStats] = []
    with store.connect(read_only=True) as conn:
        optouts = dict(conn.execute("SELECT masque, count(*) FROM memory_optouts GROUP BY masque").fetchall())
    for name in sorted(names):
        tgt = ops.target(name, selection=selection, action="stats")
        shard = ops.open_for(tgt)
        rows = shard.count() if shard else 0
        live = shard.count(ops.live_filter(now, tgt.retention)) if shard else 0
        ix = vector_index(shard) if shard else None
        out.append(
            ShardStats(
                masque=name,
                table=shards.table_name(name),
                embedder=shard.embedder_id if shard else tgt.settings.embedder,
                dim=shard.dim if shard else tgt.settings.dim,
                mode=tgt.settings.mode.value,
                readers=tgt.settings.readers,
                rows=rows,
                live=live,
                retention=format_duration(tgt.retention) if tgt.retention else None,
                vector_index=ix.index_type if ix else None,
                size_bytes=shards.size_on_disk(shard) if shard else 0,
                version=shard.version() if shard else None,
                opted_out_actors=int(optouts.get(name, 0)),
            )
        )
    return out


def reembed(masque: str | None = None, *, selection: Selection | None = None) -> dict[str, Any]:
    """Re-embed every row of a shard with the configured embedder, in one overwrite commit."""
    tgt = ops.target(masque, selection=selection, action="reembed")
    policy.require_owner(tgt.caller, tgt.masque, "re-embed")
    shard = ops.open_for(tgt)
    embedder = configured_embedder(tgt.masque)
    if shard is None:
        return {"masque": tgt.masque, "rows": 0, "old_embedder": None, "embedder": embedder.id}
    old = shard.embedder_id
    memories = [shards.memory_from_row(r) for batch in shard.iter_batches() for r in batch]
    # An empty shard still learns the new dimension from one probe embedding.
    vectors = embedder.embed([m.text for m in memories] or ["probe"])
    dim = int(vectors.shape[1])
    batch = shards.to_arrow(memories, vectors[: len(memories)], shards.arrow_schema(dim, embedder.id))
    new = shards.overwrite_shard(shard, batch)
    with store.transaction() as conn:
        policy.set_embedder(conn, tgt.masque, embedder.id, dim, tgt.caller.actor)
        audit.log(conn, tgt.caller, "reembed", tgt.masque, tgt.access, rows=len(memories),
                  detail={"old_embedder": old, "embedder": embedder.id, "dim": dim})  # fmt: skip
    from masque.memory.search import maintain

    maintain(new)
    return {"masque": tgt.masque, "rows": len(memories), "old_embedder": old, "embedder": embedder.id, "dim": dim}


def log_entries(
    masque: str | None = None,
    *,
    session_id: str | None = None,
    action: str | None = None,
    limit: int = 100,
    selection: Selection | None = None,
) -> list[audit.LogEntry]:
    """The compliance log, newest first: of the shards the caller's ring qualifies for, and only the
    entries of actors it may see (its own ring and below)."""
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}", hint="e.g. --limit 100")
    who = policy.current_caller(selection=selection)
    files = access.masque_files()
    spool.fold()
    with store.connect(read_only=True) as conn:
        logged = [r[0] for r in conn.execute("SELECT DISTINCT shard FROM memory_log").fetchall()]
        registered = [r[0] for r in conn.execute("SELECT masque FROM memory_shards").fetchall()]
        seen = access.visible_actors(conn, who)
    known = sorted(set(logged) | set(registered))
    if masque:
        key = policy.masque_key(masque)
        access.check(who, key, access.ring_of(key, files, known, who), "log")
        shards_seen = [key]
    else:
        shards_seen = [n for n in known if access.qualifies(who, access.ring_of(n, files, known, who))]
    visible = None if seen is None else sorted(seen)
    return audit.read_log(shards=shards_seen, actors=visible, session_id=session_id, action=action, limit=limit)


__all__ = [
    "Access", "Mode", "ShardStats", "log_entries", "opt", "opt_in", "opt_out", "reembed", "set_mode", "share", "stats",
]  # fmt: skip
