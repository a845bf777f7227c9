"""The store: lock-aware short-lived connections and forward-only numbered migrations.

The embedded DuckDB file is the default. With `[store] url` / `MASQUE_STORE_URL` set, the same API
hands out PostgreSQL connections instead (`masque.store.pg`, docs/store.md); analytics still run on
DuckDB (`analytics`, `masque.store.turns.bulk_writer`).

DuckDB locks its file for the whole process, readers included, so every operation opens a connection,
holds it for milliseconds and closes it. A lock conflict is retried with jittered backoff up to a
deadline, then reported naming the process that holds the lock.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from masque import config
from masque.errors import StoreBusy, StoreError

if TYPE_CHECKING:
    import duckdb

_LOCK = r"Conflicting lock is held in (?P<holder>.*?) \(PID (?P<pid>\d+)\)"  # read only when giving up
_migrated: set[tuple[str, int]] = set()  # (path, inode) already brought up to date by this process
_packaged: list[tuple[int, str, str]] = []  # migrations() read once per process


def prepare(*, shared: bool | None = None) -> None:
    """Import DuckDB and read the packaged migrations now, before any lock is taken.

    A cold `import duckdb` takes ~0.1 s on an idle machine and several times that under load; done
    while holding the store's turn (`masque.store.turns`), it made every other process wait for it.
    """
    import sysconfig  # noqa: F401  (DuckDB imports these on its first TIMESTAMPTZ value)
    import zoneinfo  # noqa: F401

    import duckdb  # noqa: F401

    migrations()
    if shared if shared is not None else shared_url() is not None:
        from masque.store import pg

        pg._psycopg()  # its import is as slow as DuckDB's: not inside a turn either


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every packaged migration, in order."""
    if _packaged:
        return list(_packaged)
    found = []
    for entry in resources.files("masque.store").joinpath("migrations").iterdir():
        match = re.match(r"^(\d{4})_(\w+)\.sql$", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(found) + 1)):  # pragma: no cover - a packaging mistake; tests catch it
        raise StoreError(f"migrations must be numbered 1..n without gaps or repeats, found {versions}")
    _packaged[:] = found
    return list(found)


def _is_lock_error(exc: Exception) -> bool:
    return "Could not set lock" in str(exc) or "Conflicting lock" in str(exc)


def _unfinished(path: Path, exc: Exception) -> bool:
    """True when the store file exists but its header was never written, so it holds no data.

    Either another process is creating it this very moment (retry), or a creation died half way,
    say under kill -9 (then the empty husk is removed, so the retry creates the store afresh).
    """
    if "not a valid DuckDB database file" not in str(exc):
        return False
    try:
        info = path.stat()
        head = path.read_bytes()[:16] if info.st_size < _HEADER_BYTES else b""
    except OSError:
        return True  # gone again: the retry creates it
    # Only an empty file, or DuckDB's own partial header, counts: anything else is reported, never deleted.
    if info.st_size >= _HEADER_BYTES or (head.strip(b"\0") and head[8:12] != b"DUCK"):
        return False
    if time.time() - info.st_mtime > _CREATION_GRACE:
        for husk in (path, path.with_name(path.name + ".wal")):
            husk.unlink(missing_ok=True)
    return True


_HEADER_BYTES = 3 * 4096  # DuckDB's main header plus its two database headers
_CREATION_GRACE = 2.0  # seconds; creating a store writes its headers within milliseconds


def _open(path: Path, read_only: bool, timeout: float) -> duckdb.DuckDBPyConnection:
    with ExitStack() as announced:
        return _open_retrying(path, read_only, timeout, announced)


def _open_retrying(path: Path, read_only: bool, timeout: float, announced: ExitStack) -> duckdb.DuckDBPyConnection:
    import duckdb

    from masque.store import lease

    deadline = time.monotonic() + timeout
    delay = 0.002
    announcing = False
    while True:
        try:
            # Only a read-write connection can create the file (after an unfinished one was removed).
            # One thread: a command's few point reads and writes gain nothing from a pool, and starting
            # one costs ~10 ms of every open. Scans that do gain call `for_analytics` first.
            return duckdb.connect(str(path), read_only=read_only and path.exists(), config={"threads": 1})
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            # Removed (an unfinished husk) between exists() and connect: the retry creates it.
            vanished = read_only and "database does not exist" in str(exc)
            # Another thread of this process has it open read-write (or read-only): wait as for a lock.
            same_process = "different configuration than existing connections" in str(exc)
            if not (vanished or same_process or _is_lock_error(exc) or _unfinished(path, exc)):
                raise StoreError(
                    f"cannot open the store {path}: {str(exc).splitlines()[0]}",
                    hint="check permissions and disk space; `masque path` shows where the store lives",
                ) from None
            if time.monotonic() >= deadline:
                match = re.search(_LOCK, str(exc))
                holder = f"PID {match['pid']} ({match['holder']})" if match else "another process"
                raise StoreBusy(
                    f"the store {path} is locked by {holder} for more than {timeout:g}s",
                    hint="wait for that process to finish, or raise [limits] lock_timeout in masque.toml",
                ) from None
            if not (announcing or same_process):  # a leasing server gives the store up when it sees this
                announced.enter_context(lease.waiting())
                announcing = True
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.1)
        except duckdb.Error as exc:
            raise StoreError(
                f"the store {path} is damaged or not a DuckDB file: {str(exc).splitlines()[0]}",
                hint="move it aside and run `masque init`; restore sessions with `masque sessions import`",
            ) from None


def for_analytics(conn: duckdb.DuckDBPyConnection) -> None:
    """Give a connection that is about to scan (stats, export, import) every core, in UTC, quietly."""
    import os

    from masque.store import lease

    lease.spoil()  # a leased connection is not kept with these settings
    conn.execute(f"SET threads = {max(1, os.cpu_count() or 1)}")
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET enable_progress_bar = false")


def _current_version(conn: duckdb.DuckDBPyConnection) -> int:
    import duckdb

    # Asking for the table directly costs ~1 ms; information_schema costs ~12 ms on every command. The
    # max is taken here: a process's first SQL aggregate costs DuckDB ~3 ms more than the plain read.
    try:
        rows = conn.execute("SELECT version FROM schema_migrations").fetchall()
    except duckdb.CatalogException:  # a brand-new store: no migration has run yet
        return 0
    return max((int(row[0]) for row in rows), default=0)


def newest_stages(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """(masque, version, stage) of the newest rollout row of each name@version, sorted.

    The newest row wins by its time-sortable id. Picked here rather than with DISTINCT ON ... ORDER BY:
    the table holds one row per promotion, and every cold `assume` would pay ~1-3 ms for DuckDB's
    first sort in the process.
    """
    newest: dict[tuple[str, str], tuple[str, str]] = {}
    for masque, version, stage, row_id in conn.execute(
        "SELECT masque, version, to_stage, id FROM mask_stages"
    ).fetchall():
        key = (str(masque), str(version))
        if key not in newest or str(row_id) > newest[key][0]:
            newest[key] = (str(row_id), str(stage))
    return [(masque, version, stage) for (masque, version), (_, stage) in sorted(newest.items())]


def write_stages_copy(conn: duckdb.DuckDBPyConnection) -> None:
    """Rewrite `config.stages_path()` from `mask_stages`, atomically, inside the writing transaction.

    Resolving a bare ref needs the recorded rollout stages; with this copy `masque check` and `list`
    read them without importing DuckDB. It is written wherever stages change (and at every migration),
    so a store whose copy is missing is read directly instead.
    """
    import json
    import os

    if shared_url() is not None:
        return  # no local copy of a shared store: other servers change it (`read_stages_copy` says None)
    rows = [list(row) for row in newest_stages(conn)]
    path = config.stages_path()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"stages": rows}, fh)
    os.replace(tmp, path)


def read_stages_copy() -> list[tuple[str, str, str]] | None:
    """The copied stages, or None when there is no readable copy (the caller reads the store)."""
    import json

    if shared_url() is not None:
        return None
    try:
        data = json.loads(config.stages_path().read_text(encoding="utf-8"))
        return [(str(k), str(v), str(s)) for k, v, s in data["stages"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def migrate(conn: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply pending migrations, each with its record in one transaction. Returns versions applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    done = _current_version(conn)
    known = migrations()
    if done > len(known):
        raise StoreError(
            f"the store was written by a newer masque (schema version {done}; this one knows {len(known)})",
            hint="upgrade masque (pip install -U masque), or point MASQUE_HOME at another store",
        )
    applied = []
    for version, name, sql in known:
        if version <= done:
            continue
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        applied.append(version)
    if applied:  # a new or upgraded store: start (or catch up) the stages copy
        write_stages_copy(conn)
    return applied


# A stamp newer than this is not trusted to reveal the next write: on a kernel with coarse file
# timestamps two writes inside one clock tick (1-10 ms) can leave the same mtime and size.
SETTLED_NS = 50_000_000


def change_marker(path: Path | None = None) -> tuple[tuple[int, ...] | None, bool]:
    """A cheap stamp of the store's committed state (its file and WAL), and whether it has settled.

    Every committed DuckDB write changes the WAL or, at checkpoint, the file (inode, size, mtime, ctime),
    so an equal stamp taken before and after reading means nothing was committed in between. Only a
    settled stamp (older than SETTLED_NS) may key a cache: see git's "racy clean" problem.
    """
    import os

    if path is None and shared_url() is not None:
        return None, False  # a PostgreSQL store has no file to stamp: nothing may be cached
    path = path or config.store_path()
    stamp: list[int] = []
    newest = 0
    for part in (path, path.with_name(path.name + ".wal")):
        try:
            info = os.stat(part)
        except FileNotFoundError:
            stamp.append(-1)
            continue
        except OSError:
            return None, False
        stamp.extend((info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
        newest = max(newest, info.st_mtime_ns, info.st_ctime_ns)
    if stamp[0] == -1:
        return None, False  # no store yet: the first read creates it
    return tuple(stamp), time.time_ns() - newest > SETTLED_NS


def shared_url() -> str | None:
    """The PostgreSQL store's URL when one is configured (`config.store_url`), else None: the DuckDB file."""
    return config.store_url()


def is_duckdb(conn: object) -> bool:
    """Whether `conn` is a DuckDB connection rather than the PostgreSQL adapter (`masque.store.pg`)."""
    from masque.store import pg

    return not isinstance(conn, pg.Connection)


def present() -> bool:
    """Whether a store exists to read: the DuckDB file, or (always) a configured PostgreSQL database."""
    return config.store_path().exists() or shared_url() is not None


@contextmanager
def connect(*, read_only: bool = False, path: Path | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for one operation; the store is created and migrated on first use.

    With a PostgreSQL store configured (and no explicit `path`), a `masque.store.pg` connection with
    the same API. In a process holding a store lease (`masque.store.lease`) the connection is the kept
    read-write one.
    """
    url = None if path is not None else shared_url()
    if url is not None:
        from masque.store import pg

        with pg.connect(url, migrations()) as shared:
            yield shared  # type: ignore[misc]  # the DuckDB-style adapter
        return
    from masque.store import lease

    path = path or config.store_path()
    if lease.enabled():
        with lease.borrow(path, lambda: _open_migrated(path, False)) as conn:
            yield conn
        return
    conn = _open_migrated(path, read_only)
    try:
        yield conn
    finally:
        conn.close()


def _open_migrated(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    timeout = config.limits().lock_timeout
    if not path.exists():
        read_only = False
        config.ensure_home() if path.parent == config.home() else path.parent.mkdir(parents=True, exist_ok=True)
    key = (str(path), path.stat().st_ino if path.exists() else 0)
    conn = _open(path, read_only, timeout)
    try:
        if key not in _migrated:
            latest = migrations()[-1][0]
            if _current_version(conn) != latest:
                if read_only:
                    conn.close()
                    conn = _open(path, False, timeout)
                migrate(conn)
            path.chmod(0o600)
            _migrated.add((str(path), path.stat().st_ino))
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def analytics() -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection to scan (stats, export): the store file read-only, or for a PostgreSQL store
    an in-memory copy of it (`masque.store.pg.snapshot`), so the analytic SQL is DuckDB's either way."""
    url = shared_url()
    if url is None:
        with connect(read_only=True) as conn:
            yield conn
        return
    from masque.store import pg

    duck = pg.snapshot(url, migrations(), migrate)
    try:
        yield duck
    finally:
        duck.close()


def check_shared(url: str) -> None:
    """Connect to a PostgreSQL store once and migrate it: a server fails at start-up, not at its first request."""
    from masque.store import pg

    with pg.connect(url, migrations()):
        pass


@contextmanager
def transaction(*, path: Path | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection inside BEGIN/COMMIT; rolled back if the block raises."""
    with connect(path=path) as conn:
        conn.execute("BEGIN TRANSACTION")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def rows(conn: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> list[dict[str, Any]]:
    """Run a query and return rows as dicts."""
    cur = conn.execute(sql, params) if params is not None else conn.execute(sql)
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
