"""The caller's proof and a shard's policy, read from the store once per store change.

A read verb needs who is calling (the ring rule), the shard's sync mode, whitelist and opt-outs: one
DuckDB open of ~27 ms, more than the LanceDB search it guards. The answer depends only on what the
caller presented, on the store's committed state and, for a session token, on the clock. So it is kept
in this process keyed by exactly what was presented, and reused only while the store's change marker
(`store.change_marker`: its file and WAL stamps) is unchanged and any token involved has not expired.
Any committed write (a revoked token, a changed ring, a new share or opt-out) changes the marker, so
the next call reads the store again: identity is proven on every call, against the store as it is now.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from masque import config, store
from masque.durations import utcnow

if TYPE_CHECKING:
    import duckdb

    from masque.trust.rings import Selection

MAX_ENTRIES = 64
_lock = threading.Lock()
_entries: OrderedDict[Hashable, tuple[tuple[int, ...], dt.datetime | None, Any]] = OrderedDict()


class Uncacheable(Exception):
    """The proof cannot be reused (a token in its grace period, or no longer valid)."""


def key(selection: Selection, *parts: Hashable) -> tuple[Hashable, ...]:
    """Everything the read depends on besides the store: the store's path, what was presented, `parts`."""
    presented = dataclasses.astuple(selection)
    return (str(config.store_path()), presented, config.session_id_from_env(), *parts)


def lookup(cache_key: Hashable) -> Any | None:
    """The remembered value, if the store has not changed since and no token in it has expired."""
    with _lock:
        found = _entries.get(cache_key)
    if found is None:
        return None
    marker, until, value = found
    now_marker, _ = store.change_marker()
    if now_marker != marker or (until is not None and utcnow() >= until):
        with _lock:
            _entries.pop(cache_key, None)
        return None
    return value


def remember(
    cache_key: Hashable, marker: tuple[tuple[int, ...] | None, bool], until: dt.datetime | None, value: Any
) -> None:
    """Keep `value`, read after `marker` was taken; an unsettled marker is never trusted (see store)."""
    stamp, settled = marker
    if stamp is None or not settled:
        return
    with _lock:
        _entries[cache_key] = (stamp, until, value)
        _entries.move_to_end(cache_key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)


def proof_lifetime(conn: duckdb.DuckDBPyConnection, selection: Selection) -> dt.datetime | None:
    """Until when the presented tokens stay valid if the store does not change (None: no clock limit).

    Raises Uncacheable for a token that is already invalid or whose session is being revoked (its grace
    deadline is a clock limit kept outside the credential).
    """
    from masque.trust import credentials

    until: dt.datetime | None = None
    for token in (selection.token, selection.credential):
        if not token:
            continue
        status = credentials.broker().verify(token, conn=conn)
        if not status.valid or status.session_status != "active":
            raise Uncacheable(token[:4])
        if status.expires_at is not None:
            until = status.expires_at if until is None else min(until, status.expires_at)
    return until


def clear() -> None:
    with _lock:
        _entries.clear()
