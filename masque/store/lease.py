"""A store lease for long-lived processes (`masque serve`, `masque mcp --http`).

Opening and closing the DuckDB store (closing checkpoints) costs ~35 ms, more than most requests. A
process that calls `enable()` therefore keeps its turn (`masque.store.turns`) and its connection when a
turn ends, and its next turn reuses both, as long as nobody else wants the store. Other processes
announce that they wait by holding a shared `flock` on the sidecar `masque.duckdb.want` while they poll
for the turn (or retry DuckDB's own lock); the holder probes that file with a non-blocking exclusive
`flock` before reusing the lease and, from a small background thread, every ~2 ms while the lease is
idle, and gives the store up (close, which checkpoints, then unlock the turn) the moment the probe
fails. An idle lease is also given up after `LINGER` seconds, so an idle server never keeps the file.

The connection is only ever used inside a turn, and a turn holds the process's re-entrant lock
(`PROCESS_LOCK`), so no two threads share it at once; the background thread releases only when it can
take that lock without waiting. kill -9 of the holder frees everything: flocks and DuckDB's own lock
die with the process.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from masque import config

if TYPE_CHECKING:
    import duckdb

LINGER = 0.2  # seconds an idle lease is kept before the store is given up anyway
# A busy holder serves the requests already queued inside it for up to this long after taking the
# turn, even when another process waits: one open then pays for several requests. Bounded, so a
# waiter waits at most this plus one request; an idle holder yields to a waiter at once.
BATCH = 0.2
_PROBE = 0.002  # seconds between the idle lease's checks for a waiter

PROCESS_LOCK = threading.RLock()  # the turn's in-process lock (masque.store.turns uses this one)

_enabled = False
_turn_fd: int | None = None  # the turn flock this process still holds between its turns
_turn_path: Path | None = None  # the sidecar that fd locks (a process could switch MASQUE_HOME)
_conn: duckdb.DuckDBPyConnection | None = None  # the kept connection, valid only with _turn_fd
_conn_key: tuple[str, int] | None = None  # (path, inode) the kept connection belongs to
_borrowed = False  # the kept connection is in use by the current turn
_spoiled = False  # the block changed the connection's settings: close it after this use
_idle_since = 0.0
_held_since = 0.0  # when this process last took the turn by queueing for it
_wake = threading.Event()
_thread: threading.Thread | None = None


def enable() -> None:
    """Keep the store between turns in this process (long-lived servers only, never CLI commands)."""
    global _enabled, _thread
    with PROCESS_LOCK:
        _enabled = True
        if _thread is None:
            _thread = threading.Thread(target=_watch, name="masque-store-lease", daemon=True)
            _thread.start()
            atexit.register(release)


def disable() -> None:
    """Stop keeping the store (and give it up now)."""
    global _enabled
    with PROCESS_LOCK:
        _enabled = False
        release()


def enabled() -> bool:
    return _enabled


def want_path() -> Path:
    return config.home() / f"{config.store_path().name}.want"


@contextmanager
def waiting() -> Iterator[None]:
    """Announce, for as long as the block runs, that this process waits for the store."""
    try:
        fd = os.open(want_path(), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # no home yet, read-only disk: nobody can hold a lease there either
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits at most for a holder's probe (microseconds)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def _someone_waits() -> bool:
    try:
        fd = os.open(want_path(), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _must_yield() -> bool:
    return time.monotonic() - _held_since > BATCH and _someone_waits()


def resume(turn_path: Path) -> int | None:
    """At the start of a turn (PROCESS_LOCK held): the turn fd still held, or None to queue for one."""
    if _turn_fd is not None and (turn_path != _turn_path or _must_yield()):
        release()  # fair turns: a waiter goes first, we queue behind it
    return _turn_fd


def keep(fd: int, turn_path: Path) -> bool:
    """At the end of a turn (PROCESS_LOCK held): True if the turn stays held as this process's lease."""
    global _turn_fd, _turn_path, _idle_since, _held_since
    now = time.monotonic()
    if _turn_fd is None:
        _held_since = now
    if not _enabled or _must_yield():
        _close_conn()
        _turn_fd = None
        return False
    _turn_fd, _turn_path = fd, turn_path
    _idle_since = now
    _wake.set()
    return True


def release() -> None:
    """Give the store up now: close the kept connection (checkpoint) and unlock the turn."""
    global _turn_fd
    with PROCESS_LOCK:
        _close_conn()
        fd, _turn_fd = _turn_fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _close_conn() -> None:
    global _conn, _conn_key
    conn, _conn, _conn_key = _conn, None, None
    if conn is not None:
        with contextlib.suppress(Exception):  # a broken connection is dropped all the same
            conn.close()


@contextmanager
def borrow(path: Path, open_store: Callable[[], duckdb.DuckDBPyConnection]) -> Iterator[duckdb.DuckDBPyConnection]:
    """The kept connection for `path` (opened with `open_store` when missing), inside a turn."""
    global _conn, _conn_key, _borrowed, _spoiled
    import duckdb

    from masque.store import turns

    with turns.turn():
        if _borrowed and _conn is not None:  # nested in a block already using it: a sibling connection
            nested = _conn.cursor()
            try:
                yield nested
            finally:
                nested.close()
            return
        key = (str(path), path.stat().st_ino if path.exists() else 0)
        if _conn is not None and _conn_key != key:  # the store was replaced (moved aside, restored)
            _close_conn()
        if _conn is None:
            _conn = open_store()
            _conn_key = (str(path), path.stat().st_ino)
        conn = _conn
        _borrowed = True
        try:
            yield conn
        except duckdb.Error:
            _close_conn()  # the connection may be invalidated: never reuse it
            raise
        except BaseException:
            _leave_clean(conn)
            raise
        else:
            _leave_clean(conn)
        finally:
            _borrowed = False
            if _spoiled:
                _spoiled = False
                _close_conn()


def spoil() -> None:
    """The connection in use had its settings changed (`store.for_analytics`): do not keep it after this use."""
    global _spoiled
    _spoiled = _borrowed


def _leave_clean(conn: duckdb.DuckDBPyConnection) -> None:
    """Roll back whatever the block left open; a connection that refuses is closed, not reused."""
    import duckdb

    try:
        conn.execute("ROLLBACK")
    except duckdb.TransactionException:
        return  # no transaction open: the usual case
    except duckdb.Error:
        _close_conn()


def _watch() -> None:
    """Give an idle lease up as soon as another process waits, or after LINGER."""
    while True:
        if _turn_fd is None:
            _wake.wait()
            _wake.clear()
            continue
        time.sleep(_PROBE)
        if not PROCESS_LOCK.acquire(blocking=False):
            continue  # a turn is running in this process: it checks for waiters when it ends
        try:
            if _turn_fd is not None and (time.monotonic() - _idle_since > LINGER or _someone_waits()):
                release()
        finally:
            PROCESS_LOCK.release()
