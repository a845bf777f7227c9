"""The store: numbered migrations applied once, lock conflicts named, damage and newer stores refused."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from masque import config, store
from masque.errors import StoreBusy, StoreError


def test_migrations_are_numbered_without_gaps() -> None:
    versions = [v for v, _, _ in store.migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_a_new_store_records_every_migration_once_and_is_private(isolated_env: Path) -> None:
    with store.connect() as conn:
        first = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    store._migrated.clear()
    with store.connect() as conn:
        again = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert first == again == [(v,) for v, _, _ in store.migrations()]
    assert (config.store_path().stat().st_mode & 0o777) == 0o600
    assert (isolated_env.stat().st_mode & 0o777) == 0o700


def test_every_column_has_a_comment() -> None:
    with store.connect() as conn:
        missing = conn.execute(
            "SELECT table_name, column_name FROM duckdb_columns()"
            " WHERE database_name = current_database() AND schema_name = 'main'"
            " AND table_name <> 'schema_migrations' AND comment IS NULL"
        ).fetchall()
    assert missing == []


def test_a_store_from_a_newer_masque_is_refused(invoke: Callable[..., Any]) -> None:
    with store.connect() as conn:
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')")
    store._migrated.clear()
    with pytest.raises(StoreError, match="newer masque"), store.connect():
        pass
    store._migrated.clear()
    result = invoke(["sessions"])
    assert result.exit_code == 5
    assert "newer masque" in result.stderr


def test_a_damaged_store_exits_5_with_a_way_out(invoke: Callable[..., Any]) -> None:
    config.ensure_home()
    config.store_path().write_bytes(b"this is not a duckdb file" * 100)
    result = invoke(["sessions"])
    assert result.exit_code == 5
    assert "damaged" in result.stderr and "hint:" in result.stderr


def test_a_held_lock_times_out_naming_the_holder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with store.connect():
        pass
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(60)",
            str(config.store_path()),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        conf = tmp_path / "masque.toml"
        conf.write_text("[limits]\nlock_timeout = 0.3\n")
        monkeypatch.setenv("MASQUE_CONFIG", str(conf))
        with pytest.raises(StoreBusy, match=f"PID {holder.pid}"), store.connect():
            pass
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()


def test_a_store_whose_creation_died_is_created_afresh(invoke: Callable[..., Any]) -> None:
    """kill -9 while DuckDB creates the file leaves an empty husk; it holds no data, so it is replaced."""
    import os

    config.ensure_home()
    husk = config.store_path()
    husk.write_bytes(b"")
    os.utime(husk, (1, 1))  # long ago: no creator is still at work on it
    result = invoke(["sessions"])
    assert result.exit_code == 0, result.output
    with store.connect(read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(store.migrations())


def test_a_store_removed_just_before_a_read_only_open_is_created(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process removes an unfinished husk between our exists() and DuckDB's open: no error."""
    import duckdb

    config.ensure_home()
    path = config.store_path()
    path.write_bytes(b"")
    real = duckdb.connect

    def connect(database: str, read_only: bool = False, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        if read_only:
            path.unlink(missing_ok=True)
        return real(database, read_only=read_only, **kwargs)

    monkeypatch.setattr(duckdb, "connect", connect)
    with store.connect(read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(store.migrations())


def test_a_store_being_created_by_another_process_is_waited_for(isolated_env: Path) -> None:
    """The file exists but its creator has not written the header yet: wait for it, do not fail."""
    import threading

    import duckdb

    config.ensure_home()
    path = config.store_path()
    path.write_bytes(b"")  # what another process's brand-new store looks like for a few milliseconds

    def creator() -> None:
        path.unlink()
        duckdb.connect(str(path)).close()

    timer = threading.Timer(0.3, creator)
    timer.start()
    try:
        with store.connect(read_only=True) as conn:
            assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(store.migrations())
    finally:
        timer.join()


def test_a_reader_waits_while_another_thread_holds_the_store_read_write(isolated_env: Path) -> None:
    """In one process DuckDB refuses a read-only open beside a read-write one: that is busy, not damage."""
    import threading

    import duckdb

    with store.transaction():
        pass  # the store exists, migrated
    held = duckdb.connect(str(config.store_path()))  # a library user's other thread, mid-operation
    release = threading.Timer(0.3, held.close)
    release.start()
    try:
        with store.connect(read_only=True) as conn:
            assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(store.migrations())
    finally:
        release.join()
