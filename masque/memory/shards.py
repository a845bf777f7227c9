"""LanceDB shards: one table `mask_memory_{name}` per masque under `$MASQUE_HOME/memory/`.

The table schema carries the embedder id and dimension as schema metadata, so a shard describes
itself even without the DuckDB registry. Every write is one LanceDB commit: a batch is either wholly
in the table or not at all (what makes `kill -9` during an import safe). LanceDB commits are
optimistic; appends merge on their own, and the rare conflicts of deletes and overwrites are retried.
This is the only module (with search.py) that touches lancedb, always imported inside functions;
search, list and get read through lance instead (`masque.memory.view`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from masque import config
from masque.errors import MasqueError, StoreBusy, StoreError, UsageError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

TABLE_PREFIX = "mask_memory_"
META_EMBEDDER = b"masque.embedder"
META_DIM = b"masque.dim"
COLUMNS = (
    "id", "text", "masque", "version", "session_id", "branch", "tags", "actor",
    "created_at", "expires_at", "content_hash", "metadata",
)  # fmt: skip
_RETRY_DEADLINE = 30.0
T = TypeVar("T")


@dataclass(frozen=True)
class Memory:
    """One stored memory with its provenance."""

    id: str
    text: str
    masque: str
    version: str | None
    session_id: str | None
    branch: str | None
    tags: tuple[str, ...]
    actor: str | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    content_hash: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "masque": self.masque,
            "version": self.version,
            "session_id": self.session_id,
            "branch": self.branch,
            "tags": list(self.tags),
            "actor": self.actor,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "content_hash": self.content_hash,
            "metadata": dict(self.metadata),
        }


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def table_name(masque: str) -> str:
    """`mask_memory_{name}`; names with characters outside [a-z0-9_] get a short hash to stay unique."""
    key = masque.casefold()
    safe = re.sub(r"[^a-z0-9_]", "_", key)
    if safe != key:
        safe = f"{safe}_{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    return TABLE_PREFIX + safe


def sql_str(value: str) -> str:
    """A SQL string literal for LanceDB filters."""
    return "'" + value.replace("'", "''") + "'"


def sql_time(value: dt.datetime) -> str:
    """A timestamp literal in UTC (LanceDB reads naive literals as UTC)."""
    utc = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return f"timestamp '{utc.isoformat(sep=' ')}'"


def arrow_schema(dim: int, embedder_id: str) -> pa.Schema:
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("text", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dim)),
            pa.field("masque", pa.string()),
            pa.field("version", pa.string()),
            pa.field("session_id", pa.string()),
            pa.field("branch", pa.string()),
            pa.field("tags", pa.list_(pa.string())),
            pa.field("actor", pa.string()),
            pa.field("created_at", ts),
            pa.field("expires_at", ts),
            pa.field("content_hash", pa.string()),
            pa.field("metadata", pa.string()),
        ],
        metadata={META_EMBEDDER: embedder_id.encode(), META_DIM: str(dim).encode()},
    )


def to_arrow(memories: Sequence[Memory], vectors: np.ndarray, schema: pa.Schema) -> pa.Table:
    """Rows + vectors -> an Arrow table in the shard schema (one commit's worth)."""
    import pyarrow as pa

    dim = vectors.shape[1] if len(vectors) else int(schema.metadata[META_DIM])
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    columns: dict[str, Any] = {
        "id": [m.id for m in memories],
        "text": [m.text for m in memories],
        "vector": pa.FixedSizeListArray.from_arrays(flat, dim),
        "masque": [m.masque for m in memories],
        "version": [m.version for m in memories],
        "session_id": [m.session_id for m in memories],
        "branch": [m.branch for m in memories],
        "tags": [list(m.tags) for m in memories],
        "actor": [m.actor for m in memories],
        "created_at": [m.created_at for m in memories],
        "expires_at": [m.expires_at for m in memories],
        "content_hash": [m.content_hash for m in memories],
        "metadata": [json.dumps(dict(m.metadata), sort_keys=True) if m.metadata else None for m in memories],
    }
    return pa.table(columns, schema=schema)


def memory_from_row(row: Mapping[str, Any]) -> Memory:
    meta = row.get("metadata")
    return Memory(
        id=row["id"],
        text=row["text"],
        masque=row["masque"],
        version=row.get("version"),
        session_id=row.get("session_id"),
        branch=row.get("branch"),
        tags=tuple(row.get("tags") or ()),
        actor=row.get("actor"),
        created_at=row["created_at"],
        expires_at=row.get("expires_at"),
        content_hash=row["content_hash"],
        metadata=json.loads(meta) if meta else {},
    )


def is_conflict(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("conflict", "retryable", "concurrent", "was modified"))


def retry(what: str, fn: Callable[[], T], refresh: Callable[[], Any] | None = None) -> T:
    """Run one LanceDB commit, retrying optimistic-concurrency conflicts with jittered backoff.

    `refresh` moves the table handle to the newest version first: a handle left on the version the
    conflict happened at would replay the same losing commit.
    """
    deadline = time.monotonic() + _RETRY_DEADLINE
    delay = 0.005
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_conflict(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.25)
            if refresh is not None:
                refresh()


def lance_message(exc: BaseException) -> str:
    """The useful head of a LanceDB error (they end in long lists of Rust source locations)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = text.split(", /rustc/")[0]
    return text if len(text) <= 300 else text[:299] + "…"


def _is_damage(exc: BaseException) -> bool:
    return isinstance(exc, OSError) or "LanceError" in str(exc) or "lance error" in str(exc)


def is_transport(exc: BaseException) -> bool:
    """An object store that did not answer (connection, DNS, TLS, credentials), not a damaged shard."""
    text = str(exc)
    return any(word in text for word in ("RetryError", "ConnectError", "Client error with status", "Forbidden"))


def damaged(masque: str, where: str, exc: BaseException) -> StoreError:
    """A shard whose files cannot be read as a Lance table."""
    return StoreError(
        f"memory shard {table_name(masque)} of masque {masque!r} is damaged ({where}): {lance_message(exc)}",
        hint=rebuild_hint(masque),
    )


def missing(masque: str, where: str) -> StoreError:
    """The store records memories for `masque` but its shard is not where memory lives."""
    from masque import store

    if store.shared_url() is not None and not config.memory_storage().remote:
        # Several servers share the store but each has its own memory directory: not damage, a setup gap.
        return StoreError(
            f"memory shard {table_name(masque)} of masque {masque!r} is not on this machine ({where}): the "
            "shared store records memories that another server keeps in its own memory directory",
            hint='with a shared [store] url, keep memory on shared object storage too ([memory] uri = "s3://..."); '
            "see docs/store.md",
        )
    return StoreError(
        f"memory shard {table_name(masque)} of masque {masque!r} is missing ({where})", hint=rebuild_hint(masque)
    )


def rebuild_hint(masque: str) -> str:
    return (
        f"move the damaged shard aside (its directory, or its prefix in the bucket) and re-import your last export: "
        f"`masque memory import memories.jsonl --masque {masque}` "
        f"(exports are made with `masque memory export {masque} -o memories.jsonl`)"
    )


class Described(Protocol):
    """What a shard says about itself: a `Shard` (LanceDB, read-write) or a `view.View` (lance, read-only)."""

    masque: str
    embedder_id: str | None
    dim: int

    @property
    def name(self) -> str: ...


@contextmanager
def guarded(masque: str, location: str) -> Iterator[None]:
    """Turn Lance I/O failures (a data file gone, a torn file) on `masque`'s shard into one clear StoreError."""
    name = table_name(masque)
    try:
        yield
    except Exception as exc:
        if isinstance(exc, MasqueError) or not _is_damage(exc):
            raise
        if is_conflict(exc):
            raise StoreBusy(
                f"memory shard {name} of masque {masque!r} stayed busy: concurrent writers "
                f"kept winning for {_RETRY_DEADLINE:g}s ({lance_message(exc)})",
                hint="run the command again",
            ) from None
        if location.startswith("s3://") and is_transport(exc):
            raise unreachable(config.memory_storage(), exc) from None
        raise damaged(masque, location, exc) from None


def read_schema_meta(schema: pa.Schema) -> tuple[str | None, int]:
    """The embedder id and vector dimension a shard's schema records."""
    meta = schema.metadata or {}
    embedder_id = meta.get(META_EMBEDDER, b"").decode() or None
    dim = int(meta[META_DIM]) if META_DIM in meta else int(schema.field("vector").type.list_size)
    return embedder_id, dim


class Shard:
    """An open LanceDB table for one masque."""

    def __init__(self, masque: str, table: Any, location: str) -> None:
        self.masque = masque
        self.table = table
        self.location = location  # a local path or an s3:// URI, for messages
        self.embedder_id, self.dim = read_schema_meta(table.schema)

    @property
    def name(self) -> str:
        return table_name(self.masque)

    def guard(self) -> AbstractContextManager[None]:
        return guarded(self.masque, self.location)

    def add(self, batch: pa.Table) -> None:
        with self.guard():
            retry(f"add to {self.name}", lambda: self.table.add(batch), self.table.checkout_latest)

    def delete(self, where: str) -> None:
        with self.guard():
            retry(f"delete from {self.name}", lambda: self.table.delete(where), self.table.checkout_latest)

    def purge(self) -> None:
        """Make deleted rows unrecoverable from the store, not just hidden.

        A LanceDB delete only marks rows deleted: their text stays in the data files, in the indices
        and in every older version (time travel). So: rewrite the live rows into a fresh fragment
        (the old fragments, deleted rows and all, drop out), rebuild the full-text index, drop the
        vector index (it holds their vectors; `search.erase` rebuilds it), and remove every older
        version with its files. Costs a rewrite of the shard (docs/memory.md, "Retention"); a reader
        still on an older version at that instant fails and can retry.
        """
        with self.guard():
            retry(f"purge {self.name}", self._purge, self.table.checkout_latest)

    def _purge(self) -> None:
        from lancedb.index import FTS

        if not self.materialized():
            # One commit: every live row is rewritten (a no-op update), so no fragment keeps a deleted
            # row. Compaction cannot be trusted with this: it never merges indexed with unindexed fragments.
            self.table.update(values_sql={"id": "id"})
        if not self.materialized():
            raise StoreError(
                f"memory shard {self.name} of masque {self.masque!r}: deleted rows could not be rewritten out "
                f"of its files ({self.location})",
                hint="run the command again; `masque memory stats` shows the shard",
            )
        for ix in self.table.list_indices():
            if ix.index_type == "FTS":
                self.table.create_index("text", config=FTS(), replace=True)  # the old one lists their words
            elif ix.columns == ["vector"]:
                self.table.drop_index(ix.name)
        keep_only_latest(self.table)

    def materialized(self) -> bool:
        """No deleted row is left in the data files: at most one fragment, holding exactly the live rows."""
        frags = self.table.stats()["fragment_stats"]
        if frags["num_fragments"] == 0:
            return True
        return bool(frags["num_fragments"] == 1 and int(frags["lengths"]["max"]) == self.count())

    def count(self, where: str | None = None) -> int:
        with self.guard():
            return int(self.table.count_rows(where)) if where else int(self.table.count_rows())

    def rows(
        self, where: str | None = None, *, columns: Sequence[str] = COLUMNS, limit: int | None = None
    ) -> list[dict[str, Any]]:
        query = self.table.search().select(list(columns))
        if where:
            query = query.where(where)
        query = query.limit(limit) if limit else query.limit(self.count() or 1)
        with self.guard():
            return list(query.to_arrow().to_pylist())

    def iter_batches(self, where: str | None = None, batch_rows: int = 10_000) -> Iterator[list[dict[str, Any]]]:
        """All matching rows (oldest first by id) in batches, for export and re-embedding."""
        rows = self.rows(where)
        rows.sort(key=lambda r: r["id"])
        for start in range(0, len(rows), batch_rows):
            yield rows[start : start + batch_rows]

    def vectors_for_hashes(self, hashes: Sequence[str]) -> dict[str, list[float]]:
        """Stored vectors by content hash, so unchanged text is never embedded twice."""
        if not hashes:
            return {}
        found: dict[str, list[float]] = {}
        unique = sorted(set(hashes))
        for start in range(0, len(unique), 500):
            part = ", ".join(sql_str(h) for h in unique[start : start + 500])
            for row in self.rows(f"content_hash IN ({part})", columns=("content_hash", "vector")):
                found.setdefault(row["content_hash"], row["vector"])
        return found

    def version(self) -> int:
        return int(self.table.version)

    def indices(self) -> list[Any]:
        return list(self.table.list_indices())


def optimize(table: Any, keep: dt.timedelta) -> None:
    """Compact, fold new rows into the indices, and remove the versions older than `keep`.

    `keep` of zero is what erasing needs (LanceDB warns that readers on an older version then fail;
    the warning is for us, not the user, so it is silenced here).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*cleanup_older_than", category=UserWarning)
        table.optimize(cleanup_older_than=keep)


def keep_only_latest(table: Any) -> None:
    """Remove every version but the newest (optimize commits a version of its own: a second pass drops it)."""
    for _ in range(3):
        optimize(table, dt.timedelta(0))
        if len(table.list_versions()) == 1:
            return


def lancedb_module() -> Any:
    """Import lancedb, skipping the REST namespace client it pulls in but local tables never use.

    `lance_namespace` imports the models of its generated HTTP client, and that package's
    `__init__` also loads every API class (about 0.8 s of pydantic decorators on this machine),
    which is more than half of a cold `masque memory search`. Registering the package without
    running its `__init__` lets the models import on their own. If a future release needs the
    package for real, the plain import below runs instead.
    """
    import sys

    if "lancedb" in sys.modules:
        return sys.modules["lancedb"]
    name = "lance_namespace_urllib3_client"
    if name not in sys.modules:
        import importlib.util
        import types

        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations is not None:
            shell = types.ModuleType(name)
            shell.__path__ = list(spec.submodule_search_locations)
            shell.__spec__ = spec
            shell.__file__ = spec.origin
            sys.modules[name] = shell
            try:
                import lancedb

                return lancedb
            except Exception:
                for key in [
                    k for k in sys.modules if k == name or k.startswith((name + ".", "lance_namespace", "lancedb"))
                ]:
                    del sys.modules[key]
    import lancedb

    return lancedb


_connections: dict[tuple[str, ...], Any] = {}


def _db() -> Any:
    """The LanceDB connection for the memory location, one per process (tables are opened per operation)."""
    storage = config.memory_storage()
    if storage.remote:
        return _remote_db(storage)
    path = Path(storage.uri)
    cached = _connections.get((storage.uri,))
    if cached is not None and path.is_dir():
        return cached
    lancedb = lancedb_module()
    config.ensure_home()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _connections[(storage.uri,)] = db = lancedb.connect(storage.uri)
    return db


def _remote_db(storage: config.MemoryStorage) -> Any:
    # Keyed by every option so a changed endpoint or key is a new connection; the key stays in memory only.
    key = (storage.uri, *sorted(f"{k}={v}" for k, v in storage.options.items()))
    cached = _connections.get(key)
    if cached is not None:
        return cached
    lancedb = lancedb_module()
    try:
        db = lancedb.connect(storage.uri, storage_options=dict(storage.options))
    except Exception as exc:
        raise unreachable(storage, exc) from None
    _connections[key] = db
    return db


def unreachable(storage: config.MemoryStorage, exc: BaseException) -> StoreError:
    """The object store did not answer as a store: name the URI and the settings that fix it."""
    return StoreError(
        f"memory store {storage.where()} refused or did not answer: {_object_store_reason(exc)}",
        hint=f"check [memory] uri and [memory.s3] endpoint, region and allow_http in {config.config_file()}, "
        "that the bucket exists, and the AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile)",
    )


def _object_store_reason(exc: BaseException) -> str:
    """The cause inside an object_store error (a Rust debug dump several hundred characters long)."""
    text = str(exc)
    for pattern in (r'ConnectError\("([^"]+)"[^)]*message: "([^"]+)"', r'message: "([^"]+)"', r"<Code>([^<]+)</Code>"):
        found = re.search(pattern, text)
        if found:
            return ": ".join(found.groups())
    for marker in ("Client error with status ", "status: "):
        at = text.find(marker)
        if at >= 0:
            return text[at : at + 80].split(",")[0]
    return lance_message(exc)


def remote() -> bool:
    return config.memory_storage().remote


def shard_location(masque: str) -> str:
    """Where the shard's files are: a local path, or the object URI (for messages)."""
    storage = config.memory_storage()
    if storage.remote:
        return f"{storage.uri}/{table_name(masque)}.lance"
    return str(Path(storage.uri) / f"{table_name(masque)}.lance")


def shard_path(masque: str) -> Path:
    """The local shard directory (local memory only; see `shard_exists` for either)."""
    return config.memory_dir() / f"{table_name(masque)}.lance"


def shard_exists(masque: str) -> bool:
    """Whether the shard was ever written; local memory answers from the file system without lancedb."""
    if not remote():
        return shard_path(masque).exists()
    return table_name(masque) in list_shard_names()


def _open_table(masque: str) -> Any | None:
    """The LanceDB table, or None when it does not exist (a local dir missing, an object prefix empty)."""
    storage = config.memory_storage()
    if not storage.remote:
        return _db().open_table(table_name(masque)) if shard_path(masque).exists() else None
    db = _db()
    try:
        return db.open_table(table_name(masque))
    except ValueError as exc:
        if "was not found" in str(exc):
            return None
        raise unreachable(storage, exc) from None
    except OSError as exc:
        raise unreachable(storage, exc) from None


def open_shard(masque: str, *, expected: bool = False) -> Shard | None:
    """The shard of `masque`, or None when it was never written.

    `expected` says the registry knows the shard has data: then a missing table is damage, not news.
    """
    where = shard_location(masque)
    try:
        table = _open_table(masque)
        if table is None:
            if expected:
                raise missing(masque, where)
            return None
        shard = Shard(masque, table, where)
        shard.count()  # touch the manifest and data files now, so damage shows here and not mid-command
    except MasqueError:
        raise
    except Exception as exc:
        raise damaged(masque, where, exc) from None
    return shard


def create_shard(masque: str, embedder_id: str, dim: int) -> Shard:
    """Create (or, when another process won the race, open) the shard with its FTS index."""
    db = _db()
    schema = arrow_schema(dim, embedder_id)
    table = retry("create shard", lambda: db.create_table(table_name(masque), schema=schema, exist_ok=True))
    ensure_fts(table)
    return Shard(masque, table, shard_location(masque))


def ensure_fts(table: Any) -> None:
    """The full-text index on `text`; LanceDB searches rows added after it without a rebuild."""
    lancedb_module()
    from lancedb.index import FTS

    if any(ix.index_type == "FTS" for ix in table.list_indices()):
        return
    try:
        retry(
            "create FTS index", lambda: table.create_index("text", config=FTS(), replace=False), table.checkout_latest
        )
    except Exception:
        # Another process creating the shard at the same moment may have won the race.
        table.checkout_latest()
        if not any(ix.index_type == "FTS" for ix in table.list_indices()):
            raise


def overwrite_shard(shard: Shard, batch: pa.Table) -> Shard:
    """Replace the whole table in one commit (re-embedding); older versions stay until optimize."""
    db = _db()
    table = retry("overwrite shard", lambda: db.create_table(shard.name, data=batch, mode="overwrite"))
    ensure_fts(table)
    return Shard(shard.masque, table, shard.location)


def check_embedder(shard: Described, embedder_id: str) -> None:
    """A shard answers only queries embedded the way its vectors were."""
    if shard.embedder_id and shard.embedder_id != embedder_id:
        raise UsageError(
            f"memory shard {shard.name} was embedded with {shard.embedder_id} (dim {shard.dim}) but the "
            f"configured embedder for {shard.masque!r} is {embedder_id}",
            hint=f"run `masque memory reembed {shard.masque}` to re-embed it, or set [memory] embedder back",
        )


def check_dim(shard: Described, vectors: np.ndarray, embedder_id: str) -> None:
    if len(vectors) and vectors.shape[1] != shard.dim:
        raise UsageError(
            f"embedder {embedder_id} returned {vectors.shape[1]}-dimensional vectors but memory shard "
            f"{shard.name} holds {shard.dim}-dimensional ones",
            hint=f"run `masque memory reembed {shard.masque}` to rebuild the shard with the new dimension",
        )


def list_shard_names() -> list[str]:
    """Table names present (`mask_memory_*`): the local dir's entries, or the tables under the URI."""
    storage = config.memory_storage()
    if not storage.remote:
        root = Path(storage.uri)
        if not root.is_dir():
            return []
        return sorted(p.name[: -len(".lance")] for p in root.glob(f"{TABLE_PREFIX}*.lance"))
    db = _db()
    names: list[str] = []
    token: str | None = None
    try:
        while True:
            page = db.list_tables(page_token=token, limit=1000)
            names.extend(n for n in page.tables if n.startswith(TABLE_PREFIX))
            token = page.page_token
            if not token or not page.tables:
                break
    except Exception as exc:
        raise unreachable(storage, exc) from None
    return sorted(set(names))


def size_on_disk(shard: Shard) -> int:
    """Bytes of the shard's files; on an object store, the data files LanceDB reports (no listing)."""
    if shard.location.startswith("s3://"):
        with shard.guard():
            return int(shard.table.stats()["total_bytes"])
    return sum(p.stat().st_size for p in Path(shard.location).rglob("*") if p.is_file())
