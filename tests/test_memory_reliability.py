"""Memory under stress: concurrent writers, kill -9 mid-import, damaged or missing shards."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.memory_support import memory_masques  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("memory_masques")

Invoke = Callable[..., Any]

# Compaction every 8 commits instead of 64, so compactions race the appends and deletes too.
_WRITER = """
import sys
from masque import memory
from masque.memory import search
search.COMPACT_FRAGMENTS = 8
for i in range(int(sys.argv[2])):
    memory.add([f"writer {sys.argv[1]} memory {i}"], "codesmith", branch="scratch" if i % 4 == 0 else "keep")
    if sys.argv[1] == "0" and i % 4 == 1:
        memory.forget("codesmith", memory.Filters(branch="scratch"))
"""

# Imports a JSONL file and SIGKILLs itself while the third batch is being committed.
_KILLED_IMPORT = """
import os, signal, sys, threading
from masque.memory import ops, shards, transfer
ops.BATCH_ROWS = 50
real_add = shards.Shard.add
calls = []
def add(self, batch):
    calls.append(1)
    if len(calls) == 3:
        threading.Timer(0.001, os.kill, (os.getpid(), signal.SIGKILL)).start()
    real_add(self, batch)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
shards.Shard.add = add
with open(sys.argv[1], encoding="utf-8") as fh:
    transfer.import_memories(fh, source=sys.argv[1])
"""


@pytest.mark.slow
def test_four_concurrent_writers_lose_nothing(tmp_path: Path, invoke: Invoke) -> None:
    per_writer = 12
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(n), str(per_writer)], stderr=subprocess.PIPE, text=True)
        for n in range(4)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors

    from masque import store

    listed = json.loads(invoke(["memory", "list", "codesmith", "--limit", "1000", "--json"]).stdout)["memories"]
    with store.connect(read_only=True) as conn:
        history = conn.execute("SELECT event, memory_id FROM memory_history").fetchall()
    added = {m for e, m in history if e == "added"}
    forgotten = {m for e, m in history if e == "forgotten"}
    assert len(added) == 4 * per_writer
    assert {m["id"] for m in listed} == added - forgotten
    kept = sorted(m["text"] for m in listed if m["branch"] == "keep")
    assert kept == sorted(f"writer {n} memory {i}" for n in range(4) for i in range(per_writer) if i % 4)


@pytest.mark.slow
def test_kill_9_during_import_leaves_whole_batches(tmp_path: Path, invoke: Invoke) -> None:
    dump = tmp_path / "bulk.jsonl"
    with dump.open("w", encoding="utf-8") as fh:
        for i in range(400):
            line = {"id": f"mem_bulk{i:04d}", "masque": "codesmith", "text": f"bulk memory number {i}"}
            fh.write(json.dumps(line) + "\n")

    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_IMPORT, str(dump)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == -signal.SIGKILL

    stats = invoke(["memory", "stats", "codesmith", "--json"])
    assert stats.exit_code == 0, stats.output
    rows = json.loads(stats.stdout)["shards"][0]["rows"]
    assert rows in (100, 150)  # two or three whole batches of 50, never part of one

    resumed = json.loads(invoke(["memory", "import", str(dump), "--json"]).stdout)  # ids make it resumable
    assert (resumed["imported"], resumed["skipped"]) == (400 - rows, rows)


def _damage(path: Path) -> None:
    for manifest in (path / "_versions").iterdir():
        manifest.write_bytes(b"\x00garbage\x00" * 8)


def test_a_damaged_shard_names_itself_and_how_to_rebuild(invoke: Invoke) -> None:
    from masque import config

    invoke(["memory", "add", "codesmith", "soon damaged"])
    shard = config.memory_dir() / "mask_memory_codesmith.lance"
    _damage(shard)

    result = invoke(["memory", "search", "codesmith", "damaged"])

    assert result.exit_code == 5
    assert "mask_memory_codesmith" in result.stderr
    assert "masque memory import" in result.stderr and "masque memory export" in result.stderr


def test_a_lost_data_file_is_reported_as_damage(invoke: Invoke) -> None:
    from masque import config

    invoke(["memory", "add", "codesmith", "its data file will vanish"])
    for data in (config.memory_dir() / "mask_memory_codesmith.lance" / "data").iterdir():
        data.unlink()

    result = invoke(["memory", "search", "codesmith", "vanish"])

    assert result.exit_code == 5
    assert "mask_memory_codesmith" in result.stderr and "damaged" in result.stderr
    assert "masque memory import" in result.stderr


def test_a_missing_shard_is_an_error_not_an_empty_result(invoke: Invoke) -> None:
    from masque import config

    invoke(["memory", "add", "codesmith", "soon gone"])
    shutil.rmtree(config.memory_dir() / "mask_memory_codesmith.lance")

    result = invoke(["memory", "list", "codesmith"])

    assert result.exit_code == 5
    assert "mask_memory_codesmith" in result.stderr and "missing" in result.stderr


@pytest.mark.slow
def test_a_cold_memory_search_process_works(run_masque: Callable[..., Any], invoke: Invoke) -> None:
    invoke(["memory", "add", "codesmith", "cold processes find this"])
    env = {"MASQUE_HOME": os.environ["MASQUE_HOME"]}
    proc = run_masque("memory", "search", "codesmith", "cold processes", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["text"] == "cold processes find this"
