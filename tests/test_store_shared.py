"""The PostgreSQL store: configuration, the SQL adapter, and several servers sharing one database.

The rest of the store's behaviour is covered by running the shared store tests with `--store=postgres`
(docs/development.md); these tests are about what only exists because of the second backend.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_sessions_support import init_store, write_masques

from masque.errors import UsageError
from tests import s3_support

s3_endpoint = s3_support.s3_endpoint  # the fixtures
s3_memory = s3_support.s3_memory

Invoke = Callable[..., Any]


def test_the_embedded_duckdb_file_stays_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from masque import config

    monkeypatch.delenv("MASQUE_STORE_URL", raising=False)
    assert config.store_url() is None


def test_the_store_url_comes_from_the_environment_or_masque_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from masque import config

    monkeypatch.delenv("MASQUE_STORE_URL", raising=False)
    toml = tmp_path / "masque.toml"
    toml.write_text('[store]\nurl = "postgresql://app@127.0.0.1:5432/masque"\n', encoding="utf-8")
    monkeypatch.setenv("MASQUE_CONFIG", str(toml))
    assert config.store_url() == "postgresql://app@127.0.0.1:5432/masque"
    monkeypatch.setenv("MASQUE_STORE_URL", "postgresql://other@127.0.0.1:5433/shared")
    assert config.store_url() == "postgresql://other@127.0.0.1:5433/shared"


def test_an_unsupported_store_url_is_a_usage_error_without_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from masque import config

    monkeypatch.setenv("MASQUE_STORE_URL", "mysql://app:s3cret@db/masque")
    with pytest.raises(UsageError) as caught:
        config.store_url()
    assert "mysql" in str(caught.value) and "s3cret" not in str(caught.value)
    assert "postgresql://" in (caught.value.hint or "")


def test_a_postgres_url_without_psycopg_tells_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from masque.store import pg

    monkeypatch.setitem(sys.modules, "psycopg", None)  # what an install without the extra looks like
    with pytest.raises(UsageError) as caught:
        pg._psycopg()
    assert "pip install 'masque[postgres]'" in (caught.value.hint or "")


def test_placeholders_become_psycopgs_outside_string_literals_only() -> None:
    from masque.store.pg import ddl, translate

    assert translate("SELECT * FROM t WHERE a = ? AND b = $name") == "SELECT * FROM t WHERE a = %s AND b = %(name)s"
    assert translate("SELECT '?', 'it''s $x 50%', x FROM t WHERE y LIKE ?") == (
        "SELECT '?', 'it''s $x 50%%', x FROM t WHERE y LIKE %s"
    )
    assert translate("SELECT 1 -- why? $because\nWHERE a = ?") == "SELECT 1 -- why? $because\nWHERE a = %s"
    assert (
        translate("UPDATE s SET m = json_merge_patch(m, ?::JSON)") == "UPDATE s SET m = json_merge_patch(m, %s::jsonb)"
    )
    assert translate("SELECT '50%'", with_params=False) == "SELECT '50%'"
    assert ddl("CREATE TABLE t (j JSON, d DOUBLE);\nCOMMENT ON TABLE t IS 'Free JSON, DOUBLE checked'") == (
        "CREATE TABLE t (j JSONB, d DOUBLE PRECISION);\nCOMMENT ON TABLE t IS 'Free JSON, DOUBLE checked'"
    )


def test_a_duckdb_store_never_imports_psycopg(run_masque: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    code = (
        "import sys\nfrom masque.store import turns\n"
        "with turns.transaction() as conn: conn.execute('SELECT 1').fetchone()\n"
        "print('psycopg' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MASQUE_STORE_URL"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.fixture
def shared_db(request: pytest.FixtureRequest) -> str:
    """A fresh database on the session's throwaway PostgreSQL server, whatever --store says."""
    from tests.pg_support import pg_bin

    if pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs it)")
    return str(request.getfixturevalue("pg_server").new_database())


@pytest.fixture
def two_servers(tmp_path: Path, shared_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Two `masque serve --store URL` processes, each with its own MASQUE_HOME, on one database."""
    from net_support import free_port
    from test_serve import _wait_until_answering

    monkeypatch.setenv("MASQUE_STORE_URL", shared_db)  # the test's own CLI calls (masque init) use it too
    procs: list[subprocess.Popen[str]] = []
    bases = []
    try:
        for name in ("a", "b"):
            port = free_port()
            env = {k: v for k, v in os.environ.items() if k != "MASQUE_STORE_URL"}
            env["MASQUE_HOME"] = str(tmp_path / f"server-{name}")
            cmd = [sys.executable, "-m", "masque", "serve", "--port", str(port), "--log-level", "warning"]
            proc = subprocess.Popen(
                [*cmd, "--store", shared_db], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
            procs.append(proc)
            bases.append(f"http://127.0.0.1:{port}")
            _wait_until_answering(f"{bases[-1]}/health", proc)
        yield bases
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 0 and "Traceback" not in err, err


@pytest.mark.slow
def test_a_session_activated_on_one_server_verifies_on_another(invoke: Invoke, two_servers: list[str]) -> None:
    import httpx2 as httpx

    write_masques()
    root = init_store(invoke)  # the founder, written to the shared database
    a, b = two_servers
    r = httpx.post(
        f"{a}/masks/activate",
        json={"masque": "open", "intent": "answer questions"},
        headers={"Authorization": f"Bearer {root}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    sid, token = r.json()["session_id"], r.json()["token"]
    # Server B never saw the activation: it proves the token against the shared store.
    seen = httpx.get(f"{b}/sessions/{sid}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert seen.status_code == 200, seen.text
    assert seen.json()["session_id"] == sid and seen.json()["status"] == "active"
    ended = httpx.post(
        f"{b}/masks/deactivate", json={"session_id": sid}, headers={"Authorization": f"Bearer {root}"}, timeout=30
    )
    assert ended.status_code == 200, ended.text
    # ... and server A sees it ended, and no longer accepts its token.
    listed = httpx.get(f"{a}/sessions", headers={"Authorization": f"Bearer {root}"}, timeout=30).json()
    assert listed[0]["session_id"] == sid and listed[0]["status"] == "ended"
    refused = httpx.get(f"{a}/sessions/{sid}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert refused.status_code in (401, 403), refused.text


def test_path_and_init_name_the_shared_store_without_its_password(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    from masque import config

    monkeypatch.setenv("MASQUE_STORE_URL", "postgresql://app:s3cret@db.internal:5432/masque")
    assert config.store_display() == "postgresql://app:***@db.internal:5432/masque"
    shown = invoke(["path", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["store"] == "postgresql://app:***@db.internal:5432/masque"
    assert "s3cret" not in shown.output


@pytest.fixture
def two_homes_on_one_database(tmp_path: Path, shared_db: str, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Two machines' homes (`MASQUE_HOME`) sharing one PostgreSQL store: switch with monkeypatch.setenv."""
    monkeypatch.setenv("MASQUE_STORE_URL", shared_db)
    return [tmp_path / "home-a", tmp_path / "home-b"]


def _memory_texts(invoke: Invoke, query: str) -> list[str]:
    found = invoke(["memory", "search", "codesmith", query, "--json"])
    assert found.exit_code == 0, found.output
    return [r["text"] for r in json.loads(found.stdout)["results"]]


def test_memory_on_a_shared_store_with_shared_object_storage_is_seen_from_every_home(
    invoke: Invoke,
    two_homes_on_one_database: list[Path],
    s3_memory: Any,
    personas: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home_a, home_b = two_homes_on_one_database
    monkeypatch.setenv("MASQUE_PATH", str(personas))
    monkeypatch.setenv("MASQUE_HOME", str(home_a))
    init_store(invoke)
    added = invoke(["memory", "add", "codesmith", "the parser keeps line numbers"])
    assert added.exit_code == 0, added.output
    monkeypatch.setenv("MASQUE_HOME", str(home_b))  # another machine: its own home, the same store and bucket
    assert _memory_texts(invoke, "parser line numbers") == ["the parser keeps line numbers"]
    log = invoke(["memory", "log", "--json"])  # B's search is in the one compliance log, beside A's add
    assert log.exit_code == 0, log.output
    assert {"add", "search"} <= {e["action"] for e in json.loads(log.stdout)["entries"]}


def test_memory_kept_on_one_machine_of_a_shared_store_is_named_as_a_setup_gap(
    invoke: Invoke, two_homes_on_one_database: list[Path], personas: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home_a, home_b = two_homes_on_one_database
    monkeypatch.setenv("MASQUE_PATH", str(personas))
    monkeypatch.setenv("MASQUE_HOME", str(home_a))
    init_store(invoke)
    assert invoke(["memory", "add", "codesmith", "kept on machine a"]).exit_code == 0
    assert _memory_texts(invoke, "machine") == ["kept on machine a"]
    monkeypatch.setenv("MASQUE_HOME", str(home_b))
    refused = invoke(["memory", "search", "codesmith", "machine"])
    assert refused.exit_code == 5
    assert "not on this machine" in refused.output and 'uri = "s3://' in refused.output


def test_compat_functions_are_redefined_only_when_this_masque_changed_them(
    invoke: Invoke,
    shared_db: str,
    run_masque: Callable[..., subprocess.CompletedProcess[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import psycopg

    monkeypatch.setenv("MASQUE_STORE_URL", shared_db)
    init_store(invoke)  # migrates the new database, compat functions included

    def list_contains_row() -> Any:
        with psycopg.connect(shared_db, autocommit=True) as db:
            row = db.execute("SELECT xmin::text FROM pg_proc WHERE proname = 'list_contains'").fetchone()
            return row[0] if row else None

    before = list_contains_row()
    assert before is not None
    assert run_masque("whoami").returncode == 0  # another process, up to date: the catalog is left alone
    assert list_contains_row() == before
    with psycopg.connect(shared_db, autocommit=True) as db:  # a database from a masque that lacked it
        db.execute("DROP FUNCTION list_contains(text[], text)")
        db.execute("UPDATE schema_compat SET digest = 'an older masque'")
    done = run_masque("whoami")
    assert done.returncode == 0, done.stderr
    assert list_contains_row() is not None
