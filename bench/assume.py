"""Benchmark: the cold agent hot path (`masque assume` + `masque release`, `masque check`) against its floor.

    python bench/assume.py [--runs 15] [--cycles 100] [--against CHECKOUT]

Runs against a throw-away store (a temp MASQUE_HOME, `masque init` run once) and the shipped personas.

1. The cycle an agent pays per task: `masque assume REF --intent ... --format json` then `masque release
   SESSION_ID`, each a new process. Its floor (issue 13) is two cold processes that `import duckdb` and
   commit one small transaction on a copy of the bench's store (every verb that writes the store needs
   that much, so no implementation of the cycle can be faster); the ratio against two processes that
   only `import duckdb` (the floor issue 11 used) is shown too. Each round runs both floor pairs and the
   cycle back to back, so load from other processes hits them alike; a ratio is the median of the
   per-round ratios (goal: <= 1.3x the floor).
2. `masque check REF --intent ...` cold, pinned (NAME@x.y.z) and unpinned (NAME: the registry may
   consult rollout stages). With no rollout stage ever recorded, neither needs DuckDB; a separate,
   untimed `python -X importtime` run of each reports whether duckdb was imported.
3. For context: `python -c pass`, `masque --version`, `masque --help` (goal <= 150 ms; also without a
   cache directory, as Typer prints it on a first run), and in-process assume+release
   cycles per second against one bare store open+close (a cycle needs at least two).
4. With `--against CHECKOUT`: that checkout's cold cycle and this one's in alternating rounds, each round
   paired with the floor, so a change is measured against its base under the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REF, INTENT = "codesmith", "implement the parser"
GOAL = 1.3  # issue 11: the cold cycle within 1.3x its floor
HELP_GOAL_MS = 150  # issue 11: `masque --help`


def _version(ref: str) -> str:
    text = (REPO / "personas" / f"{ref}.masque.yaml").read_text(encoding="utf-8")
    found = re.search(r'^version:\s*"?([^"\s]+)"?\s*$', text, re.MULTILINE)
    assert found, f"no version in personas/{ref}.masque.yaml"
    return found.group(1)


def _run(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=cwd)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def _wall(cmd: list[str], env: dict[str, str], runs: int) -> float:
    return statistics.median(_run(cmd, env)[0] for _ in range(runs))


def _cycle_parts(masque: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, float]:
    took, out = _run([*masque, "assume", REF, "--intent", INTENT, "--format", "json"], env, cwd)
    session_id = json.loads(out)["session_id"]
    return took, _run([*masque, "release", session_id], env, cwd)[0]


def _cycle(masque: list[str], env: dict[str, str]) -> float:
    return sum(_cycle_parts(masque, env))


FLOOR_TXN = (
    "import sys, duckdb; c = duckdb.connect(sys.argv[1]); c.execute('CREATE TABLE IF NOT EXISTS floor (n INTEGER)'); "
    "c.execute('BEGIN TRANSACTION'); c.execute('INSERT INTO floor VALUES (1)'); c.execute('COMMIT'); c.close()"
)


def cycle_vs_floor(masque: list[str], env: dict[str, str], runs: int, store_copy: Path) -> dict[str, float]:
    """Medians of the cold assume+release, both floors and the per-round ratios, paired round by round."""
    import_floor = [sys.executable, "-c", "import duckdb"]
    txn_floor = [sys.executable, "-c", FLOOR_TXN, str(store_copy)]
    _cycle(masque, env)  # warm the file cache and bytecode, untimed
    rounds: dict[str, list[float]] = {"cycle": [], "floor": [], "import_floor": [], "ratio": [], "import_ratio": []}
    for _ in range(runs):
        bare = _run(import_floor, env)[0] + _run(import_floor, env)[0]
        floor = _run(txn_floor, env)[0] + _run(txn_floor, env)[0]
        cycle = _cycle(masque, env)
        rounds["cycle"].append(cycle)
        rounds["floor"].append(floor)
        rounds["import_floor"].append(bare)
        rounds["ratio"].append(cycle / floor)
        rounds["import_ratio"].append(cycle / bare)
    return {name: statistics.median(values) for name, values in rounds.items()}


def imports_duckdb(cmd: list[str], env: dict[str, str]) -> bool:
    """Did the command import duckdb? Read from `python -X importtime` (one untimed run)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *cmd[1:]], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    modules = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return any(m == "duckdb" or m.startswith("duckdb.") for m in modules)


def against(other: Path, env: dict[str, str], runs: int, tmp: Path) -> dict[str, float]:
    """Another checkout's cold cycle and this one's in alternating rounds, each round paired with the floor.

    Each side imports its own tree (PYTHONPATH, run from a directory holding neither) and keeps its
    own store and cache directory (each CLI prunes the other's spec); both wear the same personas.
    """
    masque = [sys.executable, "-m", "masque"]
    sides = {}
    for side, tree in (("other", other.resolve()), ("this", REPO)):
        home = tmp / f"ab-{side}"
        sides[side] = dict(
            env, PYTHONPATH=str(tree), MASQUE_HOME=str(home / "home"), XDG_CACHE_HOME=str(home / "cache")
        )
        _run([*masque, "init", "--founder", "bench"], sides[side], tmp)
        _cycle_parts(masque, sides[side], tmp)  # writes the CLI spec and the cached definition
    store_copy = tmp / "ab-floor.duckdb"
    shutil.copyfile(tmp / "ab-this" / "home" / "masque.duckdb", store_copy)
    txn_floor = [sys.executable, "-c", FLOOR_TXN, str(store_copy)]
    rounds: dict[str, list[float]] = {
        k: [] for k in ("floor", "other", "this", "other_a", "other_r", "this_a", "this_r")
    }
    for i in range(runs):
        floor = _run(txn_floor, env)[0] + _run(txn_floor, env)[0]
        for side in ("other", "this") if i % 2 == 0 else ("this", "other"):
            assume, release = _cycle_parts(masque, sides[side], tmp)
            rounds[side].append((assume + release) / floor)
            rounds[f"{side}_a"].append(assume)
            rounds[f"{side}_r"].append(release)
        rounds["floor"].append(floor)
    return {name: statistics.median(values) for name, values in rounds.items()}


def _in_process(cycles: int) -> tuple[float, float]:
    """(assume+release cycles per second, median seconds of one bare store open+close)."""
    import masque

    masque.release(masque.assume(REF, intent=INTENT))  # warm caches and the registry
    start = time.perf_counter()
    for i in range(cycles):
        masque.release(masque.assume(REF, intent=f"{INTENT} {i}"))
    per_second = cycles / (time.perf_counter() - start)
    import duckdb

    path = str(Path(os.environ["MASQUE_HOME"]) / "masque.duckdb")
    opens = []
    for _ in range(20):
        t = time.perf_counter()
        duckdb.connect(path).close()
        opens.append(time.perf_counter() - t)
    return per_second, statistics.median(opens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="cold process runs per command")
    parser.add_argument("--cycles", type=int, default=100, help="in-process assume+release cycles")
    parser.add_argument(
        "--against",
        type=Path,
        metavar="CHECKOUT",
        help="also alternate another checkout's cold cycle with this one's, --runs rounds, each paired with "
        "the floor (e.g. `git worktree add /tmp/before HEAD~3`)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            MASQUE_HOME=str(Path(tmp) / "home"),
            MASQUE_PATH=str(REPO / "personas"),
            XDG_CONFIG_HOME=str(Path(tmp) / "xdg"),
            XDG_CACHE_HOME=str(Path(tmp) / "cache"),  # compiled validators and the CLI spec, written by the warm-up
        )
        # PYTHONDONTWRITEBYTECODE would recompile an editable checkout on every run; installs keep .pyc.
        for name in ("MASQUE_SESSION_ID", "MASQUE_TOKEN", "MASQUE_ACTOR", "MASQUE_ACTOR_KEY", "MASQUE_CONFIG"):
            env.pop(name, None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        masque = [sys.executable, "-m", "masque"]
        subprocess.run([*masque, "init", "--founder", "bench"], env=env, check=True, capture_output=True)
        start_up = _wall([sys.executable, "-c", "pass"], env, args.runs)
        version = _wall([*masque, "--version"], env, args.runs)
        help_ = _wall([*masque, "--help"], env, args.runs)
        blocked = Path(tmp) / "no-cache"  # a file where the cache directory would be: no spec, ever
        blocked.write_text("", encoding="utf-8")
        help_typer = _wall([*masque, "--help"], {**env, "XDG_CACHE_HOME": str(blocked)}, args.runs)
        store_copy = Path(tmp) / "floor.duckdb"
        shutil.copyfile(Path(tmp) / "home" / "masque.duckdb", store_copy)
        figures = cycle_vs_floor(masque, env, args.runs, store_copy)
        cycle, floor, ratio = figures["cycle"], figures["floor"], figures["ratio"]
        checks = []
        for label, ref in (("pinned", f"{REF}@{_version(REF)}"), ("unpinned", REF)):
            cmd = [*masque, "check", ref, "--intent", INTENT]
            checks.append((label, ref, _wall(cmd, env, args.runs), imports_duckdb(cmd, env)))
        compared = against(args.against, env, args.runs, Path(tmp)) if args.against else None
        os.environ.update(env)
        per_second, open_close = _in_process(args.cycles)
    verdict = "ok" if ratio <= GOAL else "MISSED"
    print(f"python -c pass              {start_up * 1000:7.1f} ms  (median of {args.runs})")
    print(f"masque --version            {version * 1000:7.1f} ms  (answered before the CLI is built)")
    print(
        f"masque --help               {help_ * 1000:7.1f} ms  (from the cached CLI spec; "
        f"goal <= {HELP_GOAL_MS} ms: {'ok' if help_ * 1000 <= HELP_GOAL_MS else 'MISSED'})"
    )
    print(f"masque --help, no cache     {help_typer * 1000:7.1f} ms  (Typer builds every command: a first run)")
    bare = figures["import_floor"]
    print(f"floor: 2x duckdb + 1 txn    {floor * 1000:7.1f} ms  (two cold processes, paired with each cycle)")
    print(f"2x import duckdb alone      {bare * 1000:7.1f} ms")
    print(
        f"assume + release (cold)     {cycle * 1000:7.1f} ms  = {ratio:.2f}x the floor "
        f"(median per-round ratio; goal <= {GOAL}x: {verdict}); {figures['import_ratio']:.2f}x the bare imports"
    )
    for label, ref, took, duck in checks:
        name = f"check {label} (cold)"
        missed = "  (MISSED: no rollout stage recorded, so none is needed)" if duck else ""
        print(f"{name:<27} {took * 1000:7.1f} ms  {ref}: duckdb imported: {'yes' if duck else 'no'}{missed}")
    if compared is not None:
        print(
            f"against {args.against}: {compared['other']:.2f}x -> {compared['this']:.2f}x the floor "
            f"(median of {args.runs} alternating rounds; floor pair {compared['floor'] * 1000:.0f} ms); assume "
            f"{compared['other_a'] * 1000:.0f} -> {compared['this_a'] * 1000:.0f} ms, release "
            f"{compared['other_r'] * 1000:.0f} -> {compared['this_r'] * 1000:.0f} ms"
        )
    print(f"store open+close            {open_close * 1000:7.1f} ms  (one bare duckdb.connect + close)")
    print(
        f"in-process assume+release   {per_second:7.1f} /s  ({1000 / per_second:.1f} ms per cycle = "
        f"{1 / per_second / open_close:.1f}x a bare store open+close; a cycle needs two)"
    )


if __name__ == "__main__":
    main()
