"""Real processes against one store: concurrent assume/release, readers, and kill -9 at any point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_sessions_support import init_store, store_rows, write_masques

Invoke = Callable[..., Any]
Run = Callable[..., subprocess.CompletedProcess[str]]
pytestmark = pytest.mark.slow
# Only to turn a hang into a failure: no test here waits for a state by a deadline, so a slow or
# loaded machine makes these tests slower, never red.
HANG = 900

# One worker process: N assume/release cycles through the library (CLI start-up would dominate).
CYCLES = textwrap.dedent(
    """
    import sys
    from masque.sessions import lifecycle as sessions
    n = int(sys.argv[1])
    for i in range(n):
        s = sessions.assume("tool", f"work on item {i}")
        sessions.release(s.session_id)
    print("done", n, flush=True)
    """
)

# Reads the session list in a loop until told to stop (stdin closes).
READER = textwrap.dedent(
    """
    import sys, threading
    from masque.sessions.queries import list_sessions
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    reads = 0
    while not stop.is_set():
        list_sessions(limit=20)
        reads += 1
    print("reads", reads, flush=True)
    """
)

# Assumes forever, printing each session id once its transaction committed.
ASSUMER = textwrap.dedent(
    """
    from masque.sessions import lifecycle as sessions
    while True:
        s = sessions.assume("tool", "work on the kill test")
        print(s.session_id, flush=True)
    """
)

# Runs `masque ARGS` in this process, as the console script would, and prints one JSON line per store
# turn taken: how long it was held and which modules were imported while holding it.
TURN_PROBE = textwrap.dedent(
    """
    import fcntl, json, sys, time
    from masque.store import turns
    real_flock, held, log = fcntl.flock, {}, []
    def flock(fd, op):
        done = real_flock(fd, op)
        if op & fcntl.LOCK_EX:
            held.update(t=time.perf_counter(), modules=set(sys.modules))
        elif op == fcntl.LOCK_UN and held:
            log.append({"ms": (time.perf_counter() - held.pop("t")) * 1000,
                        "imported": sorted(set(sys.modules) - held.pop("modules"))})
        return done
    turns.fcntl.flock = flock
    def report():
        for entry in log:
            print("TURN", json.dumps(entry), file=sys.stderr, flush=True)
    import os
    _exit = os._exit
    os._exit = lambda code: (report(), _exit(code))  # assume and release end without teardown
    from masque.cli.entry import main
    sys.argv = ["masque", *sys.argv[1:]]
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    report()
    sys.exit(code)
    """
)

# An exec'd command that reports its pid and then just lives.
SLEEPER = "import os, time; print(os.getpid(), flush=True); [time.sleep(0.1) for _ in range(1200)]"


@pytest.fixture(autouse=True)
def _setup(invoke: Invoke) -> None:
    write_masques()
    init_store(invoke)


def _script(name: str, text: str) -> Path:
    path = Path(name)
    path.write_text(text)
    return path


def _python(*args: Any, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )


def test_eight_processes_fifty_cycles_each_lose_nothing(run_masque: Run) -> None:
    workers, cycles = 8, 50
    script = _script("cycles.py", CYCLES)
    with _python(_script("reader.py", READER), stdin=subprocess.PIPE) as reader:
        procs = [_python(script, cycles) for _ in range(workers)]
        cli_reads = [run_masque("sessions", "--json", "--limit", "5", timeout=HANG) for _ in range(3)]
        outputs = [p.communicate(timeout=HANG) for p in procs]
        read_out, read_err = reader.communicate(input="", timeout=HANG)
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0 and err == "", err
        assert out.strip() == f"done {cycles}"
    assert reader.returncode == 0 and read_err == "" and read_out.startswith("reads ")
    for result in cli_reads:
        assert result.returncode == 0 and "lock" not in result.stderr, result.stderr
        json.loads(result.stdout)
    total = workers * cycles
    assert store_rows("SELECT status, count(*) FROM sessions GROUP BY status") == [("ended", total)]
    assert store_rows("SELECT count(*) FROM credentials WHERE revoked_at IS NOT NULL") == [(total,)]
    counts = dict(store_rows("SELECT type, count(*) FROM events GROUP BY type"))
    assert counts["mask_session_started"] == counts["mask_session_ended"] == total
    assert counts["credential_minted"] == counts["credential_revoked"] == total


def test_a_handful_of_real_cli_processes_at_once() -> None:
    cmd = [sys.executable, "-m", "masque"]
    procs = [
        _python("-m", "masque", "exec", "open", "--intent", f"work on {i}", "--", sys.executable, "-c", "pass")
        for i in range(4)
    ]
    procs += [_python("-m", "masque", "sessions", "--json") for _ in range(2)]
    procs.append(_python("-m", "masque", "assume", "open", "--intent", "work on it", "--format", "json"))
    results = [(p, *p.communicate(timeout=HANG)) for p in procs]
    for proc, _out, err in results:
        assert proc.returncode == 0, (proc.args, err)
        assert "error" not in err, err
    assert cmd  # all through `python -m masque`, as a user would run it
    assert store_rows("SELECT count(*) FROM sessions WHERE status = 'ended' AND exit_code = 0") == [(4,)]


def test_kill_9_of_exec_leaves_a_recorded_session_that_stale_cleans_up(run_masque: Run) -> None:
    with _python(
        "-m", "masque", "exec", "tool", "--intent", "test the kill", "--", sys.executable, "-c", SLEEPER
    ) as proc:
        assert proc.stdout is not None
        child_pid = int(proc.stdout.readline())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    os.kill(child_pid, signal.SIGKILL)  # the orphaned command; not what we are testing
    listed = run_masque("sessions", "--active", "--json", timeout=HANG)
    assert listed.returncode == 0, listed.stderr
    (session,) = json.loads(listed.stdout)
    swept = run_masque("sessions", "--stale", "--json", timeout=HANG)
    assert swept.returncode == 0, swept.stderr
    assert [(s["session_id"], s["status"], s["end_reason"]) for s in json.loads(swept.stdout)] == [
        (session["session_id"], "abandoned", "abandoned")
    ]
    assert not list((Path(os.environ["MASQUE_HOME"]) / "run").glob("*.prompt"))


def test_kill_9_of_an_assume_in_flight_leaves_every_session_whole_or_absent(run_masque: Run) -> None:
    script = _script("assumer.py", ASSUMER)
    with _python(script) as proc:
        assert proc.stdout is not None
        committed = [proc.stdout.readline().strip() for _ in range(5)]
        os.kill(proc.pid, signal.SIGKILL)  # somewhere inside the next assume
        proc.wait()
    killed_cli = _python("-m", "masque", "assume", "tool", "--intent", "work on it")
    killed_cli.kill()
    killed_cli.communicate()
    listed = run_masque("sessions", "--json", timeout=HANG)
    assert listed.returncode == 0, listed.stderr  # the store opens
    recorded = {s["session_id"] for s in json.loads(listed.stdout)}
    assert set(committed) <= recorded  # committed means durable
    # Whole or absent: every recorded session has its credential and its started event.
    assert store_rows(
        "SELECT count(*) FROM sessions s WHERE NOT EXISTS (SELECT 1 FROM credentials c WHERE c.session_id = s.id)"
        " OR NOT EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.id AND e.type = 'mask_session_started')"
    ) == [(0,)]
    swept = json.loads(run_masque("sessions", "--stale", "--json", timeout=HANG).stdout)
    assert {s["session_id"] for s in swept} == recorded  # their holder (the worker) is dead
    assert {s["status"] for s in swept} == {"abandoned"}


def _turns(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line[5:]) for line in result.stderr.splitlines() if line.startswith("TURN ")]


@pytest.mark.duckdb_only(reason="the probe times the file turn's flock; a PostgreSQL turn is an advisory lock")
def test_a_cold_process_imports_nothing_while_holding_the_store_turn() -> None:
    """The turn is held only for the transaction: a cold `import duckdb` alone took ~0.5 s under load."""
    probe = _script("probe.py", TURN_PROBE)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(probe), *args], capture_output=True, text=True, timeout=HANG)

    assumed = run("assume", "tool", "--intent", "work on it", "--format", "json")
    session_id = json.loads(assumed.stdout)["session_id"]
    taken = {
        "assume": _turns(assumed),
        "release": _turns(run("release", session_id)),
        "sessions": _turns(run("sessions", "--json")),
        "exec": _turns(run("exec", "tool", "--intent", "work on it", "--", sys.executable, "-c", "pass")),
    }
    assert all(taken.values()), taken  # every command took the turn at least once
    assert {cmd: [t["imported"] for t in ts if t["imported"]] for cmd, ts in taken.items()} == {
        "assume": [],
        "release": [],
        "sessions": [],
        "exec": [],
    }


def test_eight_cold_cli_processes_under_load_for_30s_record_every_session(run_masque: Run) -> None:
    """8 workers run `masque assume` + `masque release` (each a new process) while `masque sessions`
    reads and two busy loops load every core: every session is recorded and ended, none fails busy."""
    workers, seconds = 8, 30.0
    results: list[subprocess.CompletedProcess[str]] = []
    assumed: list[str] = []
    busy = [_python("-c", "while True: pass") for _ in range(2)]
    end = time.monotonic() + seconds

    def cycle(worker: int) -> None:
        n = 0
        while time.monotonic() < end:
            got = run_masque(
                "assume", "tool", "--intent", f"work on item {worker}.{n}", "--format", "json", timeout=HANG
            )
            results.append(got)
            if got.returncode == 0:
                session_id = json.loads(got.stdout)["session_id"]
                assumed.append(session_id)
                results.append(run_masque("release", session_id, timeout=HANG))
            n += 1

    def read() -> None:
        while time.monotonic() < end:
            results.append(run_masque("sessions", "--json", "--limit", "5", timeout=HANG))

    try:
        threads = [threading.Thread(target=cycle, args=(i,)) for i in range(workers)]
        threads.append(threading.Thread(target=read))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                assert stream is not None
                stream.close()
    failed = [(r.args[3:5], r.returncode, r.stderr.strip()[-300:]) for r in results if r.returncode != 0]
    assert failed == [], (
        f"{len(failed)} of {len(results)} commands failed ({sum(r.returncode == 5 for r in results)} busy)"
    )
    assert len(assumed) >= workers  # every worker got through at least one cycle
    recorded = dict(store_rows("SELECT id, status FROM sessions"))
    assert recorded == dict.fromkeys(assumed, "ended")
    counts = dict(store_rows("SELECT type, count(*) FROM events GROUP BY type"))
    assert counts["mask_session_started"] == counts["mask_session_ended"] == len(assumed)
