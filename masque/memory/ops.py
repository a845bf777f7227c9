"""Memory operations behind `masque memory ...`: add, list, get, forget, prune, history (JSONL: transfer.py).

Each operation resolves the caller (session or operator), checks the shard's policy, touches LanceDB,
then records history and the compliance log in one DuckDB transaction. Expired rows (a `--ttl` that
ran out, or older than the masque's retention window) are filtered out of every read at once and
deleted on the next write to the shard or by `prune`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from masque import config, store
from masque.durations import utcnow
from masque.enums import Ring
from masque.errors import NotFound, Refused, UsageError
from masque.ids import new_id
from masque.memory import audit, policy, shards, spool
from masque.memory.audit import Event
from masque.memory.embedders import configured_embedder
from masque.memory.policy import Access, Caller
from masque.memory.shards import Memory, Shard
from masque.memory.view import View, open_view

if TYPE_CHECKING:
    import numpy as np

    from masque.trust.rings import Selection

BATCH_ROWS = 2000  # rows per LanceDB commit: the unit a kill -9 can lose, never split


@dataclass(frozen=True)
class Filters:
    """Optional row filters shared by list, search, forget and export."""

    ids: tuple[str, ...] = ()
    session_id: str | None = None
    branch: str | None = None
    tags: tuple[str, ...] = ()
    actor: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.ids or self.session_id or self.branch or self.tags or self.actor)

    def sql(self) -> list[str]:
        parts: list[str] = []
        if self.ids:
            parts.append("id IN (" + ", ".join(shards.sql_str(i) for i in self.ids) + ")")
        if self.session_id:
            parts.append(f"session_id = {shards.sql_str(self.session_id)}")
        if self.branch:
            parts.append(f"branch = {shards.sql_str(self.branch)}")
        parts.extend(f"array_has(tags, {shards.sql_str(t)})" for t in self.tags)
        if self.actor:
            parts.append(f"actor = {shards.sql_str(self.actor)}")
        return parts

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.ids:
            out["ids"] = len(self.ids)
        for key in ("session_id", "branch", "actor"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.tags:
            out["tags"] = list(self.tags)
        return out


@dataclass(frozen=True)
class Target:
    """The shard an operation works on, with everything policy decided about it."""

    masque: str
    version: str | None
    caller: Caller
    settings: policy.ShardSettings
    access: Access
    opted_out: bool
    retention: dt.timedelta | None
    ring: Ring = Ring.ADMIN  # the ring guarding the shard (access.ring_of)


@dataclass(frozen=True)
class AddResult:
    masque: str
    stored: bool
    ids: tuple[str, ...] = ()
    reused_vectors: int = 0
    pruned: int = 0
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "masque": self.masque,
            "stored": self.stored,
            "ids": list(self.ids),
            "reused_vectors": self.reused_vectors,
            "pruned": self.pruned,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RemoveResult:
    removed: tuple[str, ...]
    shards: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"removed": len(self.removed), "ids": list(self.removed), "shards": dict(self.shards)}


@dataclass(frozen=True)
class Window:
    """What is alive at `now` under a retention window, as SQL and as a row predicate."""

    now: dt.datetime
    retention: dt.timedelta | None

    def sql(self) -> str:
        return live_filter(self.now, self.retention)

    def alive(self, row: Mapping[str, Any]) -> bool:
        expires = row.get("expires_at")
        if expires is not None and expires <= self.now:
            return False
        return self.retention is None or row["created_at"] > self.now - self.retention


def live_filter(now: dt.datetime, retention: dt.timedelta | None) -> str:
    """Rows still alive at `now`: not past their ttl and inside the retention window."""
    parts = [f"(expires_at IS NULL OR expires_at > {shards.sql_time(now)})"]
    if retention is not None:
        parts.append(f"created_at > {shards.sql_time(now - retention)}")
    return " AND ".join(parts)


def expired_filter(now: dt.datetime, retention: dt.timedelta | None) -> str:
    return f"NOT ({live_filter(now, retention)})"


def resolve(masque: str | None, caller: Caller) -> tuple[str, str | None]:
    """Masque key and version: the argument, else the proven session's masque."""
    if masque is None:
        if caller.masque is None:
            raise UsageError(
                "which masque's memory? name the MASQUE (outside a session there is no default)",
                hint="e.g. `masque memory list codesmith`, or run inside a session (MASQUE_TOKEN from `masque assume`)",
            )
        return caller.masque, caller.version
    from masque.model import Ref

    ref = Ref.parse(masque)
    key = ref.name.casefold()
    version = ref.version or (caller.version if caller.masque == key else None)
    return key, version


def target(
    masque: str | None,
    *,
    session_id: str | None = None,
    selection: Selection | None = None,
    action: str = "access",
) -> Target:
    """Caller, shard settings and opt-out in one short read of the store, then the ring rule.

    `session_id` is a session tag the caller asks for: only the session it proves may be named.
    """
    from masque.memory import access, readcache
    from masque.trust.rings import selection_from_env

    sel = selection or selection_from_env()
    cache_key = readcache.key(sel, "target", masque)
    found = readcache.lookup(cache_key)
    if found is None:
        found = _read_target(masque, sel, cache_key, session_id)
    caller, key, version, settings, opted, registered = found
    _check_session_tag(session_id, caller)
    files = access.masque_files()
    known = [key] if registered or shards.shard_exists(key) else []
    ring = access.ring_of(key, files, known, caller)
    tgt = Target(key, version, caller, settings, policy.read_access(caller, settings), opted, None, ring)
    try:
        access.check(caller, key, ring, action)
    except Refused:
        log_only(tgt, action, Access.DENIED, detail={"reason": "ring", "ring": ring.value})
        raise
    retention = policy.retention_for(key, caller, version, files.get(key, []))
    return dataclasses.replace(tgt, retention=retention)


def _check_session_tag(session_id: str | None, caller: Caller) -> None:
    if session_id and session_id != caller.session_id:
        raise Refused(
            f"--session {session_id}: a memory is tagged only with the session the caller proves "
            f"({caller.session_id or 'none: no MASQUE_TOKEN'})",
            reason="session_unproven",
            hint="run inside that session (MASQUE_TOKEN from its `masque assume`), or drop --session",
        )


def _read_target(
    masque: str | None, sel: Selection, cache_key: tuple[Any, ...], session_id: str | None
) -> tuple[Caller, str, str | None, policy.ShardSettings, bool, bool]:
    """Prove the caller and read the shard's policy in one short read; remembered until the store changes."""
    from masque.memory import readcache

    marker = store.change_marker()  # taken before reading: a write after it invalidates what is read
    until: dt.datetime | None = None
    with store.connect(read_only=True) as conn:
        caller = policy.current_caller(conn, sel)
        _check_session_tag(session_id, caller)
        key, version = resolve(masque, caller)
        settings = policy.shard_settings(conn, key)
        opted = policy.is_opted_out(conn, caller.actor, key)
        registered = conn.execute("SELECT 1 FROM memory_shards WHERE masque = ?", [key]).fetchone() is not None
        try:
            until = readcache.proof_lifetime(conn, sel)
        except readcache.Uncacheable:
            marker = (None, False)
    found = (caller, key, version, settings, opted, registered)
    readcache.remember(cache_key, marker, until, found)
    return found


def default_shards(*, mode: policy.Mode | None = None, selection: Selection | None = None) -> list[str]:
    """Shards a command without MASQUE covers: the session's own, else every shard with data the caller's
    ring qualifies for (a more trusted shard is simply not covered)."""
    from masque.memory import access

    wanted = sorted(s.masque for s in policy.all_settings() if s.has_data and (mode is None or s.mode is mode))
    who = policy.current_caller(selection=selection)
    if who.session_id:
        wanted = [name for name in wanted if name == who.masque]
    files = access.masque_files()
    return [name for name in wanted if access.qualifies(who, access.ring_of(name, files, wanted, who))]


def open_for(tgt: Target) -> Shard | None:
    return shards.open_shard(tgt.masque, expected=tgt.settings.has_data)


def log_only(
    tgt: Target, action: str, access: Access, *, ids: Sequence[str] = (), detail: Mapping[str, Any] | None = None
) -> None:
    """Log an operation that writes nothing else: spooled and fsynced, folded into the store later."""
    audit.spooled(tgt.caller, action, tgt.masque, access, ids=ids, detail=detail)


def check_read(tgt: Target, action: str) -> bool:
    """Log and refuse a denied read; False (logged) when the actor opted out, so reads return nothing."""
    if tgt.access is Access.DENIED:
        log_only(tgt, action, Access.DENIED)
        raise policy.denied(tgt.caller, tgt.masque)
    if tgt.opted_out:
        log_only(tgt, action, Access.OPTED_OUT)
        return False
    return True


def _embed(shard: Shard | None, texts: Sequence[str], hashes: Sequence[str], embedder: Any) -> tuple[np.ndarray, int]:
    """Vectors for `texts`, reusing stored ones by content hash when embedding costs a call."""
    import numpy as np

    reuse: dict[str, list[float]] = shard.vectors_for_hashes(hashes) if (shard and embedder.remote) else {}
    todo = [i for i, h in enumerate(hashes) if h not in reuse]
    fresh = embedder.embed([texts[i] for i in todo]) if todo else None
    dim = fresh.shape[1] if fresh is not None else (shard.dim if shard else 0)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if fresh is not None:
        out[todo] = fresh
    for i, h in enumerate(hashes):
        if h in reuse:
            out[i] = np.asarray(reuse[h], dtype=np.float32)
    return out, len(texts) - len(todo)


def _erase(shard: Shard) -> None:
    from masque.memory.search import erase

    erase(shard)


def _prune_expired(shard: Shard, now: dt.datetime, retention: dt.timedelta | None) -> list[tuple[str, str | None]]:
    where = expired_filter(now, retention)
    if not shard.count(where):
        return []
    gone = shard.rows(where, columns=("id", "content_hash"))
    shard.delete(where)
    _erase(shard)
    return [(r["id"], r["content_hash"]) for r in gone]


def write(
    tgt: Target,
    memories: Sequence[Memory],
    *,
    event: Event = Event.ADDED,
    detail: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> AddResult:
    """Embed and store memories in commits of BATCH_ROWS, prune expired rows, record history and log."""
    now = now or utcnow()
    tgt_action = "import" if event is Event.IMPORTED else "add"
    if tgt.caller.session_id and tgt.access is not Access.OWN and not tgt.caller.is_admin:
        # Sharing grants reads only: a masque never writes another's memory.
        log_only(tgt, tgt_action, Access.DENIED)
        raise policy.denied(tgt.caller, tgt.masque)
    if tgt.opted_out:
        log_only(tgt, tgt_action, Access.OPTED_OUT)
        return AddResult(tgt.masque, False, reason=f"actor {tgt.caller.actor!r} opted out of memory for {tgt.masque!r}")
    embedder = configured_embedder(tgt.masque)
    shard = open_for(tgt)
    if shard is not None:
        shards.check_embedder(shard, embedder.id)
    done: list[Memory] = []
    reused = 0
    failure: BaseException | None = None
    try:
        for start in range(0, len(memories), BATCH_ROWS):
            chunk = memories[start : start + BATCH_ROWS]
            vectors, n_reused = _embed(shard, [m.text for m in chunk], [m.content_hash for m in chunk], embedder)
            reused += n_reused
            if shard is None:
                shard = shards.create_shard(tgt.masque, embedder.id, int(vectors.shape[1]))
            shards.check_dim(shard, vectors, embedder.id)
            shard.add(shards.to_arrow(chunk, vectors, shard.table.schema))
            done.extend(chunk)
    except BaseException as exc:
        if not done:
            raise
        failure = exc  # batches already committed still get their history and log entry below
    memories = done
    stored = [m.id for m in done]
    pruned = _prune_expired(shard, now, tgt.retention) if shard is not None and failure is None else []
    spool.fold()  # a write turn carries the spooled read entries into the log too
    with store.transaction() as conn:
        if shard is not None:
            policy.register_shard(conn, tgt.masque, shard.embedder_id, shard.dim)
        # An add belongs to the session it was tagged with; an import to the session importing it,
        # so replaying an export never counts again in the original session's diff.
        tagged = [m.session_id for m in memories] if event is Event.ADDED else None
        audit.record(conn, tgt.caller, tgt.masque, event, [(m.id, m.content_hash) for m in memories],
                     detail=detail, session_ids=tagged)  # fmt: skip
        audit.record(conn, tgt.caller, tgt.masque, Event.EXPIRED, pruned, detail={"reason": "retention"})
        audit.log(conn, tgt.caller, tgt_action, tgt.masque, tgt.access, ids=stored,
                  detail={**(detail or {}), "pruned": len(pruned)})  # fmt: skip
    if failure is not None:
        raise failure
    if shard is not None:
        from masque.memory.search import maintain

        maintain(shard)
    return AddResult(tgt.masque, True, tuple(stored), reused, len(pruned))


def add(
    texts: str | Sequence[str],
    masque: str | None = None,
    *,
    session_id: str | None = None,
    branch: str | None = None,
    tags: Sequence[str] = (),
    ttl: dt.timedelta | None = None,
    metadata: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
    selection: Selection | None = None,
) -> AddResult:
    """Store one memory per text in `masque`'s shard (default: the session's masque)."""
    texts = [texts] if isinstance(texts, str) else list(texts)  # a lone string is one memory, not its letters
    if not texts or any(not t.strip() for t in texts):
        raise UsageError("nothing to remember: the memory text is empty", hint="pass TEXT, --file F or - for stdin")
    limit = config.limits().max_file_bytes
    for text in texts:
        if len(text) > limit // 4 and len(text.encode("utf-8")) > limit:  # the cheap test first
            raise UsageError(
                f"a memory of {len(text.encode('utf-8')):,} bytes is over the {limit:,}-byte limit",
                hint="store a summary or split it; [limits] max_file_bytes in masque.toml sets the limit",
            )
    tgt = target(masque, session_id=session_id, selection=selection, action="add")
    now = now or utcnow()
    session = tgt.caller.session_id  # only the proven session tags a memory
    memories = [
        Memory(
            id=new_id("mem_"),
            text=text,
            masque=tgt.masque,
            version=tgt.version,
            session_id=session,
            branch=branch,
            tags=tuple(tags),
            actor=tgt.caller.actor,
            created_at=now,
            expires_at=now + ttl if ttl else None,
            content_hash=shards.content_hash(text),
            metadata=dict(metadata or {}),
        )
        for text in texts
    ]
    detail: dict[str, Any] = {"ttl_seconds": int(ttl.total_seconds())} if ttl else {}
    return write(tgt, memories, detail=detail, now=now)


def _rows(
    tgt: Target, view: View, filters: Filters, now: dt.datetime, include_expired: bool, limit: int | None = None
) -> list[Memory]:
    """Matching rows newest first (ids sort by time); with a limit, only the newest are read in full."""
    parts = filters.sql()
    if not include_expired:
        parts.append(live_filter(now, tgt.retention))
    where = " AND ".join(parts) if parts else None
    if limit:
        newest = sorted((r["id"] for r in view.rows(where, columns=("id",))), reverse=True)[:limit]
        if not newest:
            return []
        where = "id IN (" + ", ".join(shards.sql_str(i) for i in newest) + ")"
    found = [shards.memory_from_row(r) for r in view.rows(where)]
    found.sort(key=lambda m: m.id, reverse=True)
    return found


def list_memories(
    masque: str | None = None,
    *,
    filters: Filters = Filters(),
    limit: int | None = 50,
    include_expired: bool = False,
    now: dt.datetime | None = None,
    selection: Selection | None = None,
) -> list[Memory]:
    """Live memories of a shard, newest first."""
    tgt = target(masque, selection=selection, action="list")
    if not check_read(tgt, "list"):
        return []
    view = open_view(tgt.masque, expected=tgt.settings.has_data)
    found = _rows(tgt, view, filters, now or utcnow(), include_expired, limit) if view else []
    log_only(tgt, "list", tgt.access, ids=[m.id for m in found], detail=filters.to_json())
    return found


def get(
    masque: str | None, memory_id: str, *, now: dt.datetime | None = None, selection: Selection | None = None
) -> Memory:
    tgt = target(masque, selection=selection, action="get")
    found = []
    if check_read(tgt, "get"):
        view = open_view(tgt.masque, expected=tgt.settings.has_data)
        found = _rows(tgt, view, Filters(ids=(memory_id,)), now or utcnow(), False) if view else []
        log_only(tgt, "get", tgt.access, ids=[m.id for m in found])
    if not found:
        raise NotFound(
            f"no memory {memory_id} in the shard of {tgt.masque!r} (it may have expired or been forgotten)",
            hint=f"`masque memory list {tgt.masque}` shows live memories; "
            f"`masque memory history {tgt.masque} {memory_id}` shows its changes",
        )
    return found[0]


def forget(
    masque: str | None, filters: Filters, *, reason: str = "forget", selection: Selection | None = None
) -> RemoveResult:
    """Delete the memories matching `filters` (at least one filter: never everything by accident).

    The words are gone from the store afterwards, not just hidden: see `Shard.purge`.
    """
    if filters.empty:
        raise UsageError(
            "forget needs a filter: memory ids, --session, --branch, --tag or --actor",
            hint="to drop a whole shard use `masque memory forget MASQUE --actor NAME` per actor, or prune",
        )
    tgt = target(masque, selection=selection, action="forget")
    policy.require_owner(tgt.caller, tgt.masque, "forget")
    shard = open_for(tgt)
    gone: list[dict[str, Any]] = []
    if shard is not None:
        where = " AND ".join(filters.sql())
        gone = shard.rows(where, columns=("id", "content_hash"))
        if gone:
            shard.delete(where)
            _erase(shard)
    spool.fold()
    with store.transaction() as conn:
        audit.record(conn, tgt.caller, tgt.masque, Event.FORGOTTEN, [(r["id"], r["content_hash"]) for r in gone],
                     detail={"reason": reason})  # fmt: skip
        audit.log(
            conn, tgt.caller, "forget", tgt.masque, tgt.access, ids=[r["id"] for r in gone], detail=filters.to_json()
        )
    return RemoveResult(tuple(r["id"] for r in gone), {tgt.masque: len(gone)})


def prune(
    masque: str | None = None,
    *,
    older_than: dt.timedelta | None = None,
    now: dt.datetime | None = None,
    selection: Selection | None = None,
) -> RemoveResult:
    """Delete expired memories (and, with `older_than`, any older than that) from one or every shard."""
    now = now or utcnow()
    names = [masque] if masque else default_shards(selection=selection)
    removed: list[str] = []
    per: dict[str, int] = {}
    for name in names:
        tgt = target(name, selection=selection, action="prune")
        policy.require_owner(tgt.caller, tgt.masque, "prune")
        shard = open_for(tgt)
        if shard is None:
            continue
        gone = _prune_expired(shard, now, tgt.retention)
        old: list[tuple[str, str | None]] = []
        if older_than is not None:
            where = f"created_at < {shards.sql_time(now - older_than)}"
            old = [(r["id"], r["content_hash"]) for r in shard.rows(where, columns=("id", "content_hash"))]
            if old:
                shard.delete(where)
        if gone or old:
            _erase(shard)
        with store.transaction() as conn:
            audit.record(conn, tgt.caller, tgt.masque, Event.EXPIRED, gone, detail={"reason": "retention"})
            seconds = older_than.total_seconds() if older_than else None
            audit.record(
                conn, tgt.caller, tgt.masque, Event.FORGOTTEN, old, detail={"reason": "older_than", "seconds": seconds}
            )
            ids = [i for i, _ in gone + old]
            audit.log(conn, tgt.caller, "prune", tgt.masque, tgt.access, ids=ids)
        removed.extend(i for i, _ in gone + old)
        per[tgt.masque] = len(gone) + len(old)
    return RemoveResult(tuple(removed), per)


def history(masque: str | None, memory_id: str, *, selection: Selection | None = None) -> list[audit.HistoryEntry]:
    tgt = target(masque, selection=selection, action="history")
    if not check_read(tgt, "history"):
        return []
    from masque.memory import access

    with store.transaction() as conn:
        seen = access.visible_actors(conn, tgt.caller)  # a more trusted actor's changes stay hidden
        found = [
            h for h in audit.history(conn, memory_id) if h.masque == tgt.masque and (seen is None or h.actor in seen)
        ]
        audit.log(conn, tgt.caller, "history", tgt.masque, tgt.access, ids=[memory_id] if found else [])
    if not found:
        raise NotFound(
            f"memory {memory_id} has no history in the shard of {tgt.masque!r}",
            hint=f"check the id with `masque memory list {tgt.masque}`",
        )
    return found
