"""The compliance log's append-only spool: a search records its log entry without opening DuckDB.

Opening the store read-write for one INSERT cost a read verb more than the LanceDB search itself
(~27 ms per open and close, more under load). So read verbs append their `memory_log` entry as one
JSON line to `config.memory_log_spool_path()` and fsync it before returning: a process killed at any
point after a search returned has its entry on disk. The spool is folded into `memory_log` (in one
store transaction, ids deduplicated, then truncated) before the log is read, before a memory write,
and when it grows past FOLD_BYTES, so every reader of the log sees every entry.

Appenders share a `flock` on the spool; a fold holds it exclusively from reading to truncating, so no
line is appended between the two and lost. Each line starts with a newline too: a line torn by a
kill mid-write (its search never returned) is skipped without swallowing the next one.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from collections.abc import Sequence
from typing import Any

from masque import config, store

FOLD_BYTES = 256 * 1024  # a busy search loop folds every ~500 entries: one short transaction
COLUMNS = ("id", "ts", "action", "shard", "reader_masque", "actor", "session_id", "access", "rows",
           "memory_ids", "detail")  # fmt: skip
INSERT_SQL = (
    f"INSERT INTO memory_log ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)}) "
    "ON CONFLICT (id) DO NOTHING"
)


def append(row: Sequence[Any]) -> None:
    """Durably append one `memory_log` row (values in COLUMNS order; ts a datetime)."""
    values = list(row)
    values[1] = values[1].isoformat()
    line = ("\n" + json.dumps(values, separators=(",", ":")) + "\n").encode("utf-8")
    path = config.memory_log_spool_path()
    created = not path.exists()
    if created and path.parent == config.home():
        config.ensure_home()  # on a PostgreSQL store nothing else may have made the home yet
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
        os.fdatasync(fd)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)  # releases the lock
    if created:  # the new name must survive a crash too
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    if size > FOLD_BYTES:
        fold()


def parse(data: bytes) -> list[list[Any]]:
    """The complete rows in a spool's bytes; torn or foreign lines are skipped."""
    rows: list[list[Any]] = []
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            values = json.loads(raw)
            if not isinstance(values, list) or len(values) != len(COLUMNS):
                continue
            values[1] = dt.datetime.fromisoformat(values[1])
        except (ValueError, TypeError):
            continue
        rows.append(values)
    return rows


def pending() -> bool:
    try:
        return config.memory_log_spool_path().stat().st_size > 0
    except FileNotFoundError:
        return False


def fold() -> int:
    """Move every spooled entry into `memory_log`; returns how many were read. Safe to repeat after a crash."""
    if not pending():
        return 0
    path = config.memory_log_spool_path()
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return 0
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        rows = parse(b"".join(chunks))
        if rows:
            # Committed before the truncate: a crash in between re-inserts, and the ids deduplicate.
            with store.transaction() as conn:
                conn.executemany(INSERT_SQL, rows)
        os.ftruncate(fd, 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    return len(rows)
