"""A throwaway PostgreSQL server for `pytest --store=postgres` (one per test session).

initdb refuses root, so the cluster belongs to the `postgres` user and the server runs as it
(`runuser`); tests connect over TCP on 127.0.0.1 with trust authentication. Each test gets its own
database, cloned from a template that is already migrated (a clone takes milliseconds).
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from net_support import free_port

_counter = itertools.count(1)


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class Server:
    """A running throwaway cluster; `new_database()` returns the URL of a fresh migrated database."""

    def __init__(self) -> None:

        bindir = pg_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
        self.root = Path(tempfile.mkdtemp(prefix="masque-pg-"))
        data, sock = self.root / "data", self.root / "sock"
        sock.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(sock, "postgres")
        subprocess.run(
            [*_as_postgres(), str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
        )
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                *_as_postgres(),
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-k",
                str(sock),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"postgresql://postgres@127.0.0.1:{self.port}"
        try:
            self._ready()
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + 60
        while True:
            try:
                with psycopg.connect(f"{self.base}/postgres", connect_timeout=2):
                    break
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the throwaway PostgreSQL server did not start") from None
                time.sleep(0.02)
        self._admin("CREATE DATABASE masque_template")
        from masque import store
        from masque.store import pg

        store.check_shared(f"{self.base}/masque_template")  # migrates it
        pg._migrated.discard(f"{self.base}/masque_template")

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"{self.base}/postgres", autocommit=True) as conn:
            conn.execute(sql)

    def new_database(self) -> str:
        name = f"t{os.getpid()}_{next(_counter)}"
        self._admin(f"CREATE DATABASE {name} TEMPLATE masque_template")
        return f"{self.base}/{name}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:  # the postmaster itself (runuser may not pass signals on): SIGINT is a fast shutdown
                pid = int((self.root / "data" / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGINT)
            except (OSError, ValueError, IndexError):
                self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
