"""A read-only view of a shard through `lance` (pylance): what search, list and get read with.

LanceDB writes the shards; searching needs only the dataset. `import lance` costs ~0.25 s where
`import lancedb` costs ~0.65 s (its namespace client's pydantic models, the embedding registry, the
remote client), which was more than half of a cold `masque memory search`. Both speak the same Lance
format: LanceDB names pylance as its reader (`lancedb[pylance]`, `Table.to_lance()`), and a newer
reader reads what an older writer wrote. A view sees the newest committed version when it is opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from functools import cached_property
from typing import Any

from masque import config
from masque.errors import MasqueError
from masque.memory import shards

TEXT_INDEX_COLUMNS = ["text"]


class View:
    """One shard's dataset, opened for reading."""

    def __init__(self, masque: str, dataset: Any, location: str) -> None:
        self.masque = masque
        self.dataset = dataset
        self.location = location
        self.embedder_id, self.dim = shards.read_schema_meta(dataset.schema)

    @property
    def name(self) -> str:
        return shards.table_name(self.masque)

    def guard(self) -> AbstractContextManager[None]:
        return shards.guarded(self.masque, self.location)

    @cached_property
    def count(self) -> int:
        """Rows in this version (a view never moves to a newer one)."""
        with self.guard():
            return int(self.dataset.count_rows())

    @cached_property
    def vector_indexed(self) -> bool:
        with self.guard():
            return any(list(ix.field_names) == ["vector"] for ix in self.dataset.describe_indices())

    def rows(
        self, where: str | None, columns: Sequence[str] = shards.COLUMNS, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Rows matching `where` (all when None), in storage order."""
        with self.guard():
            return list(self.dataset.to_table(columns=list(columns), filter=where, limit=limit).to_pylist())

    def nearest(
        self, vector: Any, columns: Sequence[str], where: str | None, limit: int, probes: tuple[int, int] | None
    ) -> list[dict[str, Any]]:
        """The `limit` rows closest to `vector` by cosine distance (`_distance`), filtered first by `where`.

        `probes` (nprobes, refine factor) searches the vector index; None is an exact scan.
        """
        nearest: dict[str, Any] = {"column": "vector", "q": vector, "k": limit, "metric": "cosine"}
        if probes is None:
            nearest["use_index"] = False
        else:
            nearest.update(nprobes=probes[0], refine_factor=probes[1])
        return self._rows(columns, "_distance", where, limit, nearest=nearest)

    def matching(self, text: str, columns: Sequence[str], where: str | None, limit: int) -> list[dict[str, Any]]:
        """The `limit` rows whose text best matches `text` (BM25 over the full-text index, `_score`)."""
        query = {"query": text, "columns": TEXT_INDEX_COLUMNS}
        return self._rows(columns, "_score", where, limit, full_text_query=query)

    def _rows(
        self, columns: Sequence[str], score: str, where: str | None, limit: int, **search: Any
    ) -> list[dict[str, Any]]:
        with self.guard():
            table = self.dataset.to_table(
                columns=[*columns, score],
                filter=where,
                prefilter=where is not None,
                limit=limit,
                disable_scoring_autoprojection=True,
                **search,
            )
        return list(table.to_pylist())


def lance_module() -> Any:
    import lance

    return lance


_sessions: list[Any] = []


def _session(lance: Any) -> Any:
    """One lance Session per process: opened indices and file metadata stay cached between searches
    (each view is a fresh open of the newest version; without it every search would reload the index)."""
    if not _sessions:
        _sessions.append(lance.Session())
    return _sessions[0]


def open_view(masque: str, *, expected: bool = False) -> View | None:
    """The newest version of `masque`'s shard, or None when it was never written.

    `expected` says the registry knows the shard has data: then a missing dataset is damage, not news.
    """
    storage = config.memory_storage()
    where = shards.shard_location(masque)
    if not storage.remote and not shards.shard_path(masque).exists():
        _check_missing(masque, where, expected)
        return None
    lance = lance_module()
    try:
        options = dict(storage.options) if storage.remote else None
        dataset = lance.dataset(where, storage_options=options, session=_session(lance))
        view = View(masque, dataset, where)
        view.count  # noqa: B018  (touch the manifest now, so damage shows here and not mid-search)
    except MasqueError:
        raise
    except Exception as exc:
        if storage.remote and _not_found(exc):
            _check_missing(masque, where, expected)
            return None
        if storage.remote and shards.is_transport(exc):
            raise shards.unreachable(storage, exc) from None
        raise shards.damaged(masque, where, exc) from None
    return view


def _not_found(exc: Exception) -> bool:
    text = str(exc)
    return "was not found" in text or "Not found" in text or "NotFound" in text


def _check_missing(masque: str, where: str, expected: bool) -> None:
    """A shard that was never written is news; one the registry says holds data is damage."""
    if expected:
        raise shards.missing(masque, where)
