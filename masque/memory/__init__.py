"""Per-masque memory shards in embedded LanceDB (see docs/memory.md).

The Python API mirrors `masque memory ...`; names are resolved lazily so that importing this package
costs nothing: lancedb, pyarrow and numpy load only when a shard is actually touched.

    from masque import memory
    memory.add(["the parser must keep line numbers"], "codesmith", tags=["parser"])
    memory.find("line numbers", "codesmith", k=5).hits   # `search` and `snapshot` name the submodules
    memory.session_diff("ses_...")   # what a session added and forgot (pure DuckDB)
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "add": "masque.memory.ops",
    "list_memories": "masque.memory.ops",
    "get": "masque.memory.ops",
    "forget": "masque.memory.ops",
    "prune": "masque.memory.ops",
    "history": "masque.memory.ops",
    "export": "masque.memory.transfer",
    "import_memories": "masque.memory.transfer",
    "Filters": "masque.memory.ops",
    "find": "masque.memory.search",
    "index": "masque.memory.search",
    "set_mode": "masque.memory.manage",
    "share": "masque.memory.manage",
    "opt": "masque.memory.manage",
    "opt_out": "masque.memory.manage",
    "opt_in": "masque.memory.manage",
    "stats": "masque.memory.manage",
    "reembed": "masque.memory.manage",
    "log_entries": "masque.memory.manage",
    "summarize": "masque.memory.snapshot",
    "summaries": "masque.memory.snapshot",
    "Mode": "masque.memory.policy",
    "Memory": "masque.memory.shards",
}

__all__ = ["session_diff", *_LAZY]


def session_diff(session_id: str, conn: Any = None) -> dict[str, Any]:
    """What session `session_id` added to and forgot from memory shards; safe to call at release.

    Reads only DuckDB (never imports lancedb); pass `conn` (an open store connection) when calling
    from inside a transaction. Shape: {"session_id", "added", "forgotten", "added_ids",
    "forgotten_ids", "shards": {masque: {"added", "forgotten"}}}.
    """
    from masque.memory.diff import session_diff as diff

    return diff(session_id, conn)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'masque.memory' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
