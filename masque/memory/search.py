"""Hybrid search (vector + LanceDB full-text, fused by reciprocal rank) and index upkeep.

Vector and full-text results are ranked separately over the live rows and fused with reciprocal rank
fusion (score = sum of 1 / (60 + rank)), so a memory that matches both the words and the meaning of
the query comes first. Once a shard passes `[memory] index_threshold` rows (default 20,000) an IVF_SQ
vector index is built automatically; below that exact search is fast enough and always right.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from masque import config
from masque.durations import utcnow
from masque.errors import UsageError
from masque.memory import ops, shards
from masque.memory.embedders import configured_embedder
from masque.memory.policy import Access
from masque.memory.shards import Memory, Shard
from masque.memory.view import View, open_view

if TYPE_CHECKING:
    from masque.trust.rings import Selection

RRF_K = 60  # the constant from Cormack et al.; damps the weight of the very top ranks
DEFAULT_INDEX_THRESHOLD = 20_000
ROWS_PER_PARTITION = 400
OPTIMIZE_UNINDEXED = 5_000  # fold new rows into the indices once this many are pending
COMPACT_FRAGMENTS = 64  # every add is a fragment; many small ones slow every query down
# Each commit is a version; optimize() drops those older than this, so versions stay bounded (LanceDB's
# own default keeps a week: a busy 60k-row shard held 66 versions, 300 MB). Long enough for any reader.
KEEP_VERSIONS = dt.timedelta(minutes=10)
# A vector hit sharing (almost) nothing with the query is noise: with the hashing embedder an unrelated
# text scores ~0 and would otherwise fill every result list. Text matches are never cut.
MIN_SIMILARITY = 0.05
_SEARCH_COLUMNS = list(shards.COLUMNS)


@dataclass(frozen=True)
class Hit:
    """One search result: the memory, its fused score and how each ranker saw it."""

    memory: Memory
    score: float
    vector_rank: int | None
    text_rank: int | None
    distance: float | None
    text_score: float | None

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.memory.id, "text": self.memory.text, "score": round(self.score, 6)}
        out.update({k: v for k, v in self.memory.to_json().items() if k not in out})
        out.update(
            vector_rank=self.vector_rank,
            text_rank=self.text_rank,
            vector_distance=None if self.distance is None else round(self.distance, 6),
            text_score=None if self.text_score is None else round(self.text_score, 6),
        )
        return out


@dataclass(frozen=True)
class SearchResult:
    masque: str
    access: Access
    hits: tuple[Hit, ...]

    def to_json(self) -> dict[str, Any]:
        return {"masque": self.masque, "access": self.access.value, "results": [h.to_json() for h in self.hits]}


def _setting(name: str, default: int) -> int:
    value = config.section("memory").get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"config [memory] {name} must be a non-negative integer, got {value!r}")
    return value


_executor: list[Any] = []


def _pool() -> Any:
    if not _executor:
        from concurrent.futures import ThreadPoolExecutor

        _executor.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="masque-fts"))
    return _executor[0]


def vector_index(shard: Shard) -> Any | None:
    return next((ix for ix in shard.indices() if ix.columns == ["vector"]), None)


def _probes(view: View) -> tuple[int, int] | None:
    """How the vector index is searched: (partitions probed, refine factor); None when there is no index.

    Hashed vectors cluster loosely, so recall depends on probing many partitions (a third: recall@10
    0.96 on 100k, a sixth: 0.90); re-ranking 5x the candidates on the full vectors fixes the order
    that 8-bit quantisation blurs. Latency barely moves between the two.
    """
    if not view.vector_indexed:
        return None
    parts = max(1, view.count // ROWS_PER_PARTITION)
    return max(20, parts // 3), 5


def _vector_query(view: View, vector: Any, where: str | None, limit: int) -> list[dict[str, Any]]:
    return view.nearest(vector, _SEARCH_COLUMNS, where, limit, _probes(view))


def _text_query(view: View, text: str, where: str | None, limit: int) -> list[dict[str, Any]]:
    return view.matching(text, _SEARCH_COLUMNS, where, limit)


def _rankings(
    view: View, query: str, vector: Any, where: str | None, depth: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    # Both rankers run at once: Lance executes queries on its own threads outside the GIL.
    text_future = _pool().submit(_text_query, view, query, where, depth) if query.strip() else None
    by_vector = _vector_query(view, vector, where, depth)
    return by_vector, (text_future.result() if text_future else [])


def hybrid(
    view: View, query: str, vector: Any, k: int, window: ops.Window, filters_sql: str | None = None
) -> list[Hit]:
    """Top `k` live rows by reciprocal rank fusion of the vector and full-text rankings.

    Expiry is checked on the returned rows rather than as a prefilter (a column scan per query);
    only when that dropped something do both rankings run again with the prefilter, so expired
    rows can never push live ones out of the top k.
    """
    depth = max(k * 2, 20)
    by_vector, by_text = _rankings(view, query, vector, filters_sql, depth)
    alive_v = [r for r in by_vector if window.alive(r)]
    alive_t = [r for r in by_text if window.alive(r)]
    if len(alive_v) < len(by_vector) or len(alive_t) < len(by_text):
        where = " AND ".join(p for p in (filters_sql, window.sql()) if p)
        alive_v, alive_t = _rankings(view, query, vector, where, depth)
    by_vector, by_text = alive_v, alive_t
    rows: dict[str, dict[str, Any]] = {}
    fused: dict[str, float] = {}
    vrank: dict[str, int] = {}
    trank: dict[str, int] = {}
    by_vector = [r for r in by_vector if 1.0 - float(r["_distance"]) >= MIN_SIMILARITY]
    for rank, row in enumerate(by_vector, 1):
        rows[row["id"]] = row
        vrank[row["id"]] = rank
        fused[row["id"]] = fused.get(row["id"], 0.0) + 1.0 / (RRF_K + rank)
    for rank, row in enumerate(by_text, 1):
        rows.setdefault(row["id"], row)
        trank[row["id"]] = rank
        rows[row["id"]]["_score"] = row.get("_score")
        fused[row["id"]] = fused.get(row["id"], 0.0) + 1.0 / (RRF_K + rank)
    # Ties (equal fused score) break newest first (ids sort by time), so the order is stable run to run.
    order = sorted(sorted(fused, reverse=True), key=lambda i: -fused[i])[:k]
    return [
        Hit(
            memory=shards.memory_from_row(rows[i]),
            score=fused[i],
            vector_rank=vrank.get(i),
            text_rank=trank.get(i),
            distance=rows[i].get("_distance"),
            text_score=rows[i].get("_score"),
        )
        for i in order
    ]


def find(
    query: str,
    masque: str | None = None,
    *,
    k: int = 10,
    filters: ops.Filters = ops.Filters(),
    now: dt.datetime | None = None,
    selection: Selection | None = None,
) -> SearchResult:
    """Hybrid search over the live memories of `masque` (default: the session's masque)."""
    if k < 1:
        raise UsageError(f"-k must be at least 1, got {k}")
    if not query.strip():
        raise UsageError("the search query is empty", hint='pass QUERY, e.g. `masque memory search codesmith "parser"`')
    tgt = ops.target(masque, selection=selection, action="search")
    if not ops.check_read(tgt, "search"):
        return SearchResult(tgt.masque, Access.OPTED_OUT, ())
    view = open_view(tgt.masque, expected=tgt.settings.has_data)
    hits: list[Hit] = []
    if view is not None:
        embedder = configured_embedder(tgt.masque)
        shards.check_embedder(view, embedder.id)
        vector = embedder.embed([query])
        shards.check_dim(view, vector, embedder.id)
        window = ops.Window(now or utcnow(), tgt.retention)
        hits = hybrid(view, query, vector[0], k, window, " AND ".join(filters.sql()) or None)
    detail = {"k": k, "query_chars": len(query), **filters.to_json()}
    ops.log_only(tgt, "search", tgt.access, ids=[h.memory.id for h in hits], detail=detail)
    return SearchResult(tgt.masque, tgt.access, tuple(hits))


@dataclass(frozen=True)
class IndexReport:
    masque: str
    rows: int
    vector_index: str | None
    built: bool
    optimized: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "masque": self.masque,
            "rows": self.rows,
            "vector_index": self.vector_index,
            "built": self.built,
            "optimized": self.optimized,
        }


def _build_vector_index(shard: Shard, rows: int) -> None:
    shards.lancedb_module()
    from lancedb.index import IvfSq

    partitions = max(1, rows // ROWS_PER_PARTITION)
    try:
        shard.table.create_index(
            "vector", config=IvfSq(distance_type="cosine", num_partitions=partitions), replace=True
        )
    except Exception as exc:
        # Two writers crossing the threshold together both build; the loser keeps the winner's index.
        if not shards.is_conflict(exc):
            raise
        shard.table.checkout_latest()
        if vector_index(shard) is None:
            raise


def _optimize(shard: Shard) -> bool:
    """Compact and fold pending rows into the indices; False when another process is doing it now."""
    try:
        shards.optimize(shard.table, KEEP_VERSIONS)
    except Exception as exc:
        if not shards.is_conflict(exc):
            raise
        shard.table.checkout_latest()
        return False
    return True


def _unindexed(shard: Shard) -> int:
    pending = 0
    for ix in shard.indices():
        stats = shard.table.index_stats(ix.name)
        pending = max(pending, int(getattr(stats, "num_unindexed_rows", 0) or 0))
    return pending


def maintain(shard: Shard, *, force: bool = False) -> IndexReport:
    """Build the vector index past the threshold (or when forced) and fold pending rows into indices."""
    rows = shard.count()
    threshold = _setting("index_threshold", DEFAULT_INDEX_THRESHOLD)
    current = vector_index(shard)
    built = optimized = False
    # IVF needs enough rows to train its partitions; below ~256 rows exact search is instant anyway.
    with shard.guard():
        if current is None and rows >= 256 and (force or rows >= threshold):
            _build_vector_index(shard, rows)
            built = True
        shards.ensure_fts(shard.table)
        pending = _unindexed(shard)
        small = int(shard.table.stats()["fragment_stats"]["num_small_fragments"])
        # optimize() folds pending rows into every index and compacts the many small fragments that
        # single adds leave; after a fresh vector build it brings the full-text index up to date.
        if (pending or small > 1) and (force or built or pending >= OPTIMIZE_UNINDEXED or small >= COMPACT_FRAGMENTS):
            optimized = _optimize(shard)
    current = vector_index(shard)
    return IndexReport(shard.masque, rows, current.index_type if current else None, built, optimized)


def erase(shard: Shard) -> None:
    """After a delete: make the deleted rows unrecoverable (Shard.purge) and rebuild a vector index it dropped."""
    had_index = vector_index(shard) is not None
    shard.purge()
    rows = shard.count()
    if had_index and rows >= 256:
        with shard.guard():
            _build_vector_index(shard, rows)
            shards.keep_only_latest(shard.table)


def index(masque: str | None = None, *, selection: Selection | None = None) -> IndexReport:
    """`masque memory index`: build or refresh a shard's indices now."""
    tgt = ops.target(masque, selection=selection, action="index")
    ops.policy.require_owner(tgt.caller, tgt.masque, "index")
    shard = ops.open_for(tgt)
    if shard is None:
        return IndexReport(tgt.masque, 0, None, False, False)
    report = maintain(shard, force=True)
    ops.log_only(tgt, "index", tgt.access, detail=report.to_json())
    return report
