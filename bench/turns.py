"""Benchmark: how long a cold `masque assume` / `masque release` process holds the store's turn.

    python bench/turns.py [--runs 10] [--busy 0]

Every other process waits while one holds the turn (`masque/turns.py`), so this, not the command's
wall time, bounds how many agents can assume and release at once. Each run is a new process that
wraps `fcntl.flock` to time the turn and list the modules imported while holding it (there should
be none). `--busy N` runs N busy-loop processes meanwhile, to see the hold time on a loaded machine.
Runs against a throw-away store and the shipped personas.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PROBE = """
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
    print("TURN", json.dumps(log), file=sys.stderr, flush=True)
import os
_exit = os._exit
os._exit = lambda code: (report(), _exit(code))  # a hot command ends without teardown
from masque.cli.entry import main
sys.argv = ["masque", *sys.argv[1:]]
try:
    main()
finally:
    report()
"""


def _held(args: list[str], env: dict[str, str]) -> tuple[str, list[dict[str, object]]]:
    # cwd: the home, so `-c` finds the installed masque (or PYTHONPATH's), not a checkout in the cwd.
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env=env,
        cwd=env["MASQUE_HOME"],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in proc.stderr.splitlines() if line.startswith("TURN "))
    return proc.stdout, json.loads(line[5:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="cold assume+release pairs")
    parser.add_argument("--busy", type=int, default=0, help="busy-loop processes to load the machine with")
    args = parser.parse_args()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, MASQUE_HOME=str(Path(tmp) / "home"), MASQUE_PATH=str(REPO / "personas"))
            for name in ("MASQUE_SESSION_ID", "MASQUE_TOKEN", "MASQUE_ACTOR", "MASQUE_ACTOR_KEY", "MASQUE_CONFIG"):
                env.pop(name, None)
            subprocess.run([sys.executable, "-m", "masque", "init"], env=env, check=True, capture_output=True)
            held: dict[str, list[float]] = {"assume": [], "release": []}
            imported: set[str] = set()
            for _ in range(args.runs):
                out, turns = _held(["assume", "codesmith", "--intent", "implement the parser", "--format", "json"], env)
                held["assume"] += [float(t["ms"]) for t in turns]  # type: ignore[arg-type]
                imported.update(m for t in turns for m in t["imported"])  # type: ignore[attr-defined]
                _, turns = _held(["release", json.loads(out)["session_id"]], env)
                held["release"] += [float(t["ms"]) for t in turns]  # type: ignore[arg-type]
                imported.update(m for t in turns for m in t["imported"])  # type: ignore[attr-defined]
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    for command, times in held.items():
        print(
            f"masque {command:8} turn held {statistics.median(times):6.1f} ms median, "
            f"{max(times):6.1f} ms max ({len(times)} turns, {args.busy} busy loops)"
        )
    packages = sorted({m.split(".")[0] for m in imported if not m.startswith("_")})
    print(f"modules imported while holding a turn: {len(imported)} {packages if packages else ''}".rstrip())


if __name__ == "__main__":
    main()
