"""The PostgreSQL backend: a thin adapter giving psycopg connections the DuckDB-style API the code uses.

Selected by `[store] url = "postgresql://..."` (or `MASQUE_STORE_URL`, or `masque serve --store`), so
several servers share one database. psycopg is imported here only, and only then.

What the adapter does, and nothing more:
- `conn.execute(sql, params)` returns a cursor (`fetchone`/`fetchall`/`description`), as DuckDB does;
  `?` and `$name` placeholders become psycopg's `%s` / `%(name)s` outside string literals, and a
  literal `%` is escaped. `::JSON` casts become `::jsonb` (the JSON columns are JSONB here).
- JSON values come back as text (as DuckDB returns them), timestamps in UTC.
- Explicit `BEGIN TRANSACTION` / `COMMIT` / `ROLLBACK` work as in DuckDB (the connection autocommits
  outside them).
- psycopg's constraint and missing-table errors are raised as the DuckDB exception classes the callers
  already catch, so feature code has one error path for both backends.
- The numbered migrations are applied with two type spellings changed (JSON -> JSONB, DOUBLE ->
  DOUBLE PRECISION), after `postgres/0000_compat.sql`, which defines the few DuckDB functions the
  core's queries use (json_extract_string, json_merge_patch, list_value, list_position, list_contains,
  any_value).

A turn (`masque.store.turns`) is a session-level `pg_advisory_lock` on the operation's connection: one
writer at a time across every server on the database, as the file lock gives on one machine.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import Any

from masque.errors import StoreBusy, StoreError, UsageError

TURN_KEY = 0x6D61_7371  # "masq": the advisory lock every turn takes
MIGRATE_KEY = 0x6D61_7372  # taken while migrating, so two servers starting at once migrate once
_migrated: set[str] = set()  # URLs already brought up to date by this process
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DDL_TYPES = {"JSON": "JSONB", "DOUBLE": "DOUBLE PRECISION"}


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise UsageError(
            "a PostgreSQL store is configured but psycopg is not installed",
            hint="pip install 'masque[postgres]', or unset [store] url / MASQUE_STORE_URL for the DuckDB file",
        ) from None
    return psycopg


def _segments(sql: str) -> Iterator[tuple[bool, str]]:
    """(is_code, text) pieces of `sql`: string literals, quoted names and comments are not code."""
    i, start, n = 0, 0, len(sql)
    while i < n:
        ch = sql[i]
        end = -1
        if ch in "'\"":
            end = i + 1
            while end < n:
                if sql[end] == ch:
                    if end + 1 < n and sql[end + 1] == ch:  # a doubled quote inside the literal
                        end += 2
                        continue
                    break
                end += 1
            end += 1
        elif sql.startswith("--", i):
            newline = sql.find("\n", i)
            end = n if newline < 0 else newline
        if end < 0:
            i += 1
            continue
        if start < i:
            yield True, sql[start:i]
        yield False, sql[i:end]
        i = start = end
    if start < n:
        yield True, sql[start:]


@functools.lru_cache(maxsize=1024)
def translate(sql: str, with_params: bool = True) -> str:
    """DuckDB-style SQL as psycopg wants it (see the module docstring)."""
    out = []
    for is_code, text in _segments(sql):
        if not is_code:
            out.append(text.replace("%", "%%") if with_params else text)
            continue
        text = re.sub(r"::\s*JSON\b", "::jsonb", text, flags=re.IGNORECASE)
        if with_params:
            text = text.replace("%", "%%")
            text = re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*)", r"%(\1)s", text)
            text = text.replace("?", "%s")
        out.append(text)
    return "".join(out)


def ddl(sql: str) -> str:
    """A DuckDB migration as PostgreSQL DDL: the two type names that differ, outside literals."""
    out = []
    for is_code, text in _segments(sql):
        if is_code:
            text = re.sub(r"\b(JSON|DOUBLE)\b(?!\s+PRECISION)", lambda m: _DDL_TYPES[m[1]], text)
        out.append(text)
    return "".join(out)


class Connection:
    """A psycopg connection behind the subset of DuckDB's connection API the store's callers use."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        query = translate(sql, params is not None)
        if isinstance(params, Sequence) and not isinstance(params, list | tuple):
            params = list(params)
        return self._run(lambda: self.raw.execute(query, params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement for many parameter rows (psycopg pipelines them: one round trip, not one per row)."""
        query = translate(sql, True)
        self._run(lambda: self.raw.cursor().executemany(query, [list(r) for r in rows]))

    def _run(self, statement: Callable[[], Any]) -> Any:
        psycopg = _psycopg()
        try:
            return statement()
        except (
            psycopg.errors.IntegrityError,
            psycopg.errors.UndefinedTable,
            psycopg.errors.SerializationFailure,
        ) as exc:
            raise _as_duckdb(exc) from None
        except psycopg.errors.LockNotAvailable:
            raise _busy() from None
        except psycopg.OperationalError as exc:
            raise StoreError(f"the PostgreSQL store failed: {exc}".strip(), hint=_HINT) from None

    def close(self) -> None:
        self.raw.close()

    def register(self, name: str, data: object) -> None:
        """DuckDB's Arrow registration has no PostgreSQL counterpart here: a clear refusal, not a crash."""
        raise _duckdb_only()

    def unregister(self, name: str) -> None:
        raise _duckdb_only()

    def sql(self, query: str, params: object = None) -> None:
        raise _duckdb_only()


def _duckdb_only() -> UsageError:
    # Arrow registration and relations are for DuckDB-side work (export, import), which runs on an
    # in-memory DuckDB copy (`snapshot`); reaching one on this adapter is refused, not crashed.
    return UsageError(
        "this command needs the DuckDB store file: it is not available on a PostgreSQL store yet",
        hint="run it against a local store (unset [store] url / MASQUE_STORE_URL); see docs/store.md",
    )


def _as_duckdb(exc: Exception) -> Exception:
    """The DuckDB exception class callers already catch for this psycopg error (DuckDB imported only now:
    `masque check` on a PostgreSQL store never needs it)."""
    import duckdb

    psycopg = _psycopg()
    if isinstance(exc, psycopg.errors.IntegrityError):
        return duckdb.ConstraintException(f"Constraint Error: {exc}")
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return duckdb.CatalogException(f"Catalog Error: {exc}")
    return duckdb.TransactionException(f"TransactionContext Error: {exc}")


_HINT = "check that the PostgreSQL server named by [store] url / MASQUE_STORE_URL is running and reachable"


def _busy() -> StoreBusy:
    from masque import config

    return StoreBusy(
        f"the PostgreSQL store is busy: no turn within {config.limits().lock_timeout:g}s",
        hint="another masque process holds the store for too long; retry, or raise [limits] lock_timeout",
    )


def _open(url: str) -> Connection:
    from masque import config

    psycopg = _psycopg()
    from psycopg.types.string import TextLoader

    timeout_ms = int(config.limits().lock_timeout * 1000)
    try:
        raw = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=max(2, int(config.limits().lock_timeout)),
            options=f"-c TimeZone=UTC -c lock_timeout={timeout_ms}",
        )
    except psycopg.Error as exc:
        # The message names host and database, never the password (psycopg leaves it out).
        raise StoreError(f"cannot connect to the PostgreSQL store: {str(exc).strip()}", hint=_HINT) from None
    for name in ("json", "jsonb"):  # JSON comes back as text, as DuckDB returns it
        raw.adapters.register_loader(name, TextLoader)
    return Connection(raw)


def compat_sql() -> str:
    return resources.files("masque.store").joinpath("migrations", "postgres", "0000_compat.sql").read_text("utf-8")


def _current_version(conn: Connection) -> int:
    row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


Migrations = Sequence[tuple[int, str, str]]  # (version, name, sql): `masque.store.migrations()`


def _compat_current(conn: Connection, digest: str) -> bool:
    """Whether the database holds exactly this masque's compat functions (a digest of their SQL)."""
    row = conn.execute("SELECT to_regclass('schema_compat') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return False
    row = conn.execute("SELECT digest FROM schema_compat").fetchone()
    return bool(row) and row[0] == digest


def _apply_compat(conn: Connection, compat: str, digest: str) -> None:
    """(Re)define the compat functions and record their digest: only when they changed, since every
    CREATE OR REPLACE rewrites catalog rows (done per process, it would bloat pg_proc)."""
    conn.execute(compat)
    conn.execute("CREATE TABLE IF NOT EXISTS schema_compat (digest TEXT NOT NULL)")
    conn.execute("DELETE FROM schema_compat")
    conn.execute("INSERT INTO schema_compat (digest) VALUES (?)", [digest])


def migrate(conn: Connection, known: Migrations) -> list[int]:
    """Apply pending migrations under a database-wide lock; returns the versions applied."""
    conn.execute("SELECT pg_advisory_lock(?)", [MIGRATE_KEY])
    try:
        done = _current_version(conn)
        if done > len(known):
            raise StoreError(
                f"the store was written by a newer masque (schema version {done}; this one knows {len(known)})",
                hint="upgrade masque (pip install -U masque) on every server sharing this database",
            )
        compat = compat_sql()
        digest = hashlib.sha256(compat.encode("utf-8")).hexdigest()
        if done == len(known):
            if not _compat_current(conn, digest):  # this masque defines functions the database lacks
                conn.execute("BEGIN")
                try:
                    _apply_compat(conn, compat, digest)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            return []
        applied = []
        conn.execute("BEGIN")
        try:
            _apply_compat(conn, compat, digest)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            for version, name, sql in known:
                if version > done:
                    conn.execute(ddl(sql))
                    conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
                    applied.append(version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return applied
    finally:
        conn.execute("SELECT pg_advisory_unlock(?)", [MIGRATE_KEY])


@contextmanager
def connect(url: str, known: Migrations, *, turn: bool = False) -> Iterator[Connection]:
    """A connection for one operation, migrated to `known` on first use; with `turn`, holding the turn."""
    conn = _open(url)
    try:
        if url not in _migrated:
            migrate(conn, known)
            _migrated.add(url)
        if turn:
            conn.execute("SELECT pg_advisory_lock(?)", [TURN_KEY])  # waits up to lock_timeout
        yield conn
    finally:
        conn.close()  # ends the session: its advisory lock goes with it


def snapshot(url: str, known: Migrations, build: Callable[[Any], object]) -> Any:
    """An in-memory DuckDB copy of the whole store, read in one consistent PostgreSQL snapshot.

    Analytics (`masque stats`, `masque sessions export`) run DuckDB SQL; on a PostgreSQL store they run
    it over this copy, with the exact schema of the DuckDB file (the same migrations built it). Writes
    to the copy are thrown away with it. Costs one scan of every table: fine for thousands of sessions,
    and still the way to read millions (a dedicated export then beats re-reading per report).
    """
    import duckdb
    import pyarrow as pa

    duck = duckdb.connect(":memory:", config={"threads": 1})
    try:
        build(duck)  # the DuckDB schema: `masque.store.migrate`
        tables = [
            str(r[0])
            for r in duck.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = 'main' AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations'"
            ).fetchall()
        ]
        with connect(url, known) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            for table in tables:
                names = [str(r[0]) for r in duck.execute(f'SELECT * FROM "{table}" LIMIT 0').description or []]
                cols = ", ".join(f'"{n}"' for n in names)
                found = conn.raw.execute(f'SELECT {cols} FROM "{table}"').fetchall()
                if not found:
                    continue
                arrow = pa.table({n: pa.array(list(c)) for n, c in zip(names, zip(*found, strict=True), strict=True)})
                duck.register("_pg_rows", arrow)
                duck.execute(f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM _pg_rows')
                duck.unregister("_pg_rows")
            conn.execute("COMMIT")
    except BaseException:
        duck.close()
        raise
    return duck


def push_new_rows(duck: Any, shared: Connection, appended: Sequence[str], replaced: Sequence[str]) -> None:
    """Write what a DuckDB job added to its copy (`snapshot`) back to PostgreSQL, in one transaction.

    `appended` tables get the rows the copy gained since `mark_before` (keys already present are left
    alone); `replaced` tables (derived ones, such as score_facts) are rewritten whole when they changed.
    The caller holds the turn from before the snapshot, so nothing else wrote in between.
    """
    shared.execute("BEGIN")
    try:
        for table in [*appended, *replaced]:
            names = [str(r[0]) for r in duck.execute(f'SELECT * FROM "{table}" LIMIT 0').description or []]
            cols = ", ".join(f'"{n}"' for n in names)
            added = duck.execute(f'SELECT {cols} FROM "{table}" EXCEPT SELECT {cols} FROM "_before_{table}"')
            rows = added.fetchall()
            if table in replaced:
                gone = duck.execute(
                    f'SELECT count(*) FROM (SELECT * FROM "_before_{table}" EXCEPT SELECT * FROM "{table}")'
                )
                if not rows and not (gone.fetchone() or (0,))[0]:
                    continue
                shared.execute(f'DELETE FROM "{table}"')
                rows = duck.execute(f'SELECT {cols} FROM "{table}"').fetchall()
            if rows:
                marks = ", ".join(["%s"] * len(names))
                with shared.raw.cursor() as cur:
                    cur.executemany(f'INSERT INTO "{table}" ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING', rows)
        shared.execute("COMMIT")
    except BaseException:
        shared.execute("ROLLBACK")
        raise


def mark_before(duck: Any, tables: Sequence[str]) -> None:
    """Remember the copy's rows of `tables`, so `push_new_rows` can tell what a job added."""
    for table in tables:
        duck.execute(f'CREATE TEMP TABLE "_before_{table}" AS SELECT * FROM "{table}"')
