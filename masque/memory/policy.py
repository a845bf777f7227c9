"""Who may read and write which shard: sync modes, the sharing whitelist, opt-outs and retention.

A caller is whoever `masque.memory.access` proves: inside a session (proven by `MASQUE_TOKEN`) the
session's actor wearing its masque; outside one, the operator (the key-proven actor, else the
founder). Every verb first applies the ring rule (access.check). Then, inside a session a masque
reads its own shard; another shard only when that shard is in `scoped_share` mode and whitelists the
reader, or when the actor is in the admin ring. Outside a session there is no reading masque, so the
operator reads any shard its ring qualifies for directly; every read is logged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from masque import config, store
from masque.durations import parse_duration
from masque.errors import Refused, UsageError
from masque.memory.shards import table_name

if TYPE_CHECKING:
    import duckdb

    from masque.model import Masque
    from masque.trust.rings import Actor, Selection


class Mode(str, Enum):
    """Sync modes from seed 000 section 6."""

    ISOLATED = "isolated"  # only the masque itself (and admins) read the shard
    SCOPED_SHARE = "scoped_share"  # whitelisted masques may read it too
    GLOBAL_SNAPSHOT = "global_snapshot"  # condensed into ai_memory_summary by `memory snapshot`


class Access(str, Enum):
    """Why a read was allowed (or not): recorded in the compliance log."""

    OWN = "own"
    SHARED = "shared"
    ADMIN = "admin"
    OPERATOR = "operator"
    DENIED = "denied"
    OPTED_OUT = "opted_out"


@dataclass(frozen=True)
class Caller:
    actor: str
    ring: str | None
    session_id: str | None = None
    masque: str | None = None
    version: str | None = None
    source_path: str | None = None
    who: Actor | None = None  # the proven actor (its current ring and any open disapproval)
    session_masque_ring: str | None = None  # the ring the session's masque was worn at

    @property
    def is_admin(self) -> bool:
        return self.ring == "admin"


@dataclass(frozen=True)
class ShardSettings:
    masque: str
    mode: Mode
    embedder: str | None
    dim: int | None
    readers: tuple[str, ...]

    @property
    def has_data(self) -> bool:
        """The registry saw a write, so the LanceDB table must exist."""
        return self.embedder is not None


def masque_key(name: str) -> str:
    """Registry key of a masque reference (`Name@1.2.0` -> `name`)."""
    from masque.model import Ref

    return Ref.parse(name).name.casefold()


def current_caller(conn: duckdb.DuckDBPyConnection | None = None, selection: Selection | None = None) -> Caller:
    """The proven caller (see masque.memory.access): a token-proven session, else the operator."""
    from masque.memory import access

    if conn is None:
        with store.connect(read_only=True) as own:
            return current_caller(own, selection)
    return access.caller(conn, selection)


def shard_settings(conn: duckdb.DuckDBPyConnection, masque: str) -> ShardSettings:
    row = conn.execute("SELECT mode, embedder, dim FROM memory_shards WHERE masque = ?", [masque]).fetchone()
    readers = [
        r[0]
        for r in conn.execute("SELECT reader FROM memory_shares WHERE owner = ? ORDER BY reader", [masque]).fetchall()
    ]
    if not row:
        return ShardSettings(masque, Mode.ISOLATED, None, None, tuple(readers))
    return ShardSettings(masque, Mode(row[0]), row[1], row[2], tuple(readers))


def all_settings() -> list[ShardSettings]:
    with store.connect(read_only=True) as conn:
        names = [r[0] for r in conn.execute("SELECT masque FROM memory_shards ORDER BY masque").fetchall()]
        return [shard_settings(conn, n) for n in names]


def read_access(caller: Caller, settings: ShardSettings) -> Access:
    """Why `caller` may read the shard, or Access.DENIED."""
    if caller.session_id is None:
        return Access.OPERATOR
    if caller.masque == settings.masque:
        return Access.OWN
    if settings.mode is Mode.SCOPED_SHARE and caller.masque in settings.readers:
        return Access.SHARED
    if caller.is_admin:
        return Access.ADMIN
    return Access.DENIED


def denied(caller: Caller, masque: str) -> Refused:
    return Refused(
        f"masque {caller.masque!r} (session {caller.session_id}) may not read the memory of {masque!r}: "
        f"that shard is not shared with it",
        reason="memory_not_shared",
        hint=f"the owner can run `masque memory mode {masque} scoped_share` and "
        f"`masque memory share {masque} --with {caller.masque}`",
    )


def require_owner(caller: Caller, masque: str, what: str) -> None:
    """Settings and deletions of a shard belong to its masque, its admins and the operator."""
    if caller.session_id is not None and caller.masque != masque and not caller.is_admin:
        raise Refused(
            f"masque {caller.masque!r} (session {caller.session_id}) may not {what} the memory of {masque!r}",
            reason="not_shard_owner",
            hint="run it outside the session, from a session of that masque, or as an admin",
        )


def is_opted_out(conn: duckdb.DuckDBPyConnection, actor: str, masque: str) -> bool:
    row = conn.execute("SELECT 1 FROM memory_optouts WHERE actor = ? AND masque = ?", [actor, masque]).fetchone()
    return row is not None


def register_shard(conn: duckdb.DuckDBPyConnection, masque: str, embedder: str | None, dim: int | None) -> None:
    """Insert or complete the registry row (embedder and dim are set once, or by reembed)."""
    conn.execute(
        "INSERT INTO memory_shards (masque, table_name, embedder, dim) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (masque) DO UPDATE SET embedder = coalesce(memory_shards.embedder, excluded.embedder), "
        "dim = coalesce(memory_shards.dim, excluded.dim)",
        [masque, table_name(masque), embedder, dim],
    )


def set_embedder(conn: duckdb.DuckDBPyConnection, masque: str, embedder: str, dim: int, actor: str) -> None:
    register_shard(conn, masque, embedder, dim)
    conn.execute(
        "UPDATE memory_shards SET embedder = ?, dim = ?, updated_at = now(), updated_by = ? WHERE masque = ?",
        [embedder, dim, actor, masque],
    )


def set_mode(masque: str, mode: Mode, caller: Caller) -> ShardSettings:
    require_owner(caller, masque, "change the mode of")
    with store.transaction() as conn:
        register_shard(conn, masque, None, None)
        conn.execute(
            "UPDATE memory_shards SET mode = ?, updated_at = now(), updated_by = ? WHERE masque = ?",
            [mode.value, caller.actor, masque],
        )
        return shard_settings(conn, masque)


def share(owner: str, reader: str, caller: Caller, *, grant: bool = True) -> ShardSettings:
    """Add (or with grant=False remove) `reader` on the whitelist of `owner`'s shard."""
    require_owner(caller, owner, "share" if grant else "unshare")
    if owner == reader:
        raise UsageError(f"masque {owner!r} always reads its own memory; name another masque with --with")
    with store.transaction() as conn:
        register_shard(conn, owner, None, None)
        if grant:
            conn.execute(
                "INSERT INTO memory_shares (owner, reader, created_by) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [owner, reader, caller.actor],
            )
        else:
            conn.execute("DELETE FROM memory_shares WHERE owner = ? AND reader = ?", [owner, reader])
        return shard_settings(conn, owner)


def set_opt_out(masque: str, actor: str, *, out: bool) -> bool:
    """Record (or lift) `actor`'s opt-out of `masque`'s memory. Returns True when something changed."""
    with store.transaction() as conn:
        before = is_opted_out(conn, actor, masque)
        if out:
            conn.execute(
                "INSERT INTO memory_optouts (actor, masque) VALUES (?, ?) ON CONFLICT DO NOTHING", [actor, masque]
            )
        else:
            conn.execute("DELETE FROM memory_optouts WHERE actor = ? AND masque = ?", [actor, masque])
        return before != out


def _masque_attributes(masque: str, version: str | None, caller: Caller, found: Sequence[Masque]) -> Mapping[str, Any]:
    """`attributes` of the masque file: the session's own file, else the newest of `found` (or the exact version)."""
    if caller.masque == masque and caller.source_path and Path(caller.source_path).is_file():
        from masque.masques.loader import LoadProblem, load_file

        try:
            data = load_file(caller.source_path).data
        except LoadProblem:
            data = None
        attrs = data.get("attributes") if isinstance(data, dict) else None
        return attrs if isinstance(attrs, dict) else {}
    from masque.masques import registry

    exact = [m for m in found if m.version == version]
    candidates = exact or list(found)
    if not candidates:
        return {}  # a shard whose masque file is gone uses the config window
    try:
        best = max(candidates, key=lambda m: registry.version_key(m.version))
    except TypeError:  # a semver and a non-semver version of one name
        best = max(candidates, key=lambda m: m.version)
    return best.attributes


def retention_for(
    masque: str, caller: Caller, version: str | None = None, found: Sequence[Masque] = ()
) -> dt.timedelta | None:
    """The retention window: `attributes.memory_retention`, else [memory.masques.NAME] / [memory] retention.

    `found`: the valid files of this masque on the search path (access.masque_files).
    """
    raw: Any = _masque_attributes(masque, version, caller, found).get("memory_retention")
    where = f"attributes.memory_retention of masque {masque!r}"
    if raw is None:
        section = config.section("memory")
        per = section.get("masques", {})
        per_masque = per.get(masque, {}) if isinstance(per, dict) else {}
        raw = per_masque.get("retention") if isinstance(per_masque, dict) else None
        where = f"config [memory.masques.{masque}] retention"
        if raw is None:
            raw = section.get("retention")
            where = "config [memory] retention"
    if raw is None or raw in ("forever", "none", ""):
        return None
    try:
        return parse_duration(str(raw))
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}", hint=exc.hint) from None
