"""Fair turns at the store for the session lifecycle.

DuckDB lets one process at a time open the file, and `masque.store` retries a busy file with
exponential backoff. Under a burst (8 agents assuming and releasing at once) backoff is unfair: a
process that has waited longest sleeps longest, while a fresh arrival polls every few milliseconds,
so an unlucky process can starve past the lock deadline. Session operations therefore first take a
turn on a sidecar `flock` (`masque.duckdb.turn` next to the store), polled at a short fixed interval
so every waiter has the same chance, and only then open the store. The turn is re-entrant within a
process (nested helpers share it) and is released as soon as the store connection closes, except in a
long-lived process holding a store lease (`masque.store.lease`), which keeps it until another process
waits.

A turn is held only for the transaction: everything a caller needs that is not in the store (imports,
above all DuckDB's; parsed masque files) is prepared before taking it, with `prepare` here and
`registry.prepare`. A cold process that imported DuckDB inside its turn held it ~0.5 s under load,
and eight such processes queued long enough to exceed the lock deadline.
"""

from __future__ import annotations

import fcntl
import importlib
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from masque import config, store
from masque.errors import StoreBusy
from masque.store import lease

if TYPE_CHECKING:
    import duckdb

_POLL = 0.002
_local = lease.PROCESS_LOCK  # one lock for turns and the lease
_depth = threading.local()


def prepare(*modules: str) -> None:
    """Import the store driver and `modules` (dotted names) before taking a turn, not while holding it."""
    store.prepare()
    for name in modules:
        importlib.import_module(name)


@contextmanager
def turn() -> Iterator[None]:
    """Hold this process's turn at the store file (re-entrant; waits up to [limits] lock_timeout)."""
    store.prepare(shared=False)
    with _local:
        if getattr(_depth, "n", 0) > 0:
            _depth.n += 1
            try:
                yield
            finally:
                _depth.n -= 1
            return
        path = config.ensure_home() / f"{config.store_path().name}.turn"
        fd = lease.resume(path)  # this process's lease still holds the turn: no need to queue
        if fd is None:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                _acquire(fd, config.limits().lock_timeout, str(path))
            except BaseException:
                os.close(fd)
                raise
        _depth.n = 1
        try:
            yield
        finally:
            _depth.n = 0
            if not lease.keep(fd, path):
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)


def _acquire(fd: int, timeout: float, where: str) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    with lease.waiting():  # a process holding the store as a lease gives it up when it sees this
        _poll(fd, timeout, where)


def _poll(fd: int, timeout: float, where: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StoreBusy(
                    f"the store is busy: no turn at {where} within {timeout:g}s",
                    hint="another masque process holds the store for too long; "
                    "retry, or raise [limits] lock_timeout in masque.toml",
                ) from None
            time.sleep(_POLL * (0.5 + random.random()))


@contextmanager
def _shared_turn(url: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """On a PostgreSQL store the turn is an advisory lock held by the operation's own connection.

    Re-entrant like the file turn: a connection opened while this thread already holds the turn
    does not ask again (it would wait for itself).
    """
    from masque.store import pg

    with _local:
        outer = getattr(_depth, "n", 0) > 0
        _depth.n = getattr(_depth, "n", 0) + 1
        try:
            with pg.connect(url, store.migrations(), turn=not outer) as conn:
                yield conn  # type: ignore[misc]  # the DuckDB-style adapter
        finally:
            _depth.n -= 1


@contextmanager
def transaction() -> Iterator[duckdb.DuckDBPyConnection]:
    """`masque.store.transaction()` inside a turn."""
    url = store.shared_url()
    if url is not None:
        with _shared_turn(url) as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return
    # An explicit path: the store need not look up the configuration again (every operation pays it).
    with turn(), store.transaction(path=config.store_path()) as conn:
        yield conn


@contextmanager
def connect(*, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """`masque.store.connect()` inside a turn."""
    url = store.shared_url()
    if url is not None:
        with _shared_turn(url) as conn:
            yield conn
        return
    with turn(), store.connect(read_only=read_only, path=config.store_path()) as conn:
        yield conn


@contextmanager
def bulk_writer(appended: tuple[str, ...], replaced: tuple[str, ...] = ()) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection for a bulk job that writes with DuckDB's SQL (`masque sessions import`).

    On the DuckDB file: a plain connection. On a PostgreSQL store: the job runs on an in-memory copy
    while this process holds the store's turn, then what it added to `appended` tables (and the
    rewritten `replaced` ones) is written back in one transaction, even when the job raised after
    committing (a refusal records its event).
    """
    url = store.shared_url()
    if url is None:
        with store.connect() as conn:
            yield conn
        return
    from masque.store import pg

    with _shared_turn(url) as shared:
        duck = pg.snapshot(url, store.migrations(), store.migrate)
        try:
            pg.mark_before(duck, (*appended, *replaced))
            try:
                yield duck
            finally:
                pg.push_new_rows(duck, shared, appended, replaced)  # type: ignore[arg-type]
        finally:
            duck.close()
