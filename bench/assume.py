"""Benchmark: cold `masque assume` (a new process each time) and in-process assume+release per second.

    python bench/assume.py [--runs 15] [--cycles 100]

Runs against a throw-away store (a temp MASQUE_HOME) and the shipped personas. Prints medians and
ratios against two floors a CLI cannot beat: `python -c pass` (interpreter start) and
`masque --version` (importing the CLI), plus the cost of opening/closing the DuckDB store, which
bounds every per-operation connection.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REF, INTENT = "codesmith", "implement the parser"


def _wall(cmd: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _in_process(cycles: int) -> tuple[float, float]:
    """(assume+release cycles per second, median seconds of one bare store open+close)."""
    from masque import store
    from masque.sessions import lifecycle as sessions

    sessions.release(sessions.assume(REF, INTENT).session_id)  # warm caches and the registry
    start = time.perf_counter()
    for i in range(cycles):
        s = sessions.assume(REF, f"{INTENT} {i}")
        sessions.release(s.session_id)
    per_second = cycles / (time.perf_counter() - start)
    opens = []
    for _ in range(20):
        t = time.perf_counter()
        with store.connect():
            pass
        opens.append(time.perf_counter() - t)
    return per_second, statistics.median(opens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="cold process runs per command")
    parser.add_argument("--cycles", type=int, default=100, help="in-process assume+release cycles")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            MASQUE_HOME=str(Path(tmp) / "home"),
            MASQUE_PATH=str(REPO / "personas"),
            XDG_CONFIG_HOME=str(Path(tmp) / "xdg"),
        )
        # PYTHONDONTWRITEBYTECODE would recompile an editable checkout on every run; installs keep .pyc.
        for name in ("MASQUE_SESSION_ID", "MASQUE_TOKEN", "MASQUE_ACTOR", "MASQUE_ACTOR_KEY", "MASQUE_CONFIG"):
            env.pop(name, None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        masque = [sys.executable, "-m", "masque"]
        subprocess.run([*masque, "init", "--founder", "bench"], env=env, check=True, capture_output=True)
        floor = _wall([sys.executable, "-c", "pass"], env, args.runs)
        version = _wall([*masque, "--version"], env, args.runs)
        help_ = _wall([*masque, "--help"], env, args.runs)
        cold = _wall([*masque, "assume", REF, "--intent", INTENT, "--format", "json"], env, args.runs)
        os.environ.update(env)
        per_second, open_close = _in_process(args.cycles)
    print(f"python -c pass            {floor * 1000:7.1f} ms  (median of {args.runs})")
    print(f"masque --version          {version * 1000:7.1f} ms  (answered before the CLI is built)")
    print(f"masque --help             {help_ * 1000:7.1f} ms  (the whole Typer CLI, no command run)")
    print(
        f"masque assume (cold)      {cold * 1000:7.1f} ms  = {cold / floor:.1f}x python start, "
        f"{cold / help_:.1f}x masque --help"
    )
    print(f"store open+close          {open_close * 1000:7.1f} ms  (one per-operation connection)")
    print(
        f"in-process assume+release {per_second:7.1f} /s  ({1000 / per_second:.1f} ms per cycle = "
        f"{1 / per_second / open_close:.1f}x a bare store open+close; a cycle needs two)"
    )


if __name__ == "__main__":
    main()
