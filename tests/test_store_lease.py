"""The store lease: a long-lived process keeps the store between its turns until another process wants it."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sessions_support import init_store, store_rows, write_masques

from masque import config, store
from masque.store import lease, turns

Invoke = Callable[..., Any]
Run = Callable[..., subprocess.CompletedProcess[str]]
HANG = 900  # only turns a hang into a failure; nothing here waits for a state by a deadline

# Enables the lease, assumes a session (one turn), then sits idle holding the lease; the next line on
# stdin makes it release that session (its next turn), printing the outcome.
HOLDER = textwrap.dedent(
    """
    import sys
    from masque.store import lease
    from masque.sessions import lifecycle as sessions
    lease.LINGER = 3600.0  # idle for an hour: only a waiting process can take the store from it
    lease.enable()
    s = sessions.assume("tool", "work while holding the lease")
    print(s.session_id, flush=True)
    sys.stdin.readline()
    sessions.release(s.session_id)
    print("released", flush=True)
    sys.stdin.readline()
    """
)


@pytest.fixture
def prepared(invoke: Invoke) -> None:
    write_masques()
    init_store(invoke)


@pytest.fixture
def leased() -> Iterator[None]:
    """This test process holds leases like a server; given back afterwards."""
    lease.enable()
    try:
        yield
    finally:
        lease.disable()


def _holder(tmp_path: Path) -> subprocess.Popen[str]:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER, encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _turn_is_held_elsewhere() -> bool:
    fd = os.open(config.home() / f"{config.store_path().name}.turn", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.mark.slow
def test_a_cli_command_gets_the_store_from_an_idle_lease_holder_which_then_reopens_it(
    prepared: None, tmp_path: Path, run_masque: Run
) -> None:
    holder = _holder(tmp_path)
    try:
        assert holder.stdout is not None and holder.stdin is not None
        session_id = holder.stdout.readline().strip()
        assert session_id, holder.stderr.read() if holder.stderr else ""
        assert _turn_is_held_elsewhere()  # the idle holder really keeps the store
        listed = run_masque("sessions", "--json", timeout=HANG)
        assert listed.returncode == 0, listed.stderr
        assert [(s["session_id"], s["status"]) for s in json.loads(listed.stdout)] == [(session_id, "active")]
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"  # its next turn reopened the store
        listed = run_masque("sessions", "--json", timeout=HANG)
        assert listed.returncode == 0, listed.stderr
        assert [(s["session_id"], s["status"]) for s in json.loads(listed.stdout)] == [(session_id, "ended")]
    finally:
        holder.kill()
        holder.communicate(timeout=HANG)


@pytest.mark.slow
def test_kill_9_of_a_lease_holder_leaves_the_store_to_the_next_process(
    prepared: None, tmp_path: Path, run_masque: Run
) -> None:
    holder = _holder(tmp_path)
    assert holder.stdout is not None
    session_id = holder.stdout.readline().strip()
    assert session_id
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate(timeout=HANG)
    assert not _turn_is_held_elsewhere()
    listed = run_masque("sessions", "--json", timeout=HANG)
    assert listed.returncode == 0, listed.stderr
    assert [s["session_id"] for s in json.loads(listed.stdout)] == [session_id]
    released = run_masque("release", session_id, timeout=HANG)
    assert released.returncode == 0, released.stderr


def test_the_lease_reuses_one_connection_across_turns(prepared: None, leased: None) -> None:
    with turns.connect() as first:
        pass
    with turns.connect(read_only=True) as second, store.connect(read_only=True) as nested:
        assert nested.execute("SELECT 1").fetchone() == (1,)
    assert first is second


def test_a_rolled_back_transaction_in_a_leased_connection_leaves_nothing(prepared: None, leased: None) -> None:
    with turns.transaction() as conn:
        conn.execute("CREATE TABLE lease_probe (n INTEGER)")
    with pytest.raises(RuntimeError), turns.transaction() as conn:
        conn.execute("INSERT INTO lease_probe VALUES (1)")
        raise RuntimeError("the caller gives up")
    with turns.connect() as conn:  # a block that opens a transaction and never ends it
        conn.execute("BEGIN TRANSACTION")
        conn.execute("INSERT INTO lease_probe VALUES (2)")
    with turns.transaction() as conn:
        conn.execute("INSERT INTO lease_probe VALUES (3)")
    lease.release()  # as when another process asks: close (checkpoint) and give the store up
    lease.disable()
    assert store_rows("SELECT n FROM lease_probe") == [(3,)]


def test_a_replaced_store_is_not_served_from_the_kept_connection(prepared: None, leased: None) -> None:
    with turns.transaction() as conn:
        conn.execute("CREATE TABLE old_only (n INTEGER)")
    path = config.store_path()
    path.rename(path.with_name("moved-aside.duckdb"))
    with turns.connect() as conn:
        tables = {name for (name,) in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert "old_only" not in tables and "sessions" in tables  # a fresh, migrated store


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plans=st.lists(st.lists(st.sampled_from(["write", "read", "nested", "fail"]), max_size=12), min_size=2, max_size=4)
)
def test_threads_never_share_the_leased_connection_at_once(prepared: None, plans: list[list[str]]) -> None:
    lease.enable()
    try:
        with turns.transaction() as conn:
            conn.execute("CREATE OR REPLACE TABLE lease_threads (n INTEGER)")
        users: dict[int, int] = {}
        guard = threading.Lock()
        clashes: list[str] = []

        def use(conn: Any) -> None:
            with guard:
                if users.get(id(conn), threading.get_ident()) != threading.get_ident():
                    clashes.append("two threads in one connection")
                users[id(conn)] = threading.get_ident()

        def done(conn: Any) -> None:
            with guard:
                users.pop(id(conn), None)

        def run(plan: list[str]) -> None:
            for step in plan:
                try:
                    if step == "read":
                        with store.connect(read_only=True) as conn:
                            use(conn)
                            conn.execute("SELECT count(*) FROM lease_threads").fetchone()
                            done(conn)
                    else:
                        with turns.transaction() as conn:
                            use(conn)
                            conn.execute("INSERT INTO lease_threads VALUES (1)")
                            if step == "nested":
                                with turns.connect(read_only=True) as inner:
                                    inner.execute("SELECT 1").fetchone()
                            done(conn)
                            if step == "fail":
                                raise RuntimeError("rolled back")
                except RuntimeError:
                    pass

        threads = [threading.Thread(target=run, args=(plan,)) for plan in plans]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(HANG)
        assert clashes == []
        committed = sum(step in ("write", "nested") for plan in plans for step in plan)
        with turns.connect(read_only=True) as conn:
            assert conn.execute("SELECT count(*) FROM lease_threads").fetchone() == (committed,)
    finally:
        lease.disable()


def test_a_connection_set_up_for_analytics_is_not_kept(prepared: None, leased: None) -> None:
    with turns.connect() as conn:
        store.for_analytics(conn)
    with turns.connect() as again:
        assert again is not conn
        assert again.execute("SELECT current_setting('threads')").fetchone() == (1,)


def test_a_commit_through_the_kept_connection_changes_the_store_marker(prepared: None, leased: None) -> None:
    """The in-process read caches (masque.memory.readcache) key on this marker: a kept connection must move it."""
    with turns.transaction() as conn:
        conn.execute("CREATE TABLE marker_probe (n INTEGER)")
    before, _ = store.change_marker()
    with turns.connect(read_only=True) as conn:
        conn.execute("SELECT count(*) FROM marker_probe").fetchone()
    assert store.change_marker()[0] == before  # a read commits nothing
    with turns.transaction() as conn:
        conn.execute("INSERT INTO marker_probe VALUES (1)")
    assert store.change_marker()[0] != before
